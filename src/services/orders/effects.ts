import type { UnitOfWork } from '../../db/transactions.js';
import type { Order } from '../../entities/Order.js';
import type { Product, ProductKind } from '../../entities/Product.js';

/**
 * What becoming PAID means for a kind of product, run by the settlement in the transaction that
 * marks the order PAID (like Vendure's `onTransitionEnd`), whichever way it was paid. A VIP plan
 * extends a membership; a flash-sale unit stays sold. GOODS need nothing beyond the order itself.
 */
export type PaidEffect = (uow: UnitOfWork, order: Order, product: Product) => Promise<void>;

export type PaidEffects = Partial<Record<ProductKind, PaidEffect>>;

/**
 * What becoming CANCELLED or EXPIRED means for a kind of product, beyond the money and the stock the
 * settlement gives back itself: run in the closing transaction with the orders just closed (a flash
 * sale gives its unit back in Redis, after the commit). The settlement stays the only writer of status.
 */
export type ClosedEffect = (uow: UnitOfWork, orders: Order[]) => Promise<void>;

export type ClosedEffects = Partial<Record<ProductKind, ClosedEffect>>;

/**
 * What a refund of a PAID order reverses for a kind of product, beyond the money and the stock the
 * settlement gives back itself, in the refund's transaction: a VIP plan shortens the membership it
 * extended. A flash-sale unit stays sold (nothing goes back to the sale).
 */
export type RefundedEffect = (uow: UnitOfWork, order: Order, product: Product) => Promise<void>;

export type RefundedEffects = Partial<Record<ProductKind, RefundedEffect>>;

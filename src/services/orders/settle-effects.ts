import type { UnitOfWork } from '../../db/transactions.js';
import type { Order } from '../../entities/Order.js';
import { Product, type ProductKind } from '../../entities/Product.js';
import type { ClosedEffects, PaidEffects, RefundedEffects } from './effects.js';

/** Orders by user, then id: every batch that runs effects takes their locks (a membership) in this order. */
const byUserThenId = (a: Order, b: Order) => (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : Number(a.id) - Number(b.id));

/**
 * What each product kind does when its orders change state, run by the settlement in the transaction
 * that changes them: on PAID (a VIP plan extends a membership), on CANCELLED or EXPIRED (a flash sale
 * gives its unit back) and on REFUNDED (a VIP plan shortens the membership again).
 */
export class KindEffects {
  constructor(
    private readonly paid: PaidEffects,
    private readonly closed: ClosedEffects = {},
    private readonly refunded: RefundedEffects = {},
  ) {}

  hasPaidEffect(kind: ProductKind): boolean {
    return this.paid[kind] !== undefined;
  }

  hasRefundedEffect(kind: ProductKind): boolean {
    return this.refunded[kind] !== undefined;
  }

  /**
   * The effect of each order's product kind, for orders that have just become PAID (or were born PAID):
   * their products read in one query, the effects run in user order (each locks what it extends, so
   * two batches take those locks in the same order).
   */
  async runPaid(uow: UnitOfWork, orders: Order[]): Promise<void> {
    if (orders.length === 0) return;
    const products = await uow.em.find(Product, { id: { $in: [...new Set(orders.map((o) => o.productId))] } });
    const byId = new Map(products.map((p) => [String(p.id), p]));
    const inUserOrder = [...orders].sort(byUserThenId);
    for (const order of inUserOrder) {
      const product = byId.get(String(order.productId));
      if (!product) throw new Error(`product ${order.productId} of order ${order.id} not found`);
      await this.paid[product.kind]?.(uow, order, product);
    }
  }

  /** Each product kind's closed effect, with its orders of the batch (`kindOf`: order id → its product's kind). */
  async runClosed(uow: UnitOfWork, closed: Order[], kindOf: Map<string, ProductKind>): Promise<void> {
    if (closed.length === 0) return;
    for (const [kind, effect] of Object.entries(this.closed)) {
      const orders = closed.filter((o) => kindOf.get(String(o.id)) === kind);
      if (orders.length > 0) await effect(uow, orders);
    }
  }

  /** Each refunded order's reversal, for the kinds that have one (`kindOf`: order id → its product's kind). */
  async runRefunded(uow: UnitOfWork, refunded: Order[], kindOf: Map<string, ProductKind>): Promise<void> {
    const reversing = refunded.filter((o) => this.hasRefundedEffect(kindOf.get(String(o.id))!));
    if (reversing.length === 0) return;
    const products = new Map(
      (await uow.em.find(Product, { id: { $in: [...new Set(reversing.map((o) => o.productId))] } })).map((p) => [String(p.id), p]),
    );
    // In user order, as the paid effects run: each locks what it changes (a membership).
    reversing.sort(byUserThenId);
    for (const order of reversing) await this.refunded[kindOf.get(String(order.id))!]!(uow, order, products.get(String(order.productId))!);
  }
}

import { LockMode, raw } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { UnitOfWork } from '../db/transactions.js';
import { Product, type ProductKind } from '../entities/Product.js';
import { badInput, conflict, notFound } from '../errors.js';
import { parseId } from './ids.js';

/** What `updateProduct` may change; an omitted field stays. `stock: null` makes a stock unlimited. */
export interface ProductChanges {
  name?: string | null;
  price?: number | null;
  stock?: number | null;
  active?: boolean | null;
}

/** A product as it was before an update, beside what it is now, for the effects of the change. */
export interface ProductChange {
  before: Pick<Product, 'stock' | 'active'>;
  product: Product;
}

/**
 * What an update means beyond the row, per product kind (a flash sale's copy in Redis), called in
 * the update's transaction with the row locked.
 */
export type ProductChangeEffect = (uow: UnitOfWork, change: ProductChange) => Promise<void>;

export interface ProductInput {
  name: string;
  price: number;
  kind: ProductKind;
  vipDays?: number | null;
  vipLevel?: number | null;
  vipLifetime?: boolean | null;
  stock?: number | null;
  saleStartsAt?: Date | null;
  saleEndsAt?: Date | null;
}

/** The catalogue. VIP plans carry a level and a length (none: lifetime); flash-sale items a stock. */
export class ProductService {
  constructor(private readonly effects: Partial<Record<ProductKind, ProductChangeEffect>> = {}) {}

  async create(uow: UnitOfWork, input: ProductInput): Promise<Product> {
    const vip = input.kind === 'VIP_PLAN';
    if (vip && !input.vipLevel) throw badInput('A VIP_PLAN needs a vipLevel', 'vipLevel');
    if (!vip && (input.vipDays != null || input.vipLevel != null || input.vipLifetime)) {
      const field = input.vipDays != null ? 'vipDays' : input.vipLevel != null ? 'vipLevel' : 'vipLifetime';
      throw badInput('vipDays, vipLevel and vipLifetime belong to VIP_PLAN products only', field);
    }
    if (vip && input.vipLifetime && input.vipDays != null) throw badInput('A lifetime plan has no vipDays', 'vipDays');
    if (input.kind === 'FLASH_SALE' && input.stock == null) throw badInput('A FLASH_SALE product needs a stock', 'stock');
    const flash = input.kind === 'FLASH_SALE';
    if (flash && (input.saleStartsAt == null || input.saleEndsAt == null)) {
      throw badInput('A FLASH_SALE product needs saleStartsAt and saleEndsAt', input.saleStartsAt == null ? 'saleStartsAt' : 'saleEndsAt');
    }
    if (!flash && (input.saleStartsAt != null || input.saleEndsAt != null)) {
      throw badInput('saleStartsAt and saleEndsAt belong to FLASH_SALE products only', input.saleStartsAt != null ? 'saleStartsAt' : 'saleEndsAt');
    }
    if (flash && input.saleStartsAt!.getTime() >= input.saleEndsAt!.getTime()) throw badInput('saleStartsAt must be before saleEndsAt', 'saleEndsAt');
    const product = uow.em.create(Product, {
      name: input.name,
      price: input.price,
      kind: input.kind,
      vipDays: input.vipDays ?? null,
      vipLevel: input.vipLevel ?? null,
      // No vipDays is a lifetime plan, as it always was; vipLifetime says so explicitly.
      vipLifetime: vip && (input.vipLifetime === true || input.vipDays == null),
      stock: input.stock ?? null,
      saleStartsAt: input.saleStartsAt ?? null,
      saleEndsAt: input.saleEndsAt ?? null,
      createdAt: uow.now,
    });
    await uow.em.flush();
    return product;
  }

  /**
   * Admins: renames, reprices, restocks, withdraws (`active: false`) or brings back a product. The
   * row is locked first, so a concurrent order's conditional stock decrement sees the new stock. A
   * new price applies to orders made from now on. A FLASH_SALE's `stock` is its units still to sell.
   */
  async update(uow: UnitOfWork, id: string, changes: ProductChanges): Promise<Product> {
    const product = await uow.em.findOne(Product, { id: parseId(id, 'a product', 'id') }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!product) throw notFound('Product', id);
    if (changes.name === null || changes.price === null || changes.active === null) {
      throw badInput('name, price and active cannot be null (omit a field to leave it)', changes.name === null ? 'name' : changes.price === null ? 'price' : 'active');
    }
    if (changes.stock === null && product.kind === 'FLASH_SALE') throw badInput('A FLASH_SALE product needs a stock', 'stock');
    const before = { stock: product.stock, active: product.active };
    if (changes.name !== undefined) product.name = changes.name;
    if (changes.price !== undefined) product.price = changes.price;
    if (changes.stock !== undefined) product.stock = changes.stock;
    if (changes.active !== undefined) product.active = changes.active;
    await uow.em.flush();
    await this.effects[product.kind]?.(uow, { before, product });
    return product;
  }

  async get(em: EntityManager, id: string): Promise<Product> {
    const product = await em.findOne(Product, { id: parseId(id, 'a product', 'productId') });
    if (!product) throw notFound('Product', id);
    return product;
  }

  list(em: EntityManager, kind?: ProductKind | null): Promise<Product[]> {
    return em.find(Product, kind ? { kind } : {}, { orderBy: { id: 'asc' } });
  }

  /**
   * Takes `quantity` from a counted stock (none from an unlimited one); CONFLICT when too few are
   * left, or when the product was withdrawn (every order path takes its units here). A conditional
   * decrement, not a row lock: concurrent buyers of one product never queue.
   */
  async take(uow: UnitOfWork, product: Product, quantity: number): Promise<void> {
    if (!product.active) throw conflict(`Product ${product.id} is not on sale any more`);
    if (product.stock === null) return;
    const taken = await uow.em.nativeUpdate(Product, { id: product.id, stock: { $gte: quantity } }, { stock: raw('stock - ?', [quantity]) });
    if (taken === 0) throw conflict(`Product ${product.id} has fewer than ${quantity} left in stock`);
  }
}

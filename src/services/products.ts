import type { EntityManager } from '@mikro-orm/postgresql';
import type { UnitOfWork } from '../db/transactions.js';
import type { ProductKind } from '../entities/Product.js';
import { badInput, conflict, notFound } from '../errors.js';
import { parseId } from './ids.js';

export interface ProductInput {
  name: string;
  price: number;
  kind: ProductKind;
  vipDays?: number | null;
  vipLevel?: number | null;
  stock?: number | null;
}

export interface ProductView {
  id: string;
  name: string;
  price: number;
  kind: ProductKind;
  vipDays: number | null;
  vipLevel: number | null;
  stock: number | null;
  createdAt: Date;
}

export interface ProductRow {
  id: string;
  name: string;
  price: number;
  kind: ProductKind;
  vip_days: number | null;
  vip_level: number | null;
  stock: number | null;
  created_at: Date | string;
}

const toView = (row: ProductRow): ProductView => ({
  id: String(row.id),
  name: row.name,
  price: row.price,
  kind: row.kind,
  vipDays: row.vip_days,
  vipLevel: row.vip_level,
  stock: row.stock,
  createdAt: new Date(row.created_at),
});

/** The catalogue. VIP plans carry a level and a length (none: lifetime); flash-sale items a stock. */
export class ProductService {
  async create(uow: UnitOfWork, input: ProductInput): Promise<ProductView> {
    const vip = input.kind === 'VIP_PLAN';
    if (vip && !input.vipLevel) throw badInput('A VIP_PLAN needs a vipLevel', 'vipLevel');
    if (!vip && (input.vipDays != null || input.vipLevel != null)) {
      throw badInput('vipDays and vipLevel belong to VIP_PLAN products only', input.vipDays != null ? 'vipDays' : 'vipLevel');
    }
    if (input.kind === 'FLASH_SALE' && input.stock == null) throw badInput('A FLASH_SALE product needs a stock', 'stock');
    const [row] = await uow.em.execute<ProductRow[]>(
      `insert into products (name, price, kind, vip_days, vip_level, stock, created_at)
       values (?, ?, ?, ?, ?, ?, ?) returning *`,
      [input.name, input.price, input.kind, input.vipDays ?? null, input.vipLevel ?? null, input.stock ?? null, uow.now],
    );
    return toView(row);
  }

  async get(em: EntityManager, id: string): Promise<ProductView> {
    return toView(await this.row(em, id));
  }

  async row(em: EntityManager, id: string): Promise<ProductRow> {
    const [row] = await em.execute<ProductRow[]>('select * from products where id = ?', [parseId(id, 'a product', 'productId')]);
    if (!row) throw notFound('Product', id);
    return row;
  }

  async list(em: EntityManager, kind?: ProductKind | null): Promise<ProductView[]> {
    const rows = kind
      ? await em.execute<ProductRow[]>('select * from products where kind = ? order by id', [kind])
      : await em.execute<ProductRow[]>('select * from products order by id');
    return rows.map(toView);
  }

  /** Takes `quantity` from a counted stock (none taken from an unlimited one); CONFLICT when too few are left. */
  async take(uow: UnitOfWork, product: ProductRow, quantity: number): Promise<void> {
    if (product.stock === null) return;
    const rows = await uow.em.execute('update products set stock = stock - ? where id = ? and stock >= ? returning id', [
      quantity,
      product.id,
      quantity,
    ]);
    if (rows.length === 0) throw conflict(`Product ${product.id} has fewer than ${quantity} left in stock`);
  }
}

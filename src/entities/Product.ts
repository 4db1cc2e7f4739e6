import { OptionalProps } from '@mikro-orm/core';
import { Check, Entity, Enum, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';

export const PRODUCT_KINDS = ['GOODS', 'VIP_PLAN', 'FLASH_SALE'] as const;
export type ProductKind = (typeof PRODUCT_KINDS)[number];

/** Prices are integer cents. A null `stock` is unlimited; a counted one is taken by orders and returned when they close. */
@Entity({ tableName: 'products' })
@Check({ name: 'products_sale_window_check', expression: '"sale_starts_at" < "sale_ends_at"' })
export class Product {
  [OptionalProps]?: 'createdAt' | 'vipDays' | 'vipLevel' | 'vipLifetime' | 'stock' | 'saleStartsAt' | 'saleEndsAt' | 'active';

  @PrimaryKey({ type: 'bigint', autoincrement: true })
  id!: string;

  @Property({ type: 'text' })
  name!: string;

  @Property({ type: 'integer' })
  @Check({ name: 'products_price_check', expression: '"price" > 0' })
  price!: number;

  @Enum({ items: [...PRODUCT_KINDS], type: 'text' })
  kind!: ProductKind;

  @Property({ type: 'integer', nullable: true })
  @Check({ name: 'products_vip_days_check', expression: '"vip_days" > 0' })
  vipDays: number | null = null;

  @Property({ type: 'integer', nullable: true })
  @Check({ name: 'products_vip_level_check', expression: '"vip_level" > 0' })
  vipLevel: number | null = null;

  /** A VIP plan that never lapses (then `vipDays` is null). */
  @Property({ type: 'boolean', default: false })
  vipLifetime!: boolean;

  @Property({ type: 'integer', nullable: true })
  @Check({ name: 'products_stock_check', expression: '"stock" >= 0' })
  stock: number | null = null;

  /** FLASH_SALE: requests are taken from this time on … */
  @Property({ type: 'timestamptz', length: 3, nullable: true })
  saleStartsAt: Date | null = null;

  /** … until this time (exclusive). */
  @Property({ type: 'timestamptz', length: 3, nullable: true })
  saleEndsAt: Date | null = null;

  /** An inactive product (withdrawn by an admin) refuses new orders; the orders it has are kept. */
  @Property({ type: 'boolean', default: true })
  active: boolean = true;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  createdAt!: Date;
}

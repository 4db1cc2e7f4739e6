import { OptionalProps } from '@mikro-orm/core';
import { Check, Entity, Enum, Index, ManyToOne, PrimaryKey, Property, Unique } from '@mikro-orm/decorators/legacy';
import { Order } from './Order.js';

export const PAYMENT_PROVIDERS = ['wechat', 'alipay', 'sandbox'] as const;
export type PaymentProviderName = (typeof PAYMENT_PROVIDERS)[number];
export const PAYMENT_SOURCES = ['CALLBACK', 'COMPENSATE'] as const;
export type PaymentSource = (typeof PAYMENT_SOURCES)[number];

/**
 * Money a provider took for an order, once per provider transaction. A payment that could not pay
 * its order (no longer PENDING, a wrong amount, an unknown order number) is kept with `needsRefund`.
 */
@Entity({ tableName: 'payments' })
@Unique({ name: 'payments_provider_transaction_id_key', properties: ['provider', 'transactionId'] })
@Index({ name: 'payments_order_id_idx', properties: ['orderId'] })
@Index({ name: 'payments_needs_refund_idx', properties: ['id'], where: '"needs_refund"' })
export class Payment {
  [OptionalProps]?: 'needsRefund' | 'refundReason' | 'createdAt' | 'orderId';

  @PrimaryKey({ type: 'bigint', autoincrement: true })
  id!: string;

  @ManyToOne(() => Order, {
    mapToPk: true,
    joinColumn: 'order_id',
    nullable: true,
    foreignKeyName: 'payments_order_id_fkey',
    deleteRule: 'no action',
    updateRule: 'no action',
  })
  orderId: string | null = null;

  /** As the provider sent it (`out_trade_no`), even when no order has that number. */
  @Property({ type: 'text' })
  orderNo!: string;

  @Enum({ items: [...PAYMENT_PROVIDERS], type: 'text' })
  provider!: PaymentProviderName;

  @Property({ type: 'text' })
  transactionId!: string;

  @Property({ type: 'integer' })
  @Check({ name: 'payments_amount_check', expression: '"amount" >= 0' })
  amount!: number;

  @Property({ type: 'timestamptz', length: 3 })
  paidAt!: Date;

  @Enum({ items: [...PAYMENT_SOURCES], type: 'text' })
  source!: PaymentSource;

  @Property({ type: 'boolean', default: false })
  needsRefund!: boolean;

  @Property({ type: 'text', nullable: true })
  refundReason: string | null = null;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  createdAt!: Date;
}

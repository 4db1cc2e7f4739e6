import { OptionalProps } from '@mikro-orm/core';
import { Entity, Enum, Index, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';

export const ORDER_STATUSES = ['PENDING', 'PAID', 'CANCELLED', 'EXPIRED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];
export const PAYMENT_METHODS = ['WECHAT', 'ALIPAY', 'WALLET', 'MIXED', 'OFFLINE'] as const;
export type PaymentMethod = (typeof PAYMENT_METHODS)[number];
export const ORDER_CHANNELS = ['H5', 'ADMIN'] as const;
export type OrderChannel = (typeof ORDER_CHANNELS)[number];

/** The one table of allowed transitions; services check it in one place. */
export const ORDER_TRANSITIONS: Record<OrderStatus, readonly OrderStatus[]> = {
  PENDING: ['PAID', 'CANCELLED', 'EXPIRED'],
  PAID: [],
  CANCELLED: [],
  EXPIRED: [],
};

/**
 * An order. While PENDING, `walletAmount` cents of its buyer's wallet are frozen and `expiresAt` is
 * its deadline; paying debits that money, cancelling or expiring gives it back.
 */
@Entity({ tableName: 'orders' })
@Index({ name: 'orders_expires_at_status_idx', properties: ['expiresAt', 'status'] })
@Index({ name: 'orders_user_id_idx', properties: ['userId', 'id'] })
export class Order {
  [OptionalProps]?: 'walletAmount' | 'expiresAt' | 'cancelReason' | 'paidAt' | 'closedAt' | 'createdAt';

  @PrimaryKey({ type: 'bigint', autoincrement: true })
  id!: string;

  @Property({ type: 'text', unique: true })
  orderNo!: string;

  @Property({ type: 'text' })
  userId!: string;

  @Property({ type: 'bigint' })
  productId!: string;

  @Property({ type: 'integer' })
  quantity!: number;

  @Property({ type: 'integer' })
  amount!: number;

  @Property({ type: 'integer', default: 0 })
  walletAmount!: number;

  @Enum({ items: [...PAYMENT_METHODS], type: 'text' })
  paymentMethod!: PaymentMethod;

  @Enum({ items: [...ORDER_CHANNELS], type: 'text' })
  channel!: OrderChannel;

  @Enum({ items: [...ORDER_STATUSES], type: 'text' })
  status!: OrderStatus;

  @Property({ type: 'timestamptz', length: 3, nullable: true })
  expiresAt: Date | null = null;

  @Property({ type: 'text', nullable: true })
  cancelReason: string | null = null;

  @Property({ type: 'timestamptz', length: 3, nullable: true })
  paidAt: Date | null = null;

  /** When it was cancelled or expired. */
  @Property({ type: 'timestamptz', length: 3, nullable: true })
  closedAt: Date | null = null;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  createdAt!: Date;
}

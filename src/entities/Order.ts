import { OptionalProps } from '@mikro-orm/core';
import { Check, Entity, Enum, Index, ManyToOne, PrimaryKey, Property, Unique } from '@mikro-orm/decorators/legacy';
import { Product } from './Product.js';
import { User } from './User.js';

export const ORDER_STATUSES = ['PENDING', 'PAID', 'CANCELLED', 'EXPIRED', 'REFUNDED'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];
export const PAYMENT_METHODS = ['WECHAT', 'ALIPAY', 'WALLET', 'MIXED', 'OFFLINE'] as const;
export type PaymentMethod = (typeof PAYMENT_METHODS)[number];
export const PAID_VIA = ['WALLET', 'CALLBACK', 'COMPENSATE', 'ADMIN'] as const;
export type PaidVia = (typeof PAID_VIA)[number];
/** The methods paid (at least in part) at a payment provider. */
export const ONLINE_METHODS: readonly PaymentMethod[] = ['WECHAT', 'ALIPAY', 'MIXED'];
export const ORDER_CHANNELS = ['H5', 'ADMIN', 'SECKILL'] as const;
export type OrderChannel = (typeof ORDER_CHANNELS)[number];

/** The one table of allowed transitions; services check it in one place. */
export const ORDER_TRANSITIONS: Record<OrderStatus, readonly OrderStatus[]> = {
  PENDING: ['PAID', 'CANCELLED', 'EXPIRED'],
  // An admin's refundOrder, once its refund SUCCEEDED (src/services/refunds).
  PAID: ['REFUNDED'],
  CANCELLED: [],
  EXPIRED: [],
  REFUNDED: [],
};

/**
 * An order. While PENDING, `walletAmount` cents of its buyer's wallet are frozen and `expiresAt` is
 * its deadline; paying debits that money, cancelling or expiring gives it back.
 */
@Entity({ tableName: 'orders' })
@Index({ name: 'orders_expires_at_status_idx', properties: ['expiresAt', 'status'] })
@Index({ name: 'orders_user_id_idx', properties: ['userId', 'id'] })
@Index({ name: 'orders_pending_created_at_idx', properties: ['createdAt'], where: `"status" = 'PENDING'` })
// createOrder counts a user's unpaid orders (ORDER_MAX_PENDING_PER_USER): those alone, not their history.
@Index({ name: 'orders_user_pending_idx', properties: ['userId'], where: `"status" = 'PENDING'` })
// One live order per user per flash sale, whatever instance or consumer writes it. A refunded one stays
// the buyer's unit: nothing goes back to the sale, and the buyer does not buy a second.
@Unique({ name: 'orders_seckill_buyer_key', properties: ['productId', 'userId'], where: `"channel" = 'SECKILL' and "status" in ('PENDING', 'PAID', 'REFUNDED')` })
// A pending order has a deadline; a settled one never does.
@Check({ name: 'orders_expiry_matches_status', expression: `("status" = 'PENDING') = ("expires_at" is not null)` })
export class Order {
  [OptionalProps]?: 'walletAmount' | 'expiresAt' | 'cancelReason' | 'paidAt' | 'paidVia' | 'closedAt' | 'createdAt';

  @PrimaryKey({ type: 'bigint', autoincrement: true })
  id!: string;

  @Property({ type: 'text', unique: 'orders_order_no_key' })
  orderNo!: string;

  @ManyToOne(() => User, {
    mapToPk: true,
    joinColumn: 'user_id',
    foreignKeyName: 'orders_user_id_fkey',
    deleteRule: 'no action',
    updateRule: 'no action',
  })
  userId!: string;

  @ManyToOne(() => Product, {
    mapToPk: true,
    joinColumn: 'product_id',
    foreignKeyName: 'orders_product_id_fkey',
    deleteRule: 'no action',
    updateRule: 'no action',
  })
  productId!: string;

  @Property({ type: 'integer' })
  @Check({ name: 'orders_quantity_check', expression: '"quantity" > 0' })
  quantity!: number;

  @Property({ type: 'integer' })
  @Check({ name: 'orders_amount_check', expression: '"amount" > 0' })
  amount!: number;

  /** PostgreSQL names this column's two-column check `orders_check`. */
  @Property({ type: 'integer', default: 0 })
  @Check({ name: 'orders_check', expression: '"wallet_amount" >= 0 and "wallet_amount" <= "amount"' })
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

  /** How a PAID order was paid: the wallet, a provider's callback, reconciliation, or an admin. */
  @Enum({ items: [...PAID_VIA], type: 'text', nullable: true })
  paidVia: PaidVia | null = null;

  /** When it was cancelled, expired or refunded. */
  @Property({ type: 'timestamptz', length: 3, nullable: true })
  closedAt: Date | null = null;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  createdAt!: Date;
}

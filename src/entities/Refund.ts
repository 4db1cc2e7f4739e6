import { OptionalProps } from '@mikro-orm/core';
import { Check, Entity, Enum, Index, ManyToOne, PrimaryKey, Property, Unique } from '@mikro-orm/decorators/legacy';
import { Order } from './Order.js';
import { Payment, PAYMENT_PROVIDERS, type PaymentProviderName } from './Payment.js';

export const REFUND_STATUSES = ['PENDING', 'SUCCEEDED', 'FAILED'] as const;
export type RefundStatus = (typeof REFUND_STATUSES)[number];
/** ORDER: `refundOrder` (the order becomes REFUNDED); PAYMENT: `refundPayment` of money that bought nothing. */
export const REFUND_KINDS = ['ORDER', 'PAYMENT'] as const;
export type RefundKind = (typeof REFUND_KINDS)[number];

/** The one table of allowed transitions: a refund ends once, SUCCEEDED or FAILED. */
export const REFUND_TRANSITIONS: Record<RefundStatus, readonly RefundStatus[]> = {
  PENDING: ['SUCCEEDED', 'FAILED'],
  SUCCEEDED: [],
  FAILED: [],
};

/**
 * Money given back by an admin: `amount` cents of a provider payment (refunded there, under
 * `outRefundNo`) and `walletAmount` cents back into the buyer's wallet. PENDING while the provider has
 * not said; a refund with nothing to refund at a provider is SUCCEEDED when it is made. A FAILED one
 * changed nothing and may be followed by another attempt (`attempt` + 1, a new `outRefundNo`).
 */
@Entity({ tableName: 'refunds' })
// One live refund per payment and per order refunded: two racing refundOrder calls make one row, the
// other's insert is refused (CONFLICT). FAILED ones leave the keys free for the next attempt.
@Unique({ name: 'refunds_payment_live_key', properties: ['paymentId'], where: `"status" in ('PENDING', 'SUCCEEDED')` })
@Unique({ name: 'refunds_order_live_key', properties: ['orderId'], where: `"kind" = 'ORDER' and "status" in ('PENDING', 'SUCCEEDED')` })
// refund-reconciliation reads the PENDING ones oldest first; the gauge counts them.
@Index({ name: 'refunds_pending_idx', properties: ['id'], where: `"status" = 'PENDING'` })
@Check({ name: 'refunds_finished_matches_status', expression: `("status" = 'PENDING') = ("finished_at" is null)` })
// Money at a provider needs its payment and its refund number there.
@Check({ name: 'refunds_provider_part', expression: `("amount" = 0) = ("out_refund_no" is null) and ("out_refund_no" is null or "payment_id" is not null)` })
export class Refund {
  [OptionalProps]?: 'paymentId' | 'orderId' | 'provider' | 'outRefundNo' | 'walletAmount' | 'failureReason' | 'finishedAt' | 'createdAt';

  @PrimaryKey({ type: 'bigint', autoincrement: true })
  id!: string;

  @Enum({ items: [...REFUND_KINDS], type: 'text' })
  kind!: RefundKind;

  @ManyToOne(() => Payment, {
    mapToPk: true,
    joinColumn: 'payment_id',
    nullable: true,
    foreignKeyName: 'refunds_payment_id_fkey',
    deleteRule: 'no action',
    updateRule: 'no action',
  })
  paymentId: string | null = null;

  @ManyToOne(() => Order, {
    mapToPk: true,
    joinColumn: 'order_id',
    nullable: true,
    foreignKeyName: 'refunds_order_id_fkey',
    deleteRule: 'no action',
    updateRule: 'no action',
  })
  orderId: string | null = null;

  /** Where the money is refunded: the payment's provider; null when nothing is refunded at one. */
  @Enum({ items: [...PAYMENT_PROVIDERS], type: 'text', nullable: true })
  provider: PaymentProviderName | null = null;

  /** `R{paymentId}-{attempt}`: one attempt refunds once at its provider however often it is asked. */
  @Property({ type: 'text', nullable: true, unique: 'refunds_out_refund_no_key' })
  outRefundNo: string | null = null;

  @Property({ type: 'integer' })
  @Check({ name: 'refunds_attempt_check', expression: '"attempt" > 0' })
  attempt!: number;

  /** Cents refunded at the provider. */
  @Property({ type: 'integer' })
  @Check({ name: 'refunds_amount_check', expression: '"amount" >= 0' })
  amount!: number;

  /** Cents given back to the wallet (the order's wallet part). */
  @Property({ type: 'integer', default: 0 })
  @Check({ name: 'refunds_wallet_amount_check', expression: '"wallet_amount" >= 0' })
  walletAmount!: number;

  @Enum({ items: [...REFUND_STATUSES], type: 'text' })
  status!: RefundStatus;

  /** The admin's reason. */
  @Property({ type: 'text' })
  reason!: string;

  /** FAILED: what the provider said (ABNORMAL, NOT_ENOUGH, ACQ.TRADE_NOT_EXIST…). */
  @Property({ type: 'text', nullable: true })
  failureReason: string | null = null;

  /** The admin who asked for it. */
  @Property({ type: 'text' })
  actorId!: string;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  createdAt!: Date;

  @Property({ type: 'timestamptz', length: 3, nullable: true })
  finishedAt: Date | null = null;
}

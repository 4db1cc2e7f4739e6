import type { OrderSnapshot } from '../events/types.js';

/** An `orders` row as raw SQL returns it (bigint ids and timestamps may come back as text). */
export interface OrderRow {
  id: string;
  order_no: string;
  user_id: string;
  product_id: string;
  quantity: number;
  amount: number;
  wallet_amount: number;
  payment_method: OrderSnapshot['paymentMethod'];
  channel: OrderSnapshot['channel'];
  status: OrderSnapshot['status'];
  expires_at: Date | string | null;
  cancel_reason: string | null;
  paid_at: Date | string | null;
  closed_at: Date | string | null;
  created_at: Date | string;
}

const iso = (d: Date | string | null) => (d === null ? null : new Date(d).toISOString());

export function toOrderSnapshot(row: OrderRow): OrderSnapshot {
  return {
    id: String(row.id),
    orderNo: row.order_no,
    userId: row.user_id,
    productId: String(row.product_id),
    quantity: row.quantity,
    amount: row.amount,
    walletAmount: row.wallet_amount,
    paymentMethod: row.payment_method,
    channel: row.channel,
    status: row.status,
    expiresAt: iso(row.expires_at),
    cancelReason: row.cancel_reason,
    paidAt: iso(row.paid_at),
    createdAt: iso(row.created_at)!,
  };
}

/** What the API shows: the snapshot plus `isExpired`, computed against one `now` for a whole response. */
export type OrderView = OrderSnapshot & { isExpired: boolean };

/** PENDING and its `expiresAt` has come: the same rule as the `isExpired` filter and the expiry job (`expires_at <= now`). */
export function toOrderView(order: OrderSnapshot, now: Date): OrderView {
  const isExpired = order.status === 'PENDING' && order.expiresAt !== null && new Date(order.expiresAt).getTime() <= now.getTime();
  return { ...order, isExpired };
}

/** Money held for a pending order: its wallet part, for WALLET and MIXED orders. */
export const frozenPart = (row: Pick<OrderRow, 'payment_method' | 'wallet_amount'>) =>
  row.payment_method === 'WALLET' || row.payment_method === 'MIXED' ? row.wallet_amount : 0;

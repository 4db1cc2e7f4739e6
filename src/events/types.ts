/**
 * The typed map of domain events: topic -> payload. Every payload carries its `eventId`
 * (the outbox row's id), so a republished event can be recognised and dropped.
 * Dates travel as ISO strings.
 */
export interface AuctionSnapshot {
  id: string;
  sellerId: string;
  nftId: string;
  title: string;
  startingPrice: number;
  minIncrement: number;
  endTime: string;
  status: 'ACTIVE' | 'ENDED' | 'CANCELLED';
  highestBid: number | null;
  highestBidderId: string | null;
  winnerId: string | null;
  softCloseSeconds: number;
  endedAt: string | null;
  createdAt: string;
}

export interface OrderSnapshot {
  id: string;
  orderNo: string;
  userId: string;
  productId: string;
  quantity: number;
  amount: number;
  walletAmount: number;
  paymentMethod: 'WECHAT' | 'ALIPAY' | 'WALLET' | 'MIXED' | 'OFFLINE';
  channel: 'H5' | 'ADMIN';
  status: 'PENDING' | 'PAID' | 'CANCELLED' | 'EXPIRED';
  expiresAt: string | null;
  cancelReason: string | null;
  paidAt: string | null;
  createdAt: string;
}

export interface DomainEvents {
  AUCTION_ENDED: { eventId: string; auction: AuctionSnapshot; winnerId: string | null; finalPrice: number | null; endedAt: string };
  AUCTION_UPDATED: { eventId: string; auction: AuctionSnapshot };
  /** One topic for all expiries; subscribers who are not admins hear only their own orders. */
  ORDER_EXPIRED: { eventId: string; order: OrderSnapshot };
  /** Published per order (`ORDER_UPDATED:<id>`): creation, payment, cancellation, expiry. */
  ORDER_UPDATED: { eventId: string; order: OrderSnapshot };
}

export type Topic = keyof DomainEvents;
export type EventPayload<T extends Topic> = DomainEvents[T];

/** Some topics are published per entity (`AUCTION_UPDATED:42`), so subscribers hear only theirs. */
export function channelOf(topic: Topic, key?: string): string {
  return key === undefined ? topic : `${topic}:${key}`;
}

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

export interface DomainEvents {
  AUCTION_ENDED: { eventId: string; auction: AuctionSnapshot; winnerId: string | null; finalPrice: number | null; endedAt: string };
  AUCTION_UPDATED: { eventId: string; auction: AuctionSnapshot };
}

export type Topic = keyof DomainEvents;
export type EventPayload<T extends Topic> = DomainEvents[T];

/** Some topics are published per entity too (`AUCTION_UPDATED:42`), so subscribers hear only theirs. */
export function channelOf(topic: Topic, key?: string): string {
  return key === undefined ? topic : `${topic}:${key}`;
}

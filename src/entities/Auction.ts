import { OptionalProps } from '@mikro-orm/core';
import { Entity, PrimaryKey, Property, Enum, Index } from '@mikro-orm/decorators/legacy';

export const AUCTION_STATUSES = ['ACTIVE', 'ENDED', 'CANCELLED'] as const;
export type AuctionStatus = (typeof AUCTION_STATUSES)[number];

/** The one table of allowed transitions; services check it in one place. */
export const AUCTION_TRANSITIONS: Record<AuctionStatus, readonly AuctionStatus[]> = {
  ACTIVE: ['ENDED', 'CANCELLED'],
  ENDED: [],
  CANCELLED: [],
};

@Entity({ tableName: 'auctions' })
@Index({ name: 'auctions_status_end_time_idx', properties: ['status', 'endTime'] })
export class Auction {
  [OptionalProps]?: 'status' | 'createdAt' | 'highestBid' | 'highestBidderId' | 'winnerId' | 'endedAt';

  @PrimaryKey({ type: 'bigint', autoincrement: true })
  id!: string;

  @Property({ type: 'text' })
  sellerId!: string;

  @Property({ type: 'text' })
  nftId!: string;

  @Property({ type: 'text' })
  title!: string;

  @Property({ type: 'integer' })
  startingPrice!: number;

  @Property({ type: 'integer' })
  minIncrement!: number;

  @Property({ type: 'timestamptz', length: 3 })
  endTime!: Date;

  @Enum({ items: [...AUCTION_STATUSES], type: 'text', default: 'ACTIVE' })
  status!: AuctionStatus;

  @Property({ type: 'integer', nullable: true })
  highestBid: number | null = null;

  @Property({ type: 'text', nullable: true })
  highestBidderId: string | null = null;

  @Property({ type: 'text', nullable: true })
  winnerId: string | null = null;

  @Property({ type: 'integer' })
  softCloseSeconds!: number;

  @Property({ type: 'timestamptz', length: 3, nullable: true })
  endedAt: Date | null = null;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  createdAt!: Date;
}

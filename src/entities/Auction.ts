import { OptionalProps } from '@mikro-orm/core';
import { Entity, PrimaryKey, Property, Enum, Index, Check, ManyToOne } from '@mikro-orm/decorators/legacy';
import { User } from './User.js';

export const AUCTION_STATUSES = ['ACTIVE', 'ENDED', 'CANCELLED'] as const;
export type AuctionStatus = (typeof AUCTION_STATUSES)[number];

/** The one table of allowed transitions; services check it in one place. */
export const AUCTION_TRANSITIONS: Record<AuctionStatus, readonly AuctionStatus[]> = {
  ACTIVE: ['ENDED', 'CANCELLED'],
  ENDED: [],
  CANCELLED: [],
};

@Entity({ tableName: 'auctions' })
// Pending auctions by end (the wake-up's next end, the end batch): an ended one leaves it.
@Index({ name: 'auctions_active_end_time_idx', properties: ['endTime'], where: `"status" = 'ACTIVE'` })
export class Auction {
  [OptionalProps]?: 'status' | 'createdAt' | 'highestBid' | 'highestBidderId' | 'winnerId' | 'endedAt';

  @PrimaryKey({ type: 'bigint', autoincrement: true })
  id!: string;

  @ManyToOne(() => User, {
    mapToPk: true,
    joinColumn: 'seller_id',
    foreignKeyName: 'auctions_seller_id_fkey',
    deleteRule: 'no action',
    updateRule: 'no action',
  })
  sellerId!: string;

  @Property({ type: 'text' })
  nftId!: string;

  @Property({ type: 'text' })
  title!: string;

  @Property({ type: 'integer' })
  @Check({ name: 'auctions_starting_price_check', expression: '"starting_price" >= 0' })
  startingPrice!: number;

  @Property({ type: 'integer' })
  @Check({ name: 'auctions_min_increment_check', expression: '"min_increment" > 0' })
  minIncrement!: number;

  @Property({ type: 'timestamptz', length: 3 })
  endTime!: Date;

  @Enum({ items: [...AUCTION_STATUSES], type: 'text', default: 'ACTIVE' })
  status!: AuctionStatus;

  @Property({ type: 'integer', nullable: true })
  highestBid: number | null = null;

  @ManyToOne(() => User, {
    mapToPk: true,
    joinColumn: 'highest_bidder_id',
    nullable: true,
    foreignKeyName: 'auctions_highest_bidder_id_fkey',
    deleteRule: 'no action',
    updateRule: 'no action',
  })
  highestBidderId: string | null = null;

  @ManyToOne(() => User, {
    mapToPk: true,
    joinColumn: 'winner_id',
    nullable: true,
    foreignKeyName: 'auctions_winner_id_fkey',
    deleteRule: 'no action',
    updateRule: 'no action',
  })
  winnerId: string | null = null;

  @Property({ type: 'integer' })
  @Check({ name: 'auctions_soft_close_seconds_check', expression: '"soft_close_seconds" >= 0' })
  softCloseSeconds!: number;

  @Property({ type: 'timestamptz', length: 3, nullable: true })
  endedAt: Date | null = null;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  createdAt!: Date;
}

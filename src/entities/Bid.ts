import { OptionalProps } from '@mikro-orm/core';
import { Entity, PrimaryKey, Property, Index, Check, ManyToOne } from '@mikro-orm/decorators/legacy';
import { Auction } from './Auction.js';
import { User } from './User.js';

@Entity({ tableName: 'bids' })
@Index({ name: 'bids_auction_id_idx', properties: ['auctionId', 'amount'] })
export class Bid {
  [OptionalProps]?: 'createdAt';

  @PrimaryKey({ type: 'bigint', autoincrement: true })
  id!: string;

  @ManyToOne(() => Auction, {
    mapToPk: true,
    joinColumn: 'auction_id',
    foreignKeyName: 'bids_auction_id_fkey',
    deleteRule: 'no action',
    updateRule: 'no action',
  })
  auctionId!: string;

  @ManyToOne(() => User, {
    mapToPk: true,
    joinColumn: 'bidder_id',
    foreignKeyName: 'bids_bidder_id_fkey',
    deleteRule: 'no action',
    updateRule: 'no action',
  })
  bidderId!: string;

  @Property({ type: 'integer' })
  @Check({ name: 'bids_amount_check', expression: '"amount" > 0' })
  amount!: number;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  createdAt!: Date;
}

import { OptionalProps } from '@mikro-orm/core';
import { Entity, PrimaryKey, Property, Index } from '@mikro-orm/decorators/legacy';

@Entity({ tableName: 'bids' })
@Index({ name: 'bids_auction_id_idx', properties: ['auctionId', 'amount'] })
export class Bid {
  [OptionalProps]?: 'createdAt';

  @PrimaryKey({ type: 'bigint', autoincrement: true })
  id!: string;

  @Property({ type: 'bigint' })
  auctionId!: string;

  @Property({ type: 'text' })
  bidderId!: string;

  @Property({ type: 'integer' })
  amount!: number;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  createdAt!: Date;
}

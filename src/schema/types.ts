import { Field, Float, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { AUCTION_STATUSES, type AuctionStatus as AuctionStatusValue } from '../entities/Auction.js';
import type { Role as RoleValue } from '../entities/User.js';

export enum AuctionStatus {
  ACTIVE = 'ACTIVE',
  ENDED = 'ENDED',
  CANCELLED = 'CANCELLED',
}
registerEnumType(AuctionStatus, { name: 'AuctionStatus' });
// The GraphQL enum and the entity's state type must name the same states.
if (AUCTION_STATUSES.join() !== Object.values(AuctionStatus).join()) throw new Error('AuctionStatus out of sync');

/**
 * GraphQL's names are SCREAMING_CASE like every other enum; the values are the tokens' `role` claim
 * (`user` | `admin`, the identity contract), so the mapping happens here, at the edge, and nowhere else.
 */
export enum Role {
  USER = 'user',
  ADMIN = 'admin',
}
registerEnumType(Role, { name: 'Role', description: "The caller's role, from the token's `role` claim (`user` or `admin`)" });
// Checked by the compiler: the enum's values are exactly the claim's roles, no more, no fewer.
const roleValuesInSync: [`${Role}`] extends [RoleValue] ? ([RoleValue] extends [`${Role}`] ? true : never) : never = true;
void roleValuesInSync;

@ObjectType({
  description:
    "Relay's PageInfo. Pages go forward (`first`, `after`), newest first unless the field says otherwise. " +
    'hasPreviousPage is computed, not always false: true when `after` was given and an item lies at or before that cursor. ' +
    'startCursor and endCursor are the first and last edges\' cursors, null on an empty page.',
})
export class PageInfo {
  @Field({ description: 'More items after endCursor: ask again with `after: endCursor`' }) hasNextPage!: boolean;
  @Field({ description: 'Items before this page: `after` was given and one lies at or before it' }) hasPreviousPage!: boolean;
  @Field(() => String, { nullable: true }) startCursor!: string | null;
  @Field(() => String, { nullable: true }) endCursor!: string | null;
}

@ObjectType()
export class Bid {
  @Field(() => ID) id!: string;
  @Field(() => ID) auctionId!: string;
  @Field(() => ID) bidderId!: string;
  @Field(() => Int, { description: 'Cents' }) amount!: number;
  @Field() createdAt!: Date;
}

@ObjectType()
export class BidEdge {
  @Field() cursor!: string;
  @Field(() => Bid) node!: Bid;
}

@ObjectType({ description: "An auction's bids, highest first" })
export class BidConnection {
  @Field(() => [BidEdge]) edges!: BidEdge[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

@ObjectType()
export class Auction {
  @Field(() => ID) id!: string;
  @Field(() => ID) sellerId!: string;
  @Field() nftId!: string;
  @Field() title!: string;
  @Field(() => Int, { description: 'Cents' }) startingPrice!: number;
  @Field(() => Int, { description: 'Cents' }) minIncrement!: number;
  @Field({ description: 'Moves later when a bid lands in the soft-close window' }) endTime!: Date;
  @Field(() => AuctionStatus) status!: AuctionStatusValue;
  @Field(() => Int, { nullable: true }) highestBid!: number | null;
  @Field(() => ID, { nullable: true }) highestBidderId!: string | null;
  @Field(() => ID, { nullable: true }) winnerId!: string | null;
  @Field(() => Int) softCloseSeconds!: number;
  @Field(() => Date, { nullable: true }) endedAt!: Date | null;
  @Field() createdAt!: Date;
}

@ObjectType()
export class AuctionEdge {
  @Field() cursor!: string;
  @Field(() => Auction) node!: Auction;
}


@ObjectType()
export class AuctionConnection {
  @Field(() => [AuctionEdge]) edges!: AuctionEdge[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

@ObjectType()
export class AuctionEnded {
  @Field(() => ID) eventId!: string;
  @Field(() => Auction) auction!: Auction;
  @Field(() => ID, { nullable: true }) winnerId!: string | null;
  @Field(() => Int, { nullable: true, description: 'The winning bid in cents; null without bids' }) finalPrice!: number | null;
  @Field() endedAt!: Date;
}

@ObjectType()
export class AuctionCountdown {
  @Field(() => ID) auctionId!: string;
  @Field() endTime!: Date;
  @Field() serverTime!: Date;
  @Field(() => Float, { description: 'Milliseconds until endTime, never negative' }) remainingMs!: number;
  @Field(() => AuctionStatus) status!: AuctionStatusValue;
}

@ObjectType()
export class Me {
  @Field(() => ID) id!: string;
  @Field(() => Role) role!: RoleValue;
  @Field() createdAt!: Date;
}

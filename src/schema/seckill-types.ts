import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';

export enum SeckillTicketStatus {
  QUEUED = 'QUEUED',
  SOLD_OUT = 'SOLD_OUT',
  DUPLICATE = 'DUPLICATE',
  CLOSED = 'CLOSED',
}
registerEnumType(SeckillTicketStatus, { name: 'SeckillTicketStatus' });

export enum SeckillResultStatus {
  QUEUED = 'QUEUED',
  ORDERED = 'ORDERED',
  FAILED = 'FAILED',
  NONE = 'NONE',
}
registerEnumType(SeckillResultStatus, { name: 'SeckillResultStatus' });

@ObjectType({ description: 'The answer to a flash-sale request, given at once; the order follows (seckillResultReady)' })
export class SeckillTicket {
  @Field(() => ID) requestId!: string;
  @Field(() => ID) productId!: string;
  @Field(() => SeckillTicketStatus) status!: 'QUEUED' | 'SOLD_OUT' | 'DUPLICATE' | 'CLOSED';
}

@ObjectType({ description: "The caller's outcome in a flash sale" })
export class SeckillResult {
  @Field(() => SeckillResultStatus) status!: 'QUEUED' | 'ORDERED' | 'FAILED' | 'NONE';
  @Field(() => ID, { nullable: true, description: 'ORDERED: the PENDING order to pay' }) orderId!: string | null;
  @Field(() => String, { nullable: true, description: 'FAILED: SOLD_OUT, DUPLICATE, CLOSED or INVALID' }) reason!: string | null;
}

@ObjectType({ description: 'A flash sale as PostgreSQL (sold) and Redis (left, queued, dead letters) see it: sold + left = total' })
export class FlashSale {
  @Field(() => ID) productId!: string;
  @Field(() => Int, { description: 'Units the sale began with' }) total!: number;
  @Field(() => Int, { description: 'Units still to sell' }) left!: number;
  @Field(() => Int, { description: 'Units in orders neither cancelled nor expired' }) sold!: number;
  @Field(() => Int, { description: 'Stream entries not yet made into orders (pending and unread)' }) queued!: number;
  @Field(() => Int, { description: 'Entries moved to stream:seckill:{productId}:dead after SECKILL_MAX_DELIVERIES' }) deadLetters!: number;
}

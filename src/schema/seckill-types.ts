import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { PageInfo } from './types.js';

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
  @Field(() => String, { nullable: true, description: 'FAILED: SOLD_OUT, DUPLICATE, CLOSED, INACTIVE (the product was withdrawn) or INVALID' }) reason!: string | null;
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

@ObjectType({ description: 'A flash-sale request that failed SECKILL_MAX_DELIVERIES times and made no order; its unit went back to the sale' })
export class DeadLetter {
  @Field(() => ID, { description: '`{productId}:{id in stream:seckill:{productId}:dead}`, for replayDeadLetter and discardDeadLetter' }) id!: string;
  @Field({ description: 'Its id in stream:seckill:{productId}' }) streamId!: string;
  @Field(() => String, { nullable: true, description: 'The buyer (null: the entry named none)' }) userId!: string | null;
  @Field({ description: 'Its last failure, as the consumer that gave up on it saw it' }) reason!: string;
  @Field(() => Int, { description: 'Deliveries before it was given up' }) attempts!: number;
  @Field({ description: 'When it was given up' }) at!: Date;
}

@ObjectType()
export class DeadLetterEdge {
  @Field() cursor!: string;
  @Field(() => DeadLetter) node!: DeadLetter;
}

@ObjectType()
export class DeadLetterConnection {
  @Field(() => [DeadLetterEdge]) edges!: DeadLetterEdge[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

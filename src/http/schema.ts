import 'reflect-metadata';
import { buildSchema } from 'type-graphql';
import { DateTimeResolver } from 'graphql-scalars';
import type { GraphQLSchema } from 'graphql';
import { AuctionResolver } from '../resolvers/auction.resolver.js';
import { AuctionSubscriptionResolver } from '../resolvers/auction-subscriptions.resolver.js';
import { UserResolver } from '../resolvers/user.resolver.js';
import { OrderResolver } from '../resolvers/order.resolver.js';
import { OrderSubscriptionResolver } from '../resolvers/order-subscriptions.resolver.js';
import { ProductResolver } from '../resolvers/product.resolver.js';
import { PaymentResolver } from '../resolvers/payment.resolver.js';
import { MessageResolver } from '../resolvers/message.resolver.js';
import { VipResolver } from '../resolvers/vip.resolver.js';
import { SeckillResolver } from '../resolvers/seckill.resolver.js';
import { JobResolver } from '../resolvers/job.resolver.js';
import { AuditResolver } from '../resolvers/audit.resolver.js';

export const resolvers = [
  AuctionResolver,
  AuctionSubscriptionResolver,
  UserResolver,
  ProductResolver,
  OrderResolver,
  OrderSubscriptionResolver,
  PaymentResolver,
  MessageResolver,
  VipResolver,
  SeckillResolver,
  JobResolver,
  AuditResolver,
] as const;

/**
 * type-graphql insists on a PubSub when there are subscriptions. Ours never uses it: events go
 * through the outbox to Redis, and each subscription names its own `subscribe` source.
 */
const outboxOnly = {
  publish(): never {
    throw new Error('Publish domain events through the outbox (EventSink), not the schema PubSub');
  },
  subscribe(): never {
    throw new Error('Every subscription declares its own subscribe function');
  },
};

export function createSchema(): Promise<GraphQLSchema> {
  return buildSchema({
    resolvers,
    pubSub: outboxOnly,
    scalarsMap: [{ type: Date, scalar: DateTimeResolver }],
    // class-validator: never echo the caller's input back in errors.
    validate: { forbidUnknownValues: false, validationError: { target: false, value: false } },
  });
}

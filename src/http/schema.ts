import 'reflect-metadata';
import { buildSchema, getMetadataStorage } from 'type-graphql';
import { DateTimeResolver } from 'graphql-scalars';
import { getNullableType, isScalarType, type GraphQLSchema } from 'graphql';
import { AuctionResolver } from '../resolvers/auction.resolver.js';
import { AuctionSubscriptionResolver } from '../resolvers/auction-subscriptions.resolver.js';
import { UserResolver } from '../resolvers/user.resolver.js';
import { OrderResolver } from '../resolvers/order.resolver.js';
import { OrderSubscriptionResolver } from '../resolvers/order-subscriptions.resolver.js';
import { ProductResolver } from '../resolvers/product.resolver.js';
import { PaymentResolver } from '../resolvers/payment.resolver.js';
import { RefundResolver } from '../resolvers/refund.resolver.js';
import { MessageResolver } from '../resolvers/message.resolver.js';
import { VipResolver } from '../resolvers/vip.resolver.js';
import { SeckillResolver } from '../resolvers/seckill.resolver.js';
import { JobResolver } from '../resolvers/job.resolver.js';
import { AuditResolver } from '../resolvers/audit.resolver.js';
import { FlashSaleAdminResolver } from '../resolvers/flash-sale-admin.resolver.js';

export const resolvers = [
  AuctionResolver,
  AuctionSubscriptionResolver,
  UserResolver,
  ProductResolver,
  OrderResolver,
  OrderSubscriptionResolver,
  PaymentResolver,
  RefundResolver,
  MessageResolver,
  VipResolver,
  SeckillResolver,
  FlashSaleAdminResolver,
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

export async function createSchema(): Promise<GraphQLSchema> {
  const schema = await buildSchema({
    resolvers,
    pubSub: outboxOnly,
    scalarsMap: [{ type: Date, scalar: DateTimeResolver }],
    // class-validator: never echo the caller's input back in errors.
    validate: { forbidUnknownValues: false, validationError: { target: false, value: false } },
  });
  directSubscriptionResolvers(schema);
  return schema;
}

/**
 * Every event a subscriber hears is executed through its subscription's root field resolver. For a
 * method with an `@Arg`, type-graphql's resolver is asynchronous whatever the argument (its argument
 * validation is an async function, though class-validator validates only objects), so each event's
 * execution became a chain of promises: 1,000 `auctionEnded` events took 6.7–11 ms to execute, 3.7 ms
 * with the method called directly (docs/benchmarks.md, "Same-instant ends"). The root fields whose methods
 * take only the event (`@Root()`, untyped), scalar arguments (which the subscribe function has
 * already used) and the context, with no middleware and no roles, call their method directly; any
 * other shape keeps type-graphql's resolver.
 */
function directSubscriptionResolvers(schema: GraphQLSchema): void {
  const fields = schema.getSubscriptionType()?.getFields() ?? {};
  for (const meta of getMetadataStorage().subscriptions) {
    const field = fields[meta.schemaName];
    const target = meta.target as new () => Record<string, (...params: unknown[]) => unknown>;
    if (!field || (meta.middlewares?.length ?? 0) > 0 || meta.roles !== undefined || target.length > 0) continue;
    const params = [...(meta.params ?? [])].sort((a, b) => a.index - b.index);
    const scalarArg = (name: string) => {
      const arg = field.args.find((a) => a.name === name);
      return arg !== undefined && isScalarType(getNullableType(arg.type));
    };
    const direct = params.every(
      (p) =>
        (p.kind === 'root' && p.propertyName === undefined && p.getType === undefined) ||
        (p.kind === 'context' && p.propertyName === undefined) ||
        (p.kind === 'arg' && scalarArg(p.name)),
    );
    if (!direct) continue;
    const instance = new target();
    const method = instance[meta.methodName];
    type Source = (root: unknown, args: Record<string, unknown>, context: unknown) => unknown;
    const sources: Source[] = params.map((p) => {
      if (p.kind === 'root') return (root) => root;
      if (p.kind === 'context') return (_root, _args, context) => context;
      const name = (p as { name: string }).name;
      return (_root, args) => args[name];
    });
    field.resolve = (root, args: Record<string, unknown>, context) =>
      method.apply(
        instance,
        sources.map((source) => source(root, args, context)),
      );
  }
}

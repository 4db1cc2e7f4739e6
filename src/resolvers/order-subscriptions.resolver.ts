import { Arg, ID, Resolver, Root, Subscription, type SubscribeResolverData } from 'type-graphql';
import { requireUser, type Context } from '../context.js';
import { filterIterator } from '../events/iterators.js';
import { channelOf, reviveOrder, type DomainEvents } from '../events/types.js';
import { Order, OrderExpired } from '../schema/order-types.js';

type Data<A> = SubscribeResolverData<unknown, A, Context>;

@Resolver()
export class OrderSubscriptionResolver {
  @Subscription(() => OrderExpired, {
    description: "Every order of the caller's that expires; admins hear every order",
    subscribe: ({ context }: Data<Record<string, never>>) => {
      const user = requireUser(context);
      const events = context.services.bus.iterate<DomainEvents['ORDER_EXPIRED']>(channelOf('ORDER_EXPIRED'));
      return user.role === 'admin' ? events : filterIterator(events, (e) => e.order.userId === user.id);
    },
  })
  orderExpired(@Root() event: DomainEvents['ORDER_EXPIRED']): OrderExpired {
    return { eventId: event.eventId, order: reviveOrder(event.order) };
  }

  @Subscription(() => Order, {
    description: 'The order after every change: payment, cancellation, expiry. The owner or an admin.',
    subscribe: async ({ args, context }: Data<{ orderId: string }>) => {
      const user = requireUser(context);
      // NOT_FOUND / FORBIDDEN before anything listens; on an entity manager let go at once (the
      // subscription's context, and its own, live as long as the subscription).
      await context.services.orderQueries.assertMayWatch(context.services.orm.em.fork(), user, args.orderId);
      return context.services.bus.iterate(channelOf('ORDER_UPDATED', args.orderId));
    },
  })
  orderUpdated(@Root() event: DomainEvents['ORDER_UPDATED'], @Arg('orderId', () => ID) _orderId: string): Order {
    return reviveOrder(event.order);
  }
}

import { Arg, Args, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root, Subscription, type SubscribeResolverData } from 'type-graphql';
import { requireAdmin, type Context } from '../context.js';
import { Order as OrderEntity } from '../entities/Order.js';
import { Payment as PaymentEntity } from '../entities/Payment.js';
import type { Refund as RefundEntity } from '../entities/Refund.js';
import { channelOf, reviveRefund, type DomainEvents, type RefundData } from '../events/types.js';
import { Order } from '../schema/order-types.js';
import { Payment } from '../schema/payment-types.js';
import { Refund, RefundConnection, RefundsArgs } from '../schema/refund-types.js';
import { BatchLoader } from '../services/batch-loader.js';

type Data<A> = SubscribeResolverData<unknown, A, Context>;
type RefundRow = Pick<RefundEntity, 'paymentId' | 'orderId'>;

/** One request's (or subscription's) loaders of refunds' payments and orders: a page of refunds reads each table once. */
const loaders = new WeakMap<Context, { payments: BatchLoader<string, PaymentEntity | null>; orders: BatchLoader<string, OrderEntity | null> }>();
function loadersOf(ctx: Context) {
  let l = loaders.get(ctx);
  if (!l) {
    const byId = async <T extends { id: string }>(rows: Promise<T[]>, ids: string[]) => {
      const found = new Map((await rows).map((r) => [String(r.id), r]));
      return new Map(ids.map((id) => [id, found.get(id) ?? null]));
    };
    l = {
      payments: new BatchLoader((ids) => byId(ctx.em.find(PaymentEntity, { id: { $in: ids } }), ids)),
      orders: new BatchLoader((ids) => byId(ctx.em.find(OrderEntity, { id: { $in: ids } }), ids)),
    };
    loaders.set(ctx, l);
  }
  return l;
}

/** Refunds are the admins': making them, listing them, hearing them. */
@Resolver(() => Refund)
export class RefundResolver {
  @Mutation(() => Refund, {
    description:
      "Admins only: a PAID order's money back (its payment at its provider, its wallet part to the wallet). SUCCEEDED at once when nothing is refunded at a provider; otherwise PENDING until the provider confirms. Once SUCCEEDED the order is REFUNDED and its product's effect reversed. CONFLICT when the order is not PAID or a refund of it is PENDING or SUCCEEDED",
  })
  async refundOrder(@Arg('orderId', () => ID) orderId: string, @Arg('reason') reason: string, @Ctx() ctx: Context): Promise<Refund> {
    const admin = requireAdmin(ctx);
    return ctx.services.refunds.refundOrder(admin, orderId, reason);
  }

  @Mutation(() => Refund, {
    description:
      "Admins only: a payment kept for a refund (needsRefund: money that bought nothing) given back at its provider; its order's status does not change. CONFLICT when the payment paid its order (refundOrder) or a refund of it is PENDING or SUCCEEDED",
  })
  async refundPayment(@Arg('paymentId', () => ID) paymentId: string, @Arg('reason') reason: string, @Ctx() ctx: Context): Promise<Refund> {
    const admin = requireAdmin(ctx);
    return ctx.services.refunds.refundPayment(admin, paymentId, reason);
  }

  @Query(() => RefundConnection, { description: 'Admins only: refunds, newest first' })
  async refunds(@Args() args: RefundsArgs, @Ctx() ctx: Context): Promise<RefundConnection> {
    requireAdmin(ctx);
    return ctx.services.refunds.list(ctx.em, args.filter ?? {}, args.first, args.after);
  }

  @Subscription(() => Refund, {
    description: 'Admins: every refund made, SUCCEEDED or FAILED',
    subscribe: ({ context }: Data<Record<string, never>>) => {
      requireAdmin(context);
      return context.services.bus.iterate(channelOf('REFUND_UPDATED'));
    },
  })
  refundUpdated(@Root() event: DomainEvents['REFUND_UPDATED']): RefundData {
    return reviveRefund(event.refund);
  }

  @FieldResolver(() => Payment, { nullable: true, description: 'The payment refunded at its provider; null for a WALLET or OFFLINE order' })
  async payment(@Root() refund: RefundRow, @Ctx() ctx: Context): Promise<PaymentEntity | null> {
    return refund.paymentId ? loadersOf(ctx).payments.load(String(refund.paymentId)) : null;
  }

  @FieldResolver(() => Order, { nullable: true, description: "The refunded order, or the refunded payment's order (null when no order has its number)" })
  async order(@Root() refund: RefundRow, @Ctx() ctx: Context): Promise<OrderEntity | null> {
    return refund.orderId ? loadersOf(ctx).orders.load(String(refund.orderId)) : null;
  }
}

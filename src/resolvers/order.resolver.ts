import { Arg, Args, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { requireAdmin, requireUser, type Context } from '../context.js';
import { AdminCreateOrderInput, CreateOrderInput, OrdersArgs } from '../schema/order-inputs.js';
import { Order, OrderConnection } from '../schema/order-types.js';
import { PaymentIntent } from '../schema/payment-types.js';
import { isOnline } from '../services/payments.js';
import { isExpired } from '../services/orders/rules.js';
import type { Order as OrderEntity } from '../entities/Order.js';

/** What the audit log keeps of an order an admin made or cancelled. */
const orderResult = (o: OrderEntity) => ({ id: o.id, orderNo: o.orderNo, userId: o.userId, status: o.status, amount: o.amount, paymentMethod: o.paymentMethod });

/** Thin: who is asking, then the order services, in one transaction for writes. */
@Resolver(() => Order)
export class OrderResolver {
  @Query(() => Order, { description: 'The owner or an admin' })
  async order(@Arg('id', () => ID) id: string, @Ctx() ctx: Context): Promise<Order> {
    const user = requireUser(ctx);
    return ctx.services.orderQueries.get(ctx.em, user, id);
  }

  @Query(() => OrderConnection, { description: 'Newest first, with cursor pagination; users see their own, admins anyone’s' })
  async orders(@Args() args: OrdersArgs, @Ctx() ctx: Context): Promise<OrderConnection> {
    const user = requireUser(ctx);
    return ctx.services.orderQueries.list(ctx.em, user, args.filter ?? {}, args.first, args.after, ctx.now());
  }

  @Mutation(() => Order, {
    description:
      'H5: PENDING until paid; the wallet part is frozen now and given back if it expires. WECHAT, ALIPAY and MIXED orders answer `payment`: what the client needs to pay the rest at the provider',
  })
  async createOrder(@Arg('input') input: CreateOrderInput, @Ctx() ctx: Context): Promise<Order> {
    const user = requireUser(ctx);
    const order = await ctx.services.tx.run((uow) => ctx.services.orderCreation.create(uow, user, input));
    // The provider is called after the order committed, with no transaction open.
    if (isOnline(order)) await ctx.services.payments.start(ctx.services.tx, order, ctx.clientIp);
    return order;
  }

  @Mutation(() => Order, { description: 'Admins only: a WALLET or OFFLINE order, PAID at once' })
  async adminCreateOrder(@Arg('input') input: AdminCreateOrderInput, @Ctx() ctx: Context): Promise<Order> {
    const admin = requireAdmin(ctx);
    return ctx.services.tx.run(async (uow) => {
      const order = await ctx.services.orderCreation.adminCreate(uow, input);
      await ctx.services.audit.record(uow, admin, 'ADMIN_CREATE_ORDER', order.id, { input: { ...input }, result: orderResult(order) });
      return order;
    });
  }

  @Mutation(() => Order, { description: 'The owner or an admin: a PENDING WALLET order becomes PAID, its frozen money debited' })
  async payOrderWithWallet(@Arg('orderId', () => ID) orderId: string, @Ctx() ctx: Context): Promise<Order> {
    const user = requireUser(ctx);
    return ctx.services.tx.run((uow) => ctx.services.orderSettlement.payWithWallet(uow, user, orderId));
  }

  @Mutation(() => Order, { description: 'The owner or an admin: a PENDING order becomes CANCELLED, its frozen money given back' })
  async cancelOrder(
    @Arg('orderId', () => ID) orderId: string,
    @Arg('reason', () => String, { nullable: true }) reason: string | null,
    @Ctx() ctx: Context,
  ): Promise<Order> {
    const user = requireUser(ctx);
    return ctx.services.tx.run(async (uow) => {
      const order = await ctx.services.orderSettlement.cancel(uow, user, orderId, reason);
      // An admin's cancel is an admin action: audited, committed with it. A buyer's own is not.
      if (user.role === 'admin') await ctx.services.audit.record(uow, user, 'CANCEL_ORDER', order.id, { orderId, reason, result: orderResult(order) });
      return order;
    });
  }

  @FieldResolver(() => PaymentIntent, { nullable: true, description: 'WECHAT, ALIPAY and MIXED orders: how to pay at the provider' })
  async payment(@Root() order: Order, @Ctx() ctx: Context): Promise<PaymentIntent | null> {
    return ctx.intents.load(order.id);
  }

  @FieldResolver(() => Boolean, { description: 'PENDING and expiresAt has come (the expiry job settles it within a second)' })
  isExpired(@Root() order: Order, @Ctx() ctx: Context): boolean {
    return isExpired(order, ctx.now());
  }
}

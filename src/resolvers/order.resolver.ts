import { Arg, Args, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import { requireAdmin, requireUser, type Context } from '../context.js';
import { AdminCreateOrderInput, CreateOrderInput, OrdersArgs } from '../schema/order-inputs.js';
import { Order, OrderConnection } from '../schema/order-types.js';

/** Thin: who is asking, then the order service, in one transaction for writes. */
@Resolver(() => Order)
export class OrderResolver {
  @Query(() => Order, { description: 'The owner or an admin' })
  async order(@Arg('id', () => ID) id: string, @Ctx() ctx: Context): Promise<Order> {
    const user = requireUser(ctx);
    return ctx.services.orders.get(ctx.em, user, id, ctx.services.clock.now()) as unknown as Order;
  }

  @Query(() => OrderConnection, { description: 'Newest first, with cursor pagination; users see their own, admins anyone’s' })
  async orders(@Args() args: OrdersArgs, @Ctx() ctx: Context): Promise<OrderConnection> {
    const user = requireUser(ctx);
    const now = ctx.services.clock.now();
    return ctx.services.orders.list(ctx.em, user, args.filter ?? {}, args.first, args.after ?? undefined, now) as unknown as OrderConnection;
  }

  @Mutation(() => Order, { description: 'H5: PENDING until paid; the wallet part is frozen now and given back if it expires' })
  async createOrder(@Arg('input') input: CreateOrderInput, @Ctx() ctx: Context): Promise<Order> {
    const user = requireUser(ctx);
    return ctx.services.tx.run((uow) => ctx.services.orders.create(uow, user, input)) as unknown as Order;
  }

  @Mutation(() => Order, { description: 'Admins only: a WALLET or OFFLINE order, PAID at once' })
  async adminCreateOrder(@Arg('input') input: AdminCreateOrderInput, @Ctx() ctx: Context): Promise<Order> {
    requireAdmin(ctx);
    return ctx.services.tx.run((uow) => ctx.services.orders.adminCreate(uow, input)) as unknown as Order;
  }

  @Mutation(() => Order, { description: 'The owner or an admin: a PENDING WALLET order becomes PAID, its frozen money debited' })
  async payOrderWithWallet(@Arg('orderId', () => ID) orderId: string, @Ctx() ctx: Context): Promise<Order> {
    const user = requireUser(ctx);
    return ctx.services.tx.run((uow) => ctx.services.orders.payWithWallet(uow, user, orderId)) as unknown as Order;
  }

  @Mutation(() => Order, { description: 'The owner or an admin: a PENDING order becomes CANCELLED, its frozen money given back' })
  async cancelOrder(
    @Arg('orderId', () => ID) orderId: string,
    @Arg('reason', () => String, { nullable: true }) reason: string | null,
    @Ctx() ctx: Context,
  ): Promise<Order> {
    const user = requireUser(ctx);
    return ctx.services.tx.run((uow) => ctx.services.orders.cancel(uow, user, orderId, reason)) as unknown as Order;
  }
}

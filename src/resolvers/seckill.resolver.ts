import { Arg, Ctx, ID, Mutation, Query, Resolver, Root, Subscription, type SubscribeResolverData } from 'type-graphql';
import { requireAdmin, requireUser, type Context } from '../context.js';
import { channelOf, type DomainEvents } from '../events/types.js';
import { FlashSale, SeckillResult, SeckillTicket } from '../schema/seckill-types.js';
import { parseId } from '../services/ids.js';
import { badInput } from '../errors.js';

type Data<A> = SubscribeResolverData<unknown, A, Context>;

/** Flash sales: users request and read their own outcome, admins load and watch a sale. */
@Resolver()
export class SeckillResolver {
  @Mutation(() => SeckillTicket, { description: 'Asks for one unit: QUEUED (an order follows), SOLD_OUT, DUPLICATE or CLOSED, at once' })
  async seckill(@Arg('productId', () => ID) productId: string, @Ctx() ctx: Context): Promise<SeckillTicket> {
    const user = requireUser(ctx);
    return ctx.services.flashSales.request(() => ctx.em, user, productId, ctx.now());
  }

  @Query(() => SeckillResult, { description: "The caller's outcome in this sale" })
  async seckillResult(@Arg('productId', () => ID) productId: string, @Ctx() ctx: Context): Promise<SeckillResult> {
    const user = requireUser(ctx);
    return ctx.services.flashSales.result(ctx.em, user, productId);
  }

  @Query(() => FlashSale, { description: 'Admins only' })
  async flashSale(@Arg('productId', () => ID) productId: string, @Ctx() ctx: Context): Promise<FlashSale> {
    requireAdmin(ctx);
    return ctx.services.flashSales.view(ctx.em, productId);
  }

  @Mutation(() => FlashSale, { description: 'Admins only: loads the sale into Redis from PostgreSQL (again: rebuilds it)' })
  async startFlashSale(@Arg('productId', () => ID) productId: string, @Ctx() ctx: Context): Promise<FlashSale> {
    const admin = requireAdmin(ctx);
    const sale = await ctx.services.flashSales.start(ctx.em, productId);
    // Loading is a Redis step: its entry is written right after it.
    await ctx.services.audit.recordDone(ctx.em, admin, 'START_FLASH_SALE', sale.productId, ctx.now(), { productId, result: { ...sale } });
    return sale;
  }

  @Subscription(() => SeckillResult, {
    description: "The caller's own outcome in this sale, when a queued request was ordered or refused",
    subscribe: async ({ args, context }: Data<{ productId: string }>) => {
      const user = requireUser(context);
      const id = parseId(args.productId, 'a product', 'productId');
      // Before listening: the channel is per (product, user), so a made-up product would be a Redis
      // subscription of its own. On an entity manager let go at once (the context lives on).
      const product = await context.services.products.get(context.services.orm.em.fork(), id);
      if (product.kind !== 'FLASH_SALE') throw badInput(`Product ${id} is not a FLASH_SALE`, 'productId');
      return context.services.bus.iterate<DomainEvents['SECKILL_RESULT']>(channelOf('SECKILL_RESULT', `${id}:${user.id}`));
    },
  })
  seckillResultReady(@Arg('productId', () => ID) _productId: string, @Root() event: DomainEvents['SECKILL_RESULT']): SeckillResult {
    return { status: event.status, orderId: event.orderId, reason: event.reason };
  }
}

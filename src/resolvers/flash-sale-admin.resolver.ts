import { Arg, Args, Ctx, ID, Mutation, Query, Resolver } from 'type-graphql';
import { requireAdmin, type Context } from '../context.js';
import { ConnectionArgs } from '../schema/inputs.js';
import { DeadLetterConnection, FlashSale, SeckillTicket } from '../schema/seckill-types.js';

/** Repairing a flash sale: its dead letters, and closing it early. Admins only, each action audited. */
@Resolver()
export class FlashSaleAdminResolver {
  @Query(() => DeadLetterConnection, { description: "Admins only: the sale's dead letters (stream:seckill:{productId}:dead), oldest first" })
  async flashSaleDeadLetters(@Arg('productId', () => ID) productId: string, @Args() args: ConnectionArgs, @Ctx() ctx: Context): Promise<DeadLetterConnection> {
    requireAdmin(ctx);
    return ctx.services.seckillDeadLetters.list(ctx.em, productId, args.first, args.after);
  }

  @Mutation(() => SeckillTicket, {
    description:
      "Admins only: the dead letter's request taken again under the sale's rules, as if its user asked now. QUEUED removes the dead letter; SOLD_OUT, DUPLICATE or CLOSED keep it",
  })
  async replayDeadLetter(@Arg('id', () => ID) id: string, @Ctx() ctx: Context): Promise<SeckillTicket> {
    const admin = requireAdmin(ctx);
    const ticket = await ctx.services.seckillDeadLetters.replay(ctx.em, id, ctx.now());
    await ctx.services.audit.recordDone(ctx.em, admin, 'REPLAY_DEAD_LETTER', id, ctx.now(), { id, result: { ...ticket } });
    return ticket;
  }

  @Mutation(() => Boolean, { description: 'Admins only: removes the dead letter; false when it was gone already' })
  async discardDeadLetter(@Arg('id', () => ID) id: string, @Ctx() ctx: Context): Promise<boolean> {
    const admin = requireAdmin(ctx);
    const removed = await ctx.services.seckillDeadLetters.discard(ctx.em, id);
    await ctx.services.audit.recordDone(ctx.em, admin, 'DISCARD_DEAD_LETTER', id, ctx.now(), { id, result: removed });
    return removed;
  }

  @Mutation(() => FlashSale, { description: "Admins only: the sale's window closes now; from the answer on, seckill answers CLOSED on every instance" })
  async stopFlashSale(@Arg('productId', () => ID) productId: string, @Ctx() ctx: Context): Promise<FlashSale> {
    const admin = requireAdmin(ctx);
    return ctx.services.tx.run(async (uow) => {
      const sale = await ctx.services.flashSales.stop(uow, productId);
      await ctx.services.audit.record(uow, admin, 'STOP_FLASH_SALE', sale.productId, { productId, result: { ...sale } });
      return sale;
    });
  }
}

import { Ctx, Query, Resolver } from 'type-graphql';
import { requireUser, type Context } from '../context.js';
import { Me } from '../schema/types.js';

@Resolver()
export class UserResolver {
  @Query(() => Date, { description: "The server's clock, for client countdowns; needs no token" })
  serverTime(@Ctx() ctx: Context): Date {
    return ctx.services.clock.now();
  }

  @Query(() => Me, { description: 'The caller, as their token says' })
  async me(@Ctx() ctx: Context): Promise<Me> {
    const user = requireUser(ctx);
    const row = await ctx.services.users.get(ctx.em, user.id);
    return { id: user.id, role: user.role, createdAt: row?.createdAt ?? ctx.now() };
  }
}

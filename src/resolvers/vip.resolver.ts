import { Arg, Ctx, ID, Query, Resolver, Root, Subscription, type SubscribeResolverData } from 'type-graphql';
import { requireUser, type Context } from '../context.js';
import { filterIterator } from '../events/iterators.js';
import { channelOf, reviveMembership, type DomainEvents } from '../events/types.js';
import { VipStatus } from '../schema/vip-types.js';

type Data<A> = SubscribeResolverData<unknown, A, Context>;

/** VIP status: the owner reads and hears their own, admins anyone's. */
@Resolver(() => VipStatus)
export class VipResolver {
  @Query(() => VipStatus, { description: "The caller's VIP status; admins may name any user" })
  async vipStatus(@Arg('userId', () => ID, { nullable: true }) userId: string | null, @Ctx() ctx: Context): Promise<VipStatus> {
    const user = requireUser(ctx);
    return ctx.services.vip.status(ctx.em, user, userId, ctx.now());
  }

  @Subscription(() => VipStatus, {
    description: "The caller's membership whenever it is extended or lapses; admins hear every member's",
    subscribe: ({ context }: Data<Record<string, never>>) => {
      const user = requireUser(context);
      const events = context.services.bus.iterate<DomainEvents['VIP_STATUS_CHANGED']>(channelOf('VIP_STATUS_CHANGED'));
      return user.role === 'admin' ? events : filterIterator(events, (e) => e.membership.userId === user.id);
    },
  })
  vipStatusChanged(@Root() event: DomainEvents['VIP_STATUS_CHANGED'], @Ctx() ctx: Context): VipStatus {
    return ctx.services.vip.view(reviveMembership(event.membership), ctx.now());
  }
}

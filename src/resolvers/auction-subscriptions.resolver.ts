import { Arg, Ctx, ID, Resolver, Root, Subscription, type SubscribeResolverData } from 'type-graphql';
import { requireUser, type Context } from '../context.js';
import { channelOf, reviveAuction, type DomainEvents } from '../events/types.js';
import { AuctionCountdown, AuctionEnded, Auction } from '../schema/types.js';
import { countdown } from './auction-countdown.js';
import { filterIterator } from '../events/iterators.js';
import { auctionExistence } from './auction-existence.js';

type Data<A> = SubscribeResolverData<unknown, A, Context>;

/**
 * NOT_FOUND (or BAD_USER_INPUT) for an auction that does not exist, before anything listens: a channel
 * per id a client makes up would be a Redis subscription per made-up id. Subscribers of one auction
 * share its query and, for a few seconds, its answer (auction-existence.ts).
 */
function assertAuctionExists(context: Context, auctionId: string): Promise<void> {
  return auctionExistence(context.services).assert(auctionId);
}

@Resolver()
export class AuctionSubscriptionResolver {
  @Subscription(() => AuctionEnded, {
    description: 'Every auction that ends, or only the given one',
    subscribe: async ({ args, context }: Data<{ auctionId?: string | null }>) => {
      requireUser(context);
      if (args.auctionId) await assertAuctionExists(context, args.auctionId);
      const events = context.services.bus.iterate<DomainEvents['AUCTION_ENDED']>(channelOf('AUCTION_ENDED'));
      return args.auctionId ? filterIterator(events, (e) => e.auction.id === args.auctionId) : events;
    },
  })
  auctionEnded(
    @Root() event: DomainEvents['AUCTION_ENDED'],
    @Arg('auctionId', () => ID, { nullable: true }) _auctionId?: string,
  ): AuctionEnded {
    const { eventId, winnerId, finalPrice } = event;
    return { eventId, auction: reviveAuction(event.auction), winnerId, finalPrice, endedAt: new Date(event.endedAt) };
  }

  @Subscription(() => Auction, {
    description: 'The auction after every bid, extension, cancellation and end',
    subscribe: async ({ args, context }: Data<{ auctionId: string }>) => {
      requireUser(context);
      await assertAuctionExists(context, args.auctionId);
      return context.services.bus.iterate(channelOf('AUCTION_UPDATED', args.auctionId));
    },
  })
  auctionUpdated(@Root() event: DomainEvents['AUCTION_UPDATED'], @Arg('auctionId', () => ID) _auctionId: string): Auction {
    return reviveAuction(event.auction);
  }

  @Subscription(() => AuctionCountdown, {
    description: 'At once, then every second and whenever endTime moves; a last event at the end, then complete',
    subscribe: async ({ args, context }: Data<{ auctionId: string }>) => {
      requireUser(context);
      // The countdown reads the auction again once it listens (no update falls in between).
      await assertAuctionExists(context, args.auctionId);
      return countdown(context.services, args.auctionId);
    },
  })
  auctionCountdown(@Root() tick: AuctionCountdown, @Arg('auctionId', () => ID) _auctionId: string, @Ctx() _ctx: Context): AuctionCountdown {
    return tick;
  }
}

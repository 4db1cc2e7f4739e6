import { Arg, Ctx, ID, Resolver, Root, Subscription, type SubscribeResolverData } from 'type-graphql';
import { requireUser, type Context } from '../context.js';
import { channelOf, reviveAuction, type DomainEvents } from '../events/types.js';
import { AuctionCountdown, AuctionEnded, Auction } from '../schema/types.js';
import { countdown } from '../services/countdown.js';
import { filterIterator } from '../events/iterators.js';

type Data<A> = SubscribeResolverData<unknown, A, Context>;

@Resolver()
export class AuctionSubscriptionResolver {
  @Subscription(() => AuctionEnded, {
    description: 'Every auction that ends, or only the given one',
    subscribe: ({ args, context }: Data<{ auctionId?: string | null }>) => {
      requireUser(context);
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
    subscribe: ({ args, context }: Data<{ auctionId: string }>) => {
      requireUser(context);
      return context.services.bus.iterate(channelOf('AUCTION_UPDATED', args.auctionId));
    },
  })
  auctionUpdated(@Root() event: DomainEvents['AUCTION_UPDATED'], @Arg('auctionId', () => ID) _auctionId: string): Auction {
    return reviveAuction(event.auction);
  }

  @Subscription(() => AuctionCountdown, {
    description: 'At once, then every second and whenever endTime moves; a last event at the end, then complete',
    subscribe: ({ args, context }: Data<{ auctionId: string }>) => {
      requireUser(context);
      return countdown(context.services, args.auctionId);
    },
  })
  auctionCountdown(@Root() tick: AuctionCountdown, @Arg('auctionId', () => ID) _auctionId: string, @Ctx() _ctx: Context): AuctionCountdown {
    return tick;
  }
}

import { Arg, Args, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { requireUser, type Context } from '../context.js';
import { AuctionsArgs, ConnectionArgs, CreateAuctionInput, PlaceBidInput } from '../schema/inputs.js';
import { Auction, AuctionConnection, BidConnection } from '../schema/types.js';

/** Thin: who is asking, then the auction service, in one transaction for writes. */
@Resolver(() => Auction)
export class AuctionResolver {
  @Query(() => Auction, { description: 'One auction; any signed-in user may read it' })
  async auction(@Arg('id', () => ID) id: string, @Ctx() ctx: Context): Promise<Auction> {
    requireUser(ctx);
    return ctx.services.auctions.get(ctx.em, id);
  }

  @Query(() => AuctionConnection, { description: 'Newest first, with cursor pagination' })
  async auctions(@Args() args: AuctionsArgs, @Ctx() ctx: Context): Promise<AuctionConnection> {
    requireUser(ctx);
    return ctx.services.auctions.list(ctx.em, args.filter ?? {}, args.first, args.after);
  }

  @Mutation(() => Auction)
  async createAuction(@Arg('input') input: CreateAuctionInput, @Ctx() ctx: Context): Promise<Auction> {
    const user = requireUser(ctx);
    return ctx.services.tx.run((uow) => ctx.services.auctions.create(uow, user, input));
  }

  @Mutation(() => Auction)
  async placeBid(@Arg('input') input: PlaceBidInput, @Ctx() ctx: Context): Promise<Auction> {
    const user = requireUser(ctx);
    return ctx.services.tx.run((uow) => ctx.services.auctions.placeBid(uow, user, input.auctionId, input.amount));
  }

  @Mutation(() => Auction, { description: 'Seller or admin: the auction becomes CANCELLED and never ends' })
  async cancelAuction(@Arg('id', () => ID) id: string, @Ctx() ctx: Context): Promise<Auction> {
    const user = requireUser(ctx);
    return ctx.services.tx.run((uow) => ctx.services.auctions.cancel(uow, user, id));
  }

  @FieldResolver(() => BidConnection, { description: 'Highest first (then earliest), with cursor pagination' })
  async bids(@Root() auction: Auction, @Args() args: ConnectionArgs, @Ctx() ctx: Context): Promise<BidConnection> {
    return ctx.bids.load({ auctionId: auction.id, first: args.first, after: args.after ?? null });
  }
}

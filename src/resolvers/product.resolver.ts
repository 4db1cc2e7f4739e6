import { Arg, Ctx, ID, Int, Mutation, Query, Resolver } from 'type-graphql';
import { requireAdmin, requireUser, type Context } from '../context.js';
import { CreateProductInput } from '../schema/order-inputs.js';
import { Product, ProductKind, Wallet } from '../schema/order-types.js';
import type { ProductKind as ProductKindValue } from '../entities/Product.js';

/** The catalogue and wallets: anyone signed in reads, admins write. */
@Resolver()
export class ProductResolver {
  @Query(() => [Product], { description: 'The catalogue, oldest first' })
  async products(@Arg('kind', () => ProductKind, { nullable: true }) kind: ProductKindValue | null, @Ctx() ctx: Context): Promise<Product[]> {
    requireUser(ctx);
    return ctx.services.products.list(ctx.em, kind);
  }

  @Query(() => Product)
  async product(@Arg('id', () => ID) id: string, @Ctx() ctx: Context): Promise<Product> {
    requireUser(ctx);
    return ctx.services.products.get(ctx.em, id);
  }

  @Mutation(() => Product, { description: 'Admins only' })
  async createProduct(@Arg('input') input: CreateProductInput, @Ctx() ctx: Context): Promise<Product> {
    requireAdmin(ctx);
    return ctx.services.tx.run((uow) => ctx.services.products.create(uow, input));
  }

  @Query(() => Wallet, { description: "The caller's wallet" })
  async wallet(@Ctx() ctx: Context): Promise<Wallet> {
    const user = requireUser(ctx);
    return ctx.services.wallets.get(ctx.em, user.id);
  }

  @Mutation(() => Wallet, { description: "Admins only: adds `amount` cents to the user's balance" })
  async creditWallet(
    @Arg('userId', () => ID) userId: string,
    @Arg('amount', () => Int) amount: number,
    @Ctx() ctx: Context,
  ): Promise<Wallet> {
    const admin = requireAdmin(ctx);
    return ctx.services.tx.run(async (uow) => {
      const wallet = await ctx.services.wallets.credit(uow, userId, amount);
      await ctx.services.audit.record(uow, admin, 'CREDIT_WALLET', userId, { amount });
      return wallet;
    });
  }
}

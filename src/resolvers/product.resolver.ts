import { Arg, Ctx, ID, Int, Mutation, Query, Resolver } from 'type-graphql';
import { requireAdmin, requireUser, type Context } from '../context.js';
import type { Product as ProductEntity } from '../entities/Product.js';
import type { Wallet as WalletEntity } from '../entities/Wallet.js';
import { CreateProductInput } from '../schema/order-inputs.js';
import { UpdateProductInput } from '../schema/product-inputs.js';
import { Product, ProductKind, Wallet } from '../schema/order-types.js';
import type { ProductKind as ProductKindValue } from '../entities/Product.js';

/** What the audit log keeps of a product or a wallet an admin changed. */
const productResult = (p: ProductEntity) => ({
  id: p.id,
  name: p.name,
  price: p.price,
  kind: p.kind,
  stock: p.stock,
  active: p.active,
  saleStartsAt: p.saleStartsAt,
  saleEndsAt: p.saleEndsAt,
});
const walletResult = (w: WalletEntity) => ({ userId: w.userId, balance: w.balance, frozen: w.frozen });

/** The catalogue and wallets: anyone signed in reads, admins write (each write audited in its transaction). */
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
    const admin = requireAdmin(ctx);
    return ctx.services.tx.run(async (uow) => {
      const product = await ctx.services.products.create(uow, input);
      await ctx.services.audit.record(uow, admin, 'CREATE_PRODUCT', product.id, { input: { ...input }, result: productResult(product) });
      return product;
    });
  }

  @Mutation(() => Product, {
    description:
      'Admins only: renames, reprices, restocks, withdraws (active: false: new orders are refused with CONFLICT, orders made are kept) or brings back a product',
  })
  async updateProduct(@Arg('id', () => ID) id: string, @Arg('input') input: UpdateProductInput, @Ctx() ctx: Context): Promise<Product> {
    const admin = requireAdmin(ctx);
    return ctx.services.tx.run(async (uow) => {
      const product = await ctx.services.products.update(uow, id, input);
      await ctx.services.audit.record(uow, admin, 'UPDATE_PRODUCT', product.id, { id, input: { ...input }, result: productResult(product) });
      return product;
    });
  }

  @Query(() => Wallet, { description: "The caller's wallet" })
  async wallet(@Ctx() ctx: Context): Promise<Wallet> {
    const user = requireUser(ctx);
    return ctx.services.wallets.get(ctx.em, user.id);
  }

  @Mutation(() => Wallet, { description: "Admins only: adds `amount` cents to the balance of a user the server has seen (NOT_FOUND otherwise)" })
  async creditWallet(
    @Arg('userId', () => ID) userId: string,
    @Arg('amount', () => Int) amount: number,
    @Ctx() ctx: Context,
  ): Promise<Wallet> {
    const admin = requireAdmin(ctx);
    return ctx.services.tx.run(async (uow) => {
      const wallet = await ctx.services.wallets.credit(uow, userId, amount);
      await ctx.services.audit.record(uow, admin, 'CREDIT_WALLET', userId, { userId, amount, result: walletResult(wallet) });
      return wallet;
    });
  }

  @Mutation(() => Wallet, {
    description:
      "Admins only: corrects a user's balance by `amount` cents, up or down (ledger ADJUST). CONFLICT when the available balance would go below zero; 0 is BAD_USER_INPUT",
  })
  async adjustWallet(
    @Arg('userId', () => ID) userId: string,
    @Arg('amount', () => Int) amount: number,
    @Arg('reason') reason: string,
    @Ctx() ctx: Context,
  ): Promise<Wallet> {
    const admin = requireAdmin(ctx);
    return ctx.services.tx.run(async (uow) => {
      const wallet = await ctx.services.wallets.adjust(uow, userId, amount, reason);
      await ctx.services.audit.record(uow, admin, 'ADJUST_WALLET', userId, { userId, amount, reason, result: walletResult(wallet) });
      return wallet;
    });
  }
}

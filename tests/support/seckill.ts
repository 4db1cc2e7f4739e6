import type { App } from '../../src/app.js';
import { gql, token } from './harness.js';
import { ADMIN, ok } from './orders.js';

export const SALE = 'productId total left sold queued deadLetters';

export interface FlashSaleView {
  productId: string;
  total: number;
  left: number;
  sold: number;
  queued: number;
  deadLetters: number;
}

/** A FLASH_SALE product with a window around now (seconds from now), loaded into Redis by startFlashSale. */
export async function createSale(app: App, stock: number, opts: { from?: number; to?: number; start?: boolean } = {}) {
  const at = (s: number) => new Date(Date.now() + s * 1000).toISOString();
  const data = await ok(
    app,
    'mutation($input: CreateProductInput!) { createProduct(input: $input) { id stock saleStartsAt saleEndsAt } }',
    { input: { name: 'Flash', price: 990, kind: 'FLASH_SALE', stock, saleStartsAt: at(opts.from ?? -60), saleEndsAt: at(opts.to ?? 7200) } },
    ADMIN,
  );
  const product = data.createProduct as { id: string; stock: number };
  if (opts.start !== false) await startSale(app, product.id);
  return product;
}

export async function startSale(app: App, productId: string): Promise<FlashSaleView> {
  return (await ok(app, `mutation($p: ID!) { startFlashSale(productId: $p) { ${SALE} } }`, { p: productId }, ADMIN)).startFlashSale;
}

export async function flashSale(app: App, productId: string): Promise<FlashSaleView> {
  return (await ok(app, `query($p: ID!) { flashSale(productId: $p) { ${SALE} } }`, { p: productId }, ADMIN)).flashSale;
}

export async function seckill(app: App, userId: string, productId: string): Promise<string> {
  const res = await gql(app, 'mutation($p: ID!) { seckill(productId: $p) { requestId productId status } }', { p: productId }, token(userId));
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data!.seckill.status as string;
}

export async function seckillResult(app: App, userId: string, productId: string) {
  return (await ok(app, 'query($p: ID!) { seckillResult(productId: $p) { status orderId reason } }', { p: productId }, token(userId))).seckillResult as {
    status: string;
    orderId: string | null;
    reason: string | null;
  };
}

/** Runs `work` over `items` with at most `limit` in flight. */
export async function pool<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await work(items[i]);
      }
    }),
  );
  return results;
}

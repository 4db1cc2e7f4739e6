import type { App } from '../../src/app.js';
import { setUp, sleep, waitUntil } from '../support/harness.js';
import { createSale, seckill, seckillResult } from '../support/seckill.js';

/**
 * A consumer blocks in one XREADGROUP over every sale's stream for up to SECKILL_BLOCK_MS (20 s
 * here). A sale started meanwhile must not wait for that read to time out: its first buyers would.
 */
let app: App;

beforeAll(async () => {
  ({ app } = await setUp('seckill_watch', { SECKILL_BLOCK_MS: '20000' }));
});

const ordered = (user: string, productId: string, what: string) =>
  waitUntil(async () => (await seckillResult(app, user, productId)).status === 'ORDERED', 5_000, what);

test("a sale started while the consumer is blocked on another sale's stream is read at once, not after SECKILL_BLOCK_MS", async () => {
  const first = await createSale(app, 5);
  expect(await seckill(app, 'watch-1', first.id)).toBe('QUEUED');
  await ordered('watch-1', first.id, 'the first sale read');
  await sleep(300); // the consumer's next read is blocked on the first sale's stream

  const second = await createSale(app, 5);
  expect(await seckill(app, 'watch-2', second.id)).toBe('QUEUED');
  await ordered('watch-2', second.id, "the second sale's order within 5 s");
  // Both streams are read from then on.
  expect(await seckill(app, 'watch-3', first.id)).toBe('QUEUED');
  await ordered('watch-3', first.id, 'the first sale still read');
});

import { Redis } from 'ioredis';
import type { App } from '../../src/app.js';
import type { Config } from '../../src/config.js';
import { envOf, spawnServer } from '../support/child.js';
import { createTestDatabase, LogCapture, sleep, start, testConfig, waitUntil } from '../support/harness.js';
import { withDb } from '../support/orders.js';
import { OwnRedis } from '../support/redis-server.js';
import { createSale, flashSale, pool, seckill, startSale } from '../support/seckill.js';

/**
 * PostgreSQL is the record; Redis is rebuilt from it. This file runs its own redis-server (AOF,
 * fsync always, as production), so it can restart it mid-sale, and wipe it as a Redis that lost its
 * data. Whatever happens to Redis: no oversell, nobody twice, and sold + left = total once drained.
 */
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let app: App;
let redis: OwnRedis;
const log = new LogCapture();

let config: Config;
const SECKILL = { SECKILL_BLOCK_MS: '100', SECKILL_CLAIM_IDLE_MS: '400', SECKILL_DISCOVER_SECONDS: '0.3' };

beforeAll(async () => {
  db = await createTestDatabase('seckill_redis');
  redis = await OwnRedis.create();
  config = testConfig(db.url, { REDIS_URL: redis.url, ENABLE_CRON: 'false', ...SECKILL });
});

afterAll(async () => {
  await app?.stop();
  await redis?.destroy();
  await db?.drop();
});

async function record(productId: string) {
  return withDb(db.url, async (c) => {
    const live = (await c.query(`select user_id from orders where product_id = $1 and status in ('PENDING', 'PAID')`, [productId])).rows.map((r) => r.user_id as string);
    const [{ stock }] = (await c.query('select stock from products where id = $1', [productId])).rows;
    return { live, stock: Number(stock) };
  });
}

/** Requests that may meet a Redis coming back: an error answer is retried, as a client would. */
const request = (users: string[], productId: string) =>
  pool(users, 20, async (user) => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await seckill(app, user, productId);
      } catch (err) {
        if (attempt >= 50) throw err;
        await sleep(100);
      }
    }
  });

const users = (from: number, n: number) => Array.from({ length: n }, (_, i) => `u${from + i}`);

async function drained(productId: string, sold: number) {
  await waitUntil(async () => {
    try {
      const sale = await flashSale(app, productId);
      return sale.queued === 0 && sale.sold === sold;
    } catch {
      return false; // Redis still coming back
    }
  }, 20_000, `${sold} sold and the stream drained`);
}

test('a consumer process SIGKILLed mid-batch: its entries are taken over by another instance and ordered once', async () => {
  const child = await spawnServer(envOf(config, { REDIS_URL: redis.url, ENABLE_CRON: 'false', ...SECKILL }));
  const server = { url: child.url } as App;
  const sale = await createSale(server, 30);
  // The batch's transaction stalls in PostgreSQL (a trigger sleeping before the log rows go in), so
  // the kill comes after the entries were delivered and before anything committed or was acknowledged.
  await withDb(db.url, (c) =>
    c.query(`create function stall() returns trigger language plpgsql as $$ begin perform pg_sleep(30); return null; end $$;
             create trigger stall before insert on seckill_logs for each statement execute function stall()`),
  );
  const r = new Redis(redis.url);
  try {
    expect((await pool(users(0, 12), 12, (u) => seckill(server, u, sale.id))).every((s) => s === 'QUEUED')).toBe(true);
    const stream = `${config.seckill.keyPrefix}stream:seckill:${sale.id}`;
    // Its first read may hold a few entries (a blocked read returns with what has arrived); the rest wait unread.
    await waitUntil(async () => ((await r.xpending(stream, 'g1')) as [number])[0] > 0, 10_000, 'the child holding entries');
    await waitUntil(
      () => withDb(db.url, async (c) => (await c.query(`select 1 from pg_stat_activity where wait_event = 'PgSleep' and datname = current_database()`)).rowCount! > 0),
      10_000,
      'the batch stalled in its transaction',
    );
    await child.kill();
    // PostgreSQL notices the dead client only when the statement ends: end it now, as a timeout would.
    await withDb(db.url, async (c) => {
      await c.query(`select pg_terminate_backend(pid) from pg_stat_activity where wait_event = 'PgSleep' and datname = current_database()`);
      await c.query('drop trigger stall on seckill_logs; drop function stall()');
    });
    expect((await record(sale.id)).live).toHaveLength(0);

    // Another instance: its consumer takes the dead one's pending entries over after SECKILL_CLAIM_IDLE_MS.
    app = await start(config, log);
    await drained(sale.id, 12);
    const { live, stock } = await record(sale.id);
    expect(live.sort()).toEqual(users(0, 12).sort());
    expect(stock).toBe(30 - 12);
    expect(((await r.xpending(stream, 'g1')) as [number])[0]).toBe(0);
    expect(await withDb(db.url, async (c) => Number((await c.query('select count(*) from seckill_logs where product_id = $1', [sale.id])).rows[0].count))).toBe(12);
    expect(await flashSale(app, sale.id)).toMatchObject({ total: 30, sold: 12, left: 18, queued: 0 });
    expect(log.messages()).toContain('seckill: took over entries left pending');
  } finally {
    r.disconnect();
    await child.kill();
  }
});

test('Redis restarted mid-sale (AOF), then Redis that lost its data: rebuilt from PostgreSQL, sold + left = stock', async () => {
  app ??= await start(config, log);
  const sale = await createSale(app, 50);
  expect((await request(users(0, 10), sale.id)).every((s) => s === 'QUEUED')).toBe(true);

  // Killed while requests are in flight and entries are being consumed, started again on its
  // append-only file. A request whose answer was lost is retried: DUPLICATE if its unit was taken.
  const inFlight = request(users(10, 20), sale.id);
  await sleep(30); // some requests answered, some still on their way
  await redis.kill();
  await redis.start();
  expect((await inFlight).every((s) => s === 'QUEUED' || s === 'DUPLICATE')).toBe(true);
  // The buyers survived the restart: nobody buys twice.
  expect((await request(users(0, 5), sale.id)).every((s) => s === 'DUPLICATE')).toBe(true);
  await drained(sale.id, 30);
  expect(await flashSale(app, sale.id)).toMatchObject({ total: 50, sold: 30, left: 20, queued: 0 });

  // Redis comes back empty: each instance's periodic check loads the open sale from PostgreSQL.
  await redis.wipe();
  await redis.start();
  await waitUntil(() => log.messages().includes('flash sale missing from Redis: rebuilt from PostgreSQL'), 10_000, 'the sale rebuilt');
  expect(await flashSale(app, sale.id)).toMatchObject({ total: 50, sold: 30, left: 20 });
  // startFlashSale rebuilds too, to the same numbers.
  expect(await startSale(app, sale.id)).toMatchObject({ total: 50, sold: 30, left: 20 });
  // Earlier buyers are still buyers (rebuilt from their orders); the 20 units left go to 20 new users.
  expect((await request(users(0, 30), sale.id)).every((s) => s === 'DUPLICATE')).toBe(true);
  const answers = await request(users(100, 40), sale.id);
  expect(answers.filter((s) => s === 'QUEUED')).toHaveLength(20);
  expect(answers.filter((s) => s === 'SOLD_OUT')).toHaveLength(20);
  await drained(sale.id, 50);

  const { live, stock } = await record(sale.id);
  expect(live).toHaveLength(50);
  expect(new Set(live).size).toBe(50);
  expect(stock).toBe(0);
  expect(await flashSale(app, sale.id)).toEqual({ productId: sale.id, total: 50, left: 0, sold: 50, queued: 0, deadLetters: 0 });

  // A server starting on a Redis that lost everything loads the open sale before it serves.
  await app.stop();
  await redis.wipe();
  await redis.start();
  const fresh = new LogCapture();
  app = await start(config, fresh);
  expect(fresh.messages()).toContain('flash sale missing from Redis: rebuilt from PostgreSQL');
  expect(await seckill(app, 'u0', sale.id)).toBe('DUPLICATE');
  expect(await seckill(app, 'latecomer', sale.id)).toBe('SOLD_OUT');
  expect(await flashSale(app, sale.id)).toEqual({ productId: sale.id, total: 50, left: 0, sold: 50, queued: 0, deadLetters: 0 });
});

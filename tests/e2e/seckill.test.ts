import { Redis } from 'ioredis';
import type { App } from '../../src/app.js';
import { gql, LogCapture, MovableClock, paymentSandbox, setUp, sleep, subscribed, type TestDatabase, token, waitUntil, wsClient } from '../support/harness.js';
import { ADMIN, CANCEL, ok, withDb } from '../support/orders.js';
import { createSale, flashSale, pool, seckill, seckillResult, startSale } from '../support/seckill.js';

/**
 * Flash sales end to end: a real server, the shared Redis under this file's key prefix, PostgreSQL as
 * the record. Requests go through GraphQL; "outside" writers (a BFF, a consumer that dies) are played
 * by this file's own Redis connection. Consumer timings are short so takeovers and dead letters take
 * about a second; expiry runs on a clock the test moves (the sweep settles what is due every second).
 */
let db: TestDatabase;
let app: App;
let redis: Redis;
const clock = new MovableClock();
const log = new LogCapture();
const GROUP = 'g1';

const stream = (productId: string) => `${app.services.config.seckill.keyPrefix}stream:seckill:${productId}`;

beforeAll(async () => {
  const env = {
    DEADLINE_SWEEP_SECONDS: '1',
    SECKILL_BLOCK_MS: '100',
    SECKILL_CLAIM_IDLE_MS: '400',
    SECKILL_MAX_DELIVERIES: '2',
    SECKILL_DISCOVER_SECONDS: '0.5',
    // Long enough to tell apart from the provider's own time (the last test but one).
    SECKILL_PAYMENT_QUIET_MS: '1000',
    SECKILL_PAYMENT_MAX_DELAY_MS: '1500',
  };
  ({ db, app } = await setUp('seckill', env, { log, clock }));
  redis = new Redis(app.services.config.redisUrl);
});

afterAll(async () => {
  if (redis) {
    const keys = await redis.keys(`${app.services.config.seckill.keyPrefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  }
});

/** PostgreSQL's view of a sale: its orders (live ones), its stock left, its log. */
async function record(productId: string) {
  return withDb(db.url, async (c) => {
    const orders = (await c.query(`select id, user_id, status, channel, quantity, amount, payment_method from orders where product_id = $1 order by id`, [productId])).rows;
    const [{ stock }] = (await c.query('select stock from products where id = $1', [productId])).rows;
    const logs = (await c.query('select stream_id, user_id, status, reason, order_id from seckill_logs where product_id = $1 order by id', [productId])).rows;
    const live = orders.filter((o) => o.status === 'PENDING' || o.status === 'PAID');
    return { orders, live, stock: Number(stock), logs };
  });
}

const drained = (productId: string) => waitUntil(async () => (await flashSale(app, productId)).queued === 0, 15_000, 'the stream drained');

test('a FLASH_SALE needs a stock and a window that starts before it ends', async () => {
  const create = (input: Record<string, unknown>) =>
    gql(app, 'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }', { input: { name: 'F', price: 100, kind: 'FLASH_SALE', stock: 5, ...input } }, ADMIN);
  const now = Date.now();
  expect((await create({ saleEndsAt: new Date(now + 60_000).toISOString() })).errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
  const backwards = await create({ saleStartsAt: new Date(now + 60_000).toISOString(), saleEndsAt: new Date(now).toISOString() });
  expect(backwards.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
  const goods = await gql(app, 'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }', {
    input: { name: 'G', price: 100, kind: 'GOODS', saleStartsAt: new Date(now).toISOString() },
  }, ADMIN);
  expect(goods.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
  // Only admins load or read a sale.
  const sale = await createSale(app, 1);
  const denied = await gql(app, 'mutation($p: ID!) { startFlashSale(productId: $p) { total } }', { p: sale.id }, token('someone'));
  expect(denied.errors?.[0].extensions?.code).toBe('FORBIDDEN');
});

test('2,000 concurrent requests from 500 users for 100 units: exactly 100 orders, nobody twice, stock never below zero', async () => {
  const sale = await createSale(app, 100);
  const winnerWatch = wsClient(app, token('buyer-7'));
  const ready = await subscribed(app, winnerWatch, 'subscription($p: ID!) { seckillResultReady(productId: $p) { status orderId reason } }', { p: sale.id }, `SECKILL_RESULT:${sale.id}:buyer-7`);
  const requests = Array.from({ length: 2000 }, (_, i) => `buyer-${i % 500}`);
  const answers = await pool(requests, 100, (user) => seckill(app, user, sale.id));
  const count = (s: string) => answers.filter((a) => a === s).length;
  expect(count('QUEUED')).toBe(100);
  expect(count('QUEUED') + count('SOLD_OUT') + count('DUPLICATE')).toBe(2000);

  await drained(sale.id);
  const { live, stock, orders } = await record(sale.id);
  expect(orders).toHaveLength(100);
  expect(new Set(live.map((o) => o.user_id)).size).toBe(100);
  expect(stock).toBe(0);
  expect(orders.every((o) => o.channel === 'SECKILL' && o.status === 'PENDING' && o.quantity === 1 && o.amount === 990 && o.payment_method === 'WECHAT')).toBe(true);
  expect(await flashSale(app, sale.id)).toEqual({ productId: sale.id, total: 100, left: 0, sold: 100, queued: 0, deadLetters: 0 });
  // Each order can be paid: its payment is started at the provider (the sandbox) after the batch.
  await waitUntil(
    async () => Number((await withDb(db.url, (c) => c.query(`select count(*) as n from payment_intents`))).rows[0].n) === 100,
    15_000,
    'a payment intent for every flash-sale order',
  );

  // buyer-7 won or lost; either way it hears its own outcome and reads the same one.
  const mine = await seckillResult(app, 'buyer-7', sale.id);
  if (live.some((o) => o.user_id === 'buyer-7')) {
    await ready.waitFor((s) => s.events.length > 0, 10_000, 'buyer-7 hears its order');
    expect(ready.events[0].seckillResultReady).toEqual({ status: 'ORDERED', orderId: mine.orderId, reason: null });
    expect(mine.status).toBe('ORDERED');
  } else {
    expect(mine.status).toBe('NONE');
  }
  ready.dispose();
  await winnerWatch.dispose();
  const loser = live.some((o) => o.user_id === 'buyer-0') ? 'nobody-else' : 'buyer-0';
  expect((await seckillResult(app, loser, sale.id)).status).toBe('NONE');

  // The same entries delivered again (the group re-read from the start, as after a crash between
  // commit and XACK): each is recognised by its stream id; no order is made twice.
  await redis.xgroup('SETID', stream(sale.id), GROUP, '0');
  await drained(sale.id);
  const again = await record(sale.id);
  expect(again.orders).toHaveLength(100);
  expect(again.logs).toHaveLength(100);
  expect(await flashSale(app, sale.id)).toMatchObject({ total: 100, left: 0, sold: 100, queued: 0 });

  // The log line, once per stream and consumer.
  const started = log.messages().filter((m) => m.startsWith(`seckill stream server started: productID=${sale.id} `));
  expect(started).toEqual([`seckill stream server started: productID=${sale.id} stream=${stream(sale.id)} group=g1 consumer=${started[0].split('consumer=')[1]}`]);
});

test("the seed's XADD shape from outside: the consumer applies the same rules against PostgreSQL", async () => {
  const sale = await createSale(app, 2);
  await redis.xadd(stream(sale.id), '*', 'uid', '123', 'ts', '1234567890');
  await redis.xadd(stream(sale.id), '*', 'uid', '123', 'ts', '1234567890'); // the same user again
  await redis.xadd(stream(sale.id), '*', 'uid', '456', 'ts', '1234567890');
  await redis.xadd(stream(sale.id), '*', 'uid', '789', 'ts', '1234567890'); // one more than the stock
  await drained(sale.id);
  const { live, stock, logs } = await record(sale.id);
  expect(live.map((o) => o.user_id).sort()).toEqual(['123', '456']);
  expect(stock).toBe(0);
  expect(logs.map((l) => [l.user_id, l.status, l.reason])).toEqual([
    ['123', 'ORDERED', null],
    ['123', 'FAILED', 'DUPLICATE'],
    ['456', 'ORDERED', null],
    ['789', 'FAILED', 'SOLD_OUT'],
  ]);
  expect(await seckillResult(app, '123', sale.id)).toMatchObject({ status: 'ORDERED', orderId: live[0].id });
  expect(await seckillResult(app, '789', sale.id)).toEqual({ status: 'FAILED', orderId: null, reason: 'SOLD_OUT' });
});

test('a request before the window and after it is CLOSED (in Redis, and again in PostgreSQL for entries from outside)', async () => {
  const early = await createSale(app, 5, { from: 3600, to: 7200 });
  const late = await createSale(app, 5, { from: -7200, to: -3600 });
  expect(await seckill(app, 'punctual', early.id)).toBe('CLOSED');
  expect(await seckill(app, 'punctual', late.id)).toBe('CLOSED');
  // An unknown product is not a closed sale.
  const unknown = await gql(app, 'mutation { seckill(productId: "987654") { status } }', {}, token('punctual'));
  expect(unknown.errors?.[0].extensions?.code).toBe('NOT_FOUND');
  await redis.xadd(stream(late.id), '*', 'uid', 'bff-late', 'ts', '1234567890');
  await waitUntil(async () => (await record(late.id)).logs.length === 1, 10_000, 'the late entry recorded');
  expect((await record(late.id)).logs[0]).toMatchObject({ status: 'FAILED', reason: 'CLOSED' });
  expect((await record(early.id)).orders).toHaveLength(0);
  expect((await record(late.id)).orders).toHaveLength(0);
});

test('a consumer that dies mid-batch: its entries are taken over with XAUTOCLAIM and ordered once', async () => {
  const sale = await createSale(app, 10);
  // A consumer reads three entries and dies before writing or acknowledging them. XADD and its read in
  // one MULTI, so this server's consumer cannot read them first.
  const multi = redis.multi();
  for (const uid of ['dead-1', 'dead-2', 'dead-3']) multi.xadd(stream(sale.id), '*', 'uid', uid, 'ts', '1');
  multi.xreadgroup('GROUP', GROUP, 'consumer-that-died', 'COUNT', 10, 'STREAMS', stream(sale.id), '>');
  await multi.exec();
  expect(((await redis.xpending(stream(sale.id), GROUP)))[0]).toBe(3);

  await waitUntil(async () => (await record(sale.id)).live.length === 3, 10_000, 'the abandoned entries ordered');
  await drained(sale.id);
  const { live, logs } = await record(sale.id);
  expect(live.map((o) => o.user_id).sort()).toEqual(['dead-1', 'dead-2', 'dead-3']);
  expect(logs).toHaveLength(3);
  expect(((await redis.xpending(stream(sale.id), GROUP)))[0]).toBe(0);
  expect(await flashSale(app, sale.id)).toMatchObject({ total: 10, left: 10 - 3, sold: 3 });
});

test('a message that keeps failing goes to the dead-letter stream after SECKILL_MAX_DELIVERIES, counted in flashSale', async () => {
  const sale = await createSale(app, 10);
  // A real failure in PostgreSQL for one user's order; the others in the batch are not held up.
  await withDb(db.url, (c) =>
    c.query(`create function poison() returns trigger language plpgsql as $$ begin raise exception 'poisoned order'; end $$;
             create trigger poison before insert on orders for each row when (new.user_id = 'poison') execute function poison()`),
  );
  try {
    expect(await seckill(app, 'poison', sale.id)).toBe('QUEUED');
    expect(await seckill(app, 'healthy', sale.id)).toBe('QUEUED');
    await waitUntil(async () => (await flashSale(app, sale.id)).deadLetters === 1, 15_000, 'a dead letter');
    const dead = await redis.xrange(`${stream(sale.id)}:dead`, '-', '+');
    expect(dead).toHaveLength(1);
    const fields = dead[0][1];
    expect(fields[fields.indexOf('uid') + 1]).toBe('poison');
    expect(Number(fields[fields.indexOf('deliveries') + 1])).toBe(2);
    const { live } = await record(sale.id);
    expect(live.map((o) => o.user_id)).toEqual(['healthy']);
    // The dead entry's unit is back in Redis: sold + left = total.
    expect(await flashSale(app, sale.id)).toMatchObject({ total: 10, left: 9, sold: 1, queued: 0, deadLetters: 1 });
    expect((await seckillResult(app, 'poison', sale.id)).status).toBe('NONE');
    expect(log.messages()).toContain('seckill: entry failed too often; moved to the dead-letter stream');
  } finally {
    await withDb(db.url, (c) => c.query('drop trigger poison on orders; drop function poison()'));
  }
});

test('an expired or cancelled flash-sale order gives its unit back, and it is sold again', async () => {
  const sale = await createSale(app, 1);
  expect(await seckill(app, 'first', sale.id)).toBe('QUEUED');
  expect(await seckill(app, 'second', sale.id)).toBe('SOLD_OUT');
  await waitUntil(async () => (await seckillResult(app, 'first', sale.id)).status === 'ORDERED', 10_000, 'first ordered');
  expect(await flashSale(app, sale.id)).toMatchObject({ total: 1, left: 0, sold: 1 });

  clock.advance(31); // past ORDER_EXPIRE_MINUTES: the sweep expires it
  await waitUntil(async () => (await record(sale.id)).live.length === 0, 10_000, 'the order expired');
  await waitUntil(async () => (await flashSale(app, sale.id)).left === 1, 5_000, 'the unit back in Redis');
  expect(await flashSale(app, sale.id)).toMatchObject({ total: 1, left: 1, sold: 0 });
  expect((await record(sale.id)).stock).toBe(1);

  expect(await seckill(app, 'second', sale.id)).toBe('QUEUED');
  await waitUntil(async () => (await seckillResult(app, 'second', sale.id)).status === 'ORDERED', 10_000, 'second ordered');
  const { orderId } = await seckillResult(app, 'second', sale.id);
  expect(await flashSale(app, sale.id)).toMatchObject({ total: 1, left: 0, sold: 1 });

  await ok(app, CANCEL, { id: orderId }, token('second'));
  await waitUntil(async () => (await flashSale(app, sale.id)).left === 1, 5_000, 'the cancelled unit back in Redis');
  expect(await flashSale(app, sale.id)).toMatchObject({ total: 1, left: 1, sold: 0 });
  // The buyer whose order expired may buy again; the unit goes once.
  expect(await seckill(app, 'first', sale.id)).toBe('QUEUED');
  expect(await seckill(app, 'third', sale.id)).toBe('SOLD_OUT');
  await waitUntil(async () => (await seckillResult(app, 'first', sale.id)).status === 'ORDERED', 10_000, 'first ordered again');
  const { live, stock } = await record(sale.id);
  expect(live.map((o) => o.user_id)).toEqual(['first']);
  expect(stock).toBe(0);
  // startFlashSale again rebuilds from PostgreSQL and agrees.
  expect(await startSale(app, sale.id)).toMatchObject({ total: 1, left: 0, sold: 1, queued: 0 });
});

test("a flash-sale order's payment starts once the sale goes quiet, or SECKILL_PAYMENT_MAX_DELAY_MS after its order while it does not", async () => {
  const sale = await createSale(app, 20);
  const intents = (orderId: string) =>
    withDb(db.url, async (c) => Number((await c.query('select count(*) as n from payment_intents where order_id = $1', [orderId])).rows[0].n));
  const orderOf = async (user: string) => {
    await waitUntil(async () => (await record(sale.id)).live.some((o) => o.user_id === user), 10_000, `${user}'s order`);
    return (await record(sale.id)).live.find((o) => o.user_id === user)!.id as string;
  };
  // A lone order: its payment waits for a quiet second (SECKILL_PAYMENT_QUIET_MS here), then starts.
  expect(await seckill(app, 'quiet-1', sale.id)).toBe('QUEUED');
  const lone = await orderOf('quiet-1');
  await sleep(400); // inside its quiet second: it must not have started yet
  expect(await intents(lone)).toBe(0);
  await waitUntil(async () => (await intents(lone)) === 1, 10_000, 'the lone order started at the provider');

  // An order every 200 ms for 3.6 s: the sale is never quiet for a second, yet the first order's
  // payment starts within 1.5 s (SECKILL_PAYMENT_MAX_DELAY_MS) of it, while orders still come.
  let busy = true;
  const buying = (async () => {
    for (let i = 1; i <= 18; i++) {
      expect(await seckill(app, `busy-${i}`, sale.id)).toBe('QUEUED');
      await sleep(200);
    }
    busy = false;
  })();
  try {
    const first = await orderOf('busy-1');
    await waitUntil(async () => (await intents(first)) === 1, 2_200, "the first busy order's payment within 1.5 s (and room)");
    expect(busy).toBe(true); // started while orders still came
  } finally {
    await buying;
  }
});

// Last: it stops the server.
test('a server stopped while its flash-sale orders wait on the provider stores their payments first', async () => {
  const sandbox = await paymentSandbox();
  const sale = await createSale(app, 3);
  sandbox.faults.delayMs = 800; // every provider answer takes 0.8 s
  try {
    for (const user of ['stop-1', 'stop-2', 'stop-3']) expect(await seckill(app, user, sale.id)).toBe('QUEUED');
    await waitUntil(async () => (await record(sale.id)).live.length === 3, 10_000, 'three orders');
    const intents = () =>
      withDb(db.url, async (c) => Number((await c.query('select count(*) as n from payment_intents i join orders o on o.id = i.order_id where o.product_id = $1', [sale.id])).rows[0].n));
    expect(await intents()).toBe(0); // their payments are still at the provider
    await app.stop();
    expect(await intents()).toBe(3);
  } finally {
    sandbox.faults.delayMs = 0;
  }
});

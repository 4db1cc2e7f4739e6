import type { App } from '../../src/app.js';
import { createAuction, createTestDatabase, inSeconds, LogCapture, sleep, start, subscribed, type Subscription, testConfig, type TestDatabase, token, waitUntil, wsClient } from '../support/harness.js';
import { Redis } from 'ioredis';
import { OwnRedis } from '../support/redis-server.js';

/**
 * Redis is the fan-out between instances. Killed while deadlines come due and started again 10 s later
 * (once with its files, once empty), it must cost no event: the deadlines settle on time in PostgreSQL,
 * and every watcher on every instance hears every end exactly once after Redis is back.
 */
const ENDED_SUB = `subscription { auctionEnded { eventId auction { id status } } }`;
const seller = token('seller-outage');
const OUTAGE_MS = 10_000;

let db: TestDatabase;
let redis: OwnRedis;
let a: App;
let b: App;
const logA = new LogCapture();
const logB = new LogCapture();

beforeAll(async () => {
  db = await createTestDatabase('redis_outage');
  redis = await OwnRedis.create();
  const config = testConfig(db.url, { REDIS_URL: redis.url });
  a = await start(config, logA, { instanceName: 'outage-a' });
  b = await start(config, logB, { instanceName: 'outage-b' });
}, 60_000);

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await redis?.destroy();
  await db?.drop();
});

async function health(app: App): Promise<number> {
  const res = await fetch(app.url.replace('/graphql', '/health'), { signal: AbortSignal.timeout(3_000) });
  return res.status;
}

async function lateness(app: App, ids: string[]): Promise<number[]> {
  const rows = await app.services.orm.em.fork().execute<Array<{ status: string; ms: number }>>(
    `select status, extract(epoch from (ended_at - end_time)) * 1000 as ms from auctions where id::text in (${ids.map(() => '?').join(',')})`,
    ids,
  );
  expect(rows.every((r) => r.status === 'ENDED')).toBe(true);
  return rows.map((r) => Number(r.ms));
}

const lostWarnings = (log: LogCapture) => log.messages().filter((m) => m === 'redis connection lost; retrying').length;

async function outageRound(how: 'restart' | 'empty', count: number) {
  const watchers: Array<{ client: ReturnType<typeof wsClient>; sub: Subscription }> = [];
  for (const app of [a, b]) {
    const client = wsClient(app, token(`watcher-${how}`));
    watchers.push({ client, sub: await subscribed(app, client, ENDED_SUB, {}, 'AUCTION_ENDED') });
  }
  const warnedBefore = [lostWarnings(logA), lostWarnings(logB)];

  // All ending at the same instant, created on both instances, Redis gone 1.5 s before the end (30
  // creations took over 1 s on a loaded 2-core machine: 4 s leaves room for them).
  const end = inSeconds(4);
  const endMs = new Date(end).getTime();
  const ids = (await Promise.all(Array.from({ length: count }, (_, i) => createAuction(i % 2 ? a : b, seller, end)))).map((x) => x.id);
  await sleep(endMs - Date.now() - 1_500);
  if (how === 'empty') await redis.wipe();
  else await redis.kill();
  const downAt = Date.now();
  // The round is about ends that come due while Redis is away: it must be gone (its process exited)
  // before they do, and both instances must have lost it, or the round proves nothing.
  expect(endMs - downAt).toBeGreaterThan(0);
  await waitUntil(async () => (await health(a)) === 503 && (await health(b)) === 503, 3_000, 'both instances to see Redis gone');
  expect(Date.now()).toBeLessThan(endMs);

  // While Redis is down: the deadlines settle on time in PostgreSQL, and health says so.
  await waitUntil(async () => (await lateness(a, ids).catch(() => [])).length === count, 8_000, 'the auctions to end without Redis');
  expect(Math.max(...(await lateness(a, ids)))).toBeLessThan(1_000);
  expect(await health(a)).toBe(503);
  expect(await health(b)).toBe(503);

  await sleep(OUTAGE_MS - (Date.now() - downAt)); // the outage's length is the point
  await redis.start();

  for (const { sub } of watchers) {
    await sub.waitFor((s) => s.events.length >= count, 20_000, `${count} ends after Redis came back`);
  }
  await sleep(1_500); // room for a copy that should not come
  for (const { sub, client } of watchers) {
    const heard = sub.events.map((e) => e.auctionEnded.auction.id).sort();
    expect(heard).toEqual([...ids].sort());
    expect(new Set(sub.events.map((e) => e.auctionEnded.eventId)).size).toBe(count);
    sub.dispose();
    await client.dispose();
  }
  await waitUntil(async () => (await health(a)) === 200 && (await health(b)) === 200, 10_000, 'health 200 after Redis is back');
  // One warning per connection per outage in each instance's log, not one per reconnect attempt.
  expect(lostWarnings(logA) - warnedBefore[0]).toBe(2);
  expect(lostWarnings(logB) - warnedBefore[1]).toBe(2);
}

test('Redis killed for 10 s as auctions end, then restarted with its files: every end heard once by watchers on both instances', async () => {
  await outageRound('restart', 30);
}, 60_000);

test('Redis killed for 10 s as auctions end, then back empty: every end heard once by watchers on both instances', async () => {
  await outageRound('empty', 30);
}, 60_000);

test('subscriber connections cut again and again while the publisher keeps working: no end is lost to the gap before re-subscribing', async () => {
  const watchers: Array<{ client: ReturnType<typeof wsClient>; sub: Subscription }> = [];
  for (const app of [a, b]) {
    const client = wsClient(app, token('watcher-cut'));
    watchers.push({ client, sub: await subscribed(app, client, ENDED_SUB, {}, 'AUCTION_ENDED') });
  }
  const count = 40;
  // 4 s ahead: 40 creations on a loaded 2-core machine took over 2 s.
  const ends = Array.from({ length: count }, (_, i) => inSeconds(4 + (i % 20) / 10));
  const ids = (await Promise.all(ends.map((end, i) => createAuction(i % 2 ? a : b, seller, end)))).map((x) => x.id);
  // Redis stays up; only the subscriber connections are dropped, every 30 ms, while the ends come due.
  // Each event published in a gap reaches Redis and no subscriber: it must come from the catch-up.
  const admin = new Redis(redis.url);
  const until = new Date(ends.sort().at(-1)!).getTime() + 500;
  let cuts = 0;
  while (Date.now() < until) {
    cuts += Number(await admin.client('KILL', 'TYPE', 'pubsub'));
    await sleep(30);
  }
  await admin.quit();
  expect(cuts).toBeGreaterThan(10);
  for (const { sub, client } of watchers) {
    await sub.waitFor((s) => s.events.length >= count, 15_000, `${count} ends`);
    await sleep(1_000); // room for a copy that should not come
    expect(sub.events.map((e) => e.auctionEnded.auction.id).sort()).toEqual([...ids].sort());
    expect(new Set(sub.events.map((e) => e.auctionEnded.eventId)).size).toBe(count);
    sub.dispose();
    await client.dispose();
  }
}, 60_000);

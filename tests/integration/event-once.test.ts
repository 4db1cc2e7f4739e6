import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { App } from '../../src/app.js';
import { EventBus, type PublishedEvent } from '../../src/events/bus.js';
import { EventBatches, EventSink } from '../../src/events/outbox.js';
import { committedSince, OutboxRelay } from '../../src/events/relay.js';
import { Transactions } from '../../src/db/transactions.js';
import { systemClock } from '../../src/clock.js';
import { auctionEnds } from '../../src/services/auctions.js';
import { ORDER_EXPIRED_EVENTS_SQL } from '../../bench/outbox-events.js';
import { orderCloses } from '../../src/services/orders/settle-close.js';
import { ADMIN, withDb } from '../support/orders.js';
import { createTestDatabase, LogCapture, start, subscribed, testConfig, waitUntil, wsClient, type Subscription } from '../support/harness.js';

/**
 * Heard once (issue 27): an order's expiry reaches a watcher on a third instance once, whatever order
 * the paths that carry it run in. Each scenario is driven step by step, with real PostgreSQL and Redis:
 * an instance killed between commit and publication (or between publication and marking), the sweep
 * of another instance, the committing instance's relay coming late, two settles of the same orders,
 * and a subscriber that loses its Redis connection and reads the outbox back. After each step a
 * barrier event goes through Redis behind what was published: once the watcher hears it, it has heard
 * everything before it.
 */
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let a: App; // commits, then "dies" (its relay is not run, or run late)
let b: App; // the survivor: its sweep republishes
let w: App; // the watcher's instance: serves the subscription, settles only where a step says so
let client: ReturnType<typeof wsClient>;
let heard: Subscription<{ orderExpired: { eventId: string; order: { id: string } } }>;

beforeAll(async () => {
  db = await createTestDatabase('event_once');
  // One configuration, so one Redis prefix; nothing settles or sweeps unless a step says so.
  const config = testConfig(db.url, {
    ENABLE_CRON: 'false',
    DEADLINE_TIMERS: 'false',
    OUTBOX_REPUBLISH_AFTER_SECONDS: '0',
  });
  a = await start(config);
  b = await start(config);
  w = await start(config);
  await withDb(db.url, async (c) => {
    await c.query(`insert into users (id, role) values ('once-buyer', 'user')`);
    await c.query(`insert into products (id, name, price, kind) values (1, 'Once tea', 100, 'GOODS')`);
  });
  client = wsClient(w, ADMIN);
  heard = await subscribed(w, client, 'subscription { orderExpired { eventId order { id } } }', {}, 'ORDER_EXPIRED');
});

afterAll(async () => {
  heard?.dispose();
  await client?.dispose();
  for (const app of [a, b, w]) await app?.stop();
  await db?.drop();
});

/** `n` unpaid orders already due, as createOrder leaves them (WECHAT: nothing frozen). */
async function dueOrders(n: number): Promise<string[]> {
  return withDb(db.url, async (c) => {
    const { rows } = await c.query<{ id: string }>(
      `insert into orders (order_no, user_id, product_id, quantity, amount, payment_method, channel, status, expires_at)
       select 'ONCE-' || gen_random_uuid(), 'once-buyer', 1, 1, 100, 'WECHAT', 'H5', 'PENDING', now() - interval '1 second'
         from generate_series(1, $1::int) returning id::text`,
      [n],
    );
    return rows.map((r) => r.id);
  });
}

/** What an instance killed right after COMMIT leaves: the batch committed, its events built, nothing published. */
async function expireWithoutPublishing(app: App, limit: number): Promise<PublishedEvent[]> {
  let events: PublishedEvent[] = [];
  await app.services.orm.em.fork().transactional(async (em) => {
    const sink = new EventSink(em);
    await app.services.orderSettlement.expireDue({ em, events: sink, now: new Date(), afterCommit: () => undefined }, limit, []);
    events = sink.events;
  });
  return events;
}

/** Published through `via` after everything it published before: heard, it means those were heard (or dropped) too. */
async function barrier(via: App): Promise<void> {
  const eventId = randomUUID();
  const at = new Date().toISOString();
  const order = { id: `barrier-${eventId}`, orderNo: 'B', userId: 'b', productId: '1', quantity: 1, amount: 1, walletAmount: 0, paymentMethod: 'WECHAT', channel: 'H5', status: 'EXPIRED', expiresAt: null, cancelReason: null, paidAt: null, paidVia: null, createdAt: at };
  await via.services.bus.publish([{ channel: 'ORDER_EXPIRED', payload: { eventId, order } }]);
  await heard.waitFor((s) => s.events.some((e) => e.orderExpired.eventId === eventId), 5_000, 'the barrier event');
}

/** For these orders: how often the watcher heard each, and with which event ids. */
function heardOf(ids: string[]) {
  const wanted = new Set(ids);
  const byOrder = new Map<string, string[]>();
  for (const e of heard.events) {
    if (!wanted.has(e.orderExpired.order.id)) continue;
    byOrder.set(e.orderExpired.order.id, [...(byOrder.get(e.orderExpired.order.id) ?? []), e.orderExpired.eventId]);
  }
  return byOrder;
}

/** The ORDER_EXPIRED event ids the outbox holds for these orders, by order. */
async function outboxIds(ids: string[]): Promise<Map<string, string[]>> {
  const { rows } = await withDb(db.url, (c) =>
    c.query<{ order_id: string; event_id: string }>(`select order_id, event_id from ${ORDER_EXPIRED_EVENTS_SQL} e where order_id = any($1::text[])`, [ids]),
  );
  const byOrder = new Map<string, string[]>();
  for (const r of rows) byOrder.set(r.order_id, [...(byOrder.get(r.order_id) ?? []), r.event_id]);
  return byOrder;
}

/** Each order heard exactly once, with the one event id its outbox entry keeps. */
async function expectHeardOnce(ids: string[]): Promise<void> {
  const expected = await outboxIds(ids);
  expect([...expected.values()].filter((e) => e.length !== 1)).toEqual([]);
  expect(Object.fromEntries(heardOf(ids))).toEqual(Object.fromEntries(expected));
}

test('published, then killed before marking: the sweep of another instance republishes the batch, heard once with the same ids', async () => {
  const ids = await dueOrders(30);
  const events = await expireWithoutPublishing(a, 1000);
  expect(events.filter((e) => e.channel === 'ORDER_EXPIRED')).toHaveLength(30);
  await a.services.bus.publish(events); // the relay's publication; the kill came before `markPublished`
  await barrier(a);
  await expectHeardOnce(ids);

  expect(await b.relay.sweep()).toBe(1); // one batch row, still unpublished
  await barrier(b);
  await expectHeardOnce(ids);
});

test('the sweep first, then the committing instance\'s relay late: heard once', async () => {
  const ids = await dueOrders(30);
  const events = await expireWithoutPublishing(a, 1000);
  expect(await b.relay.sweep()).toBe(1);
  await barrier(b);
  await expectHeardOnce(ids);

  await a.relay.publish(events); // the relay of the commit, after the sweep published and marked the row
  await barrier(a);
  await expectHeardOnce(ids);
});

test('two sweeps of one row (the first died before marking it): heard once', async () => {
  const ids = await dueOrders(30);
  await expireWithoutPublishing(a, 1000);
  expect(await a.relay.sweep()).toBe(1);
  // The sweep's instance died between publishing and marking: the row is claimed again once its claim is old.
  await withDb(db.url, (c) =>
    c.query(`update outbox_events set published_at = null, claimed_at = now() - interval '1 minute' where topic = '@order-closes' and payload -> 'entries' -> 0 ->> 0 = any($1::text[])`, [ids]),
  );
  expect(await b.relay.sweep()).toBe(1);
  await barrier(b);
  await expectHeardOnce(ids);
});

test('two settles of the same due orders, the second after the first committed: each order expires once and is heard once', async () => {
  const ids = await dueOrders(20);
  // The first settle holds its batch (locked, expired, not yet committed) until `release`.
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let locked!: () => void;
  const isLocked = new Promise<void>((r) => (locked = r));
  const first = a.services.tx.runThenPublish(async (uow) => {
    const outcome = await a.services.orderSettlement.expireDue(uow, 1000, []);
    locked();
    await held;
    return outcome;
  });
  await isLocked;
  // The second instance expires one of them by id (reconciliation's path) and settles what is due: it
  // waits for the first's row lock, then finds the order no longer PENDING.
  const second = b.services.tx.runThenPublish((uow) => b.services.orderSettlement.expireNow(uow, ids[0], 'closed at its provider'));
  await waitUntil(
    async () =>
      (await withDb(db.url, (c) => c.query(`select 1 from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'`))).rowCount! > 0,
    5_000,
    'the second settle waiting for the first one\'s lock',
  );
  const third = b.services.tx.runThenPublish((uow) => b.services.orderSettlement.expireDue(uow, 1000, []));
  release();
  const [r1, r2, r3] = await Promise.all([first, second, third]);
  await Promise.all([r1.published, r2.published, r3.published]);
  expect(r1.result.settled.sort()).toEqual([...ids].sort());
  expect(r2.result).toBeNull();
  expect(r3.result.settled).toEqual([]);
  await barrier(a);
  await barrier(b);
  await expectHeardOnce(ids);
});

test('a subscriber whose Redis connection drops reads the batches back from the outbox: what it heard before is not heard again', async () => {
  const prefix = w.services.config.redisPrefix;
  const pub = new Redis(w.services.config.redisUrl);
  const sub = new Redis(w.services.config.redisUrl);
  const batches = new EventBatches([auctionEnds, orderCloses]);
  const log = new LogCapture();
  const bus = new EventBus(pub, sub, prefix, log.logger, committedSince(w.services.orm, batches), 60_000);
  const got: Array<{ eventId: string; orderId: string }> = [];
  const stop = await bus.listen('ORDER_EXPIRED', (p) => got.push({ eventId: p.eventId, orderId: (p.order as { id: string }).id }));
  try {
    const ids = await dueOrders(30);
    const run = await a.services.tx.runThenPublish((uow) => a.services.orderSettlement.expireDue(uow, 1000, []));
    await run.published;
    await waitUntil(() => ids.every((id) => got.some((g) => g.orderId === id)), 5_000, 'the expiries, live');
    // Cut off and back: the catch-up reads every batch committed since a minute before the loss.
    sub.disconnect(true);
    await waitUntil(() => log.messages().includes('events: caught up after the subscriber reconnected'), 10_000, 'the catch-up');
    // It read this test's batch back (and those of the tests before, which it had not heard: delivered).
    expect(Number(log.lines.find((l) => l.msg === 'events: caught up after the subscriber reconnected')?.read)).toBeGreaterThanOrEqual(30);
    const mine = got.filter((g) => ids.includes(g.orderId));
    expect(mine).toHaveLength(30);
    expect(new Set(mine.map((g) => g.eventId)).size).toBe(30);
  } finally {
    bus.close();
    await stop();
    pub.disconnect();
    sub.disconnect();
  }
});

/**
 * Every instance settles due deadlines on its own timer, the watcher's too: its listeners hear its own
 * batches at commit (`deliverLocal`), and every other copy of them (the Redis echo of its publication,
 * another instance's sweep of a row it marked late, its own catch-up after a lost subscriber
 * connection) carries the same event ids and is dropped.
 */
test("the watcher's instance settles the batch itself: heard at commit; its echo, another instance's sweep and its own catch-up are dropped", async () => {
  const prefix = w.services.config.redisPrefix;
  const pub = new Redis(w.services.config.redisUrl);
  const sub = new Redis(w.services.config.redisUrl);
  const batches = new EventBatches([auctionEnds, orderCloses]);
  const log = new LogCapture();
  // The watcher's instance, built from its parts so that its subscriber connection can be cut.
  const bus = new EventBus(pub, sub, prefix, log.logger, committedSince(w.services.orm, batches), 60_000);
  const relay = new OutboxRelay(w.services.orm, bus, log.logger, batches, 0);
  const tx = new Transactions(w.services.orm, relay, systemClock, log.logger);
  const got: Array<{ eventId: string; orderId: string }> = [];
  const stop = await bus.listen('ORDER_EXPIRED', (p) => got.push({ eventId: p.eventId, orderId: (p.order as { id: string }).id }));
  const heardHere = (ids: string[]) => {
    const byOrder = new Map<string, string[]>();
    for (const g of got) if (ids.includes(g.orderId)) byOrder.set(g.orderId, [...(byOrder.get(g.orderId) ?? []), g.eventId]);
    return Object.fromEntries(byOrder);
  };
  /** An event published by `via` after everything before it: heard here, those were heard (or dropped) too. */
  const barrierHere = async (via: App) => {
    const eventId = randomUUID();
    await via.services.bus.publish([{ channel: 'ORDER_EXPIRED', payload: { eventId, order: { id: `barrier-${eventId}` } } }]);
    await waitUntil(() => got.some((g) => g.eventId === eventId), 5_000, 'the barrier event');
  };
  try {
    const ids = await dueOrders(25);
    const run = await tx.runThenPublish((uow) => w.services.orderSettlement.expireDue(uow, 1000, []));
    // At commit, before Redis: the listener has every order already.
    expect(Object.keys(heardHere(ids)).sort()).toEqual([...ids].sort());
    await run.published;
    await barrierHere(w); // its own publication came back through Redis
    // Marked late (the watcher's relay slower than OUTBOX_REPUBLISH_AFTER_SECONDS): another instance's sweep sends it again.
    await withDb(db.url, (c) =>
      c.query(`update outbox_events set published_at = null where topic = '@order-closes' and payload -> 'entries' -> 0 ->> 0 = any($1::text[])`, [ids]),
    );
    expect(await b.relay.sweep()).toBe(1);
    await barrierHere(b);
    // Cut off and back: the catch-up reads the batch from the outbox once more.
    sub.disconnect(true);
    await waitUntil(() => log.messages().includes('events: caught up after the subscriber reconnected'), 10_000, 'the catch-up');
    await barrierHere(b);
    const expected = await outboxIds(ids);
    expect([...expected.values()].filter((e) => e.length !== 1)).toEqual([]);
    expect(heardHere(ids)).toEqual(Object.fromEntries(expected));
    // And the graphql-ws watcher on the other instance: once, with the same ids.
    await barrier(b);
    await expectHeardOnce(ids);
  } finally {
    bus.close();
    await stop();
    pub.disconnect();
    sub.disconnect();
  }
});

test("the watcher's instance committed the batch, another instance's sweep sent it before its own relay ran: its local delivery is dropped", async () => {
  const ids = await dueOrders(30);
  const events = await expireWithoutPublishing(w, 1000);
  expect(await b.relay.sweep()).toBe(1);
  await barrier(b);
  await expectHeardOnce(ids);

  await w.relay.publish(events); // the watcher's relay, late: local delivery first, then Redis
  await barrier(w);
  await expectHeardOnce(ids);
});

test('the watcher settles beside two other instances, batch by batch as they race for the same due orders: each order expires once and is heard once', async () => {
  const ids = await dueOrders(60);
  // Small batches, three instances at once, until none is due: SKIP LOCKED hands each order to one of them.
  const settleAll = async (app: App) => {
    for (;;) {
      const { result, published } = await app.services.tx.runThenPublish((uow) => app.services.orderSettlement.expireDue(uow, 7, []));
      await published;
      if (result.settled.length + result.failed.length === 0) return result;
    }
  };
  await Promise.all([settleAll(w), settleAll(a), settleAll(b)]);
  await barrier(a);
  await barrier(b);
  await expectHeardOnce(ids);
});

import { randomUUID } from 'node:crypto';
import type { App } from '../../src/app.js';
import { sql } from 'kysely';
import { rowsAs } from '../../src/db/rows.js';
import { Order } from '../../src/entities/Order.js';
import type { PublishedEvent } from '../../src/events/bus.js';
import { EventBatches, EventSink } from '../../src/events/outbox.js';
import { committedSince } from '../../src/events/relay.js';
import { orderWire } from '../../src/events/types.js';
import { orderCloses } from '../../src/services/orders/settle-close.js';
import { CANCEL, createOrder, createProduct, credit, ok } from '../support/orders.js';
import { createTestDatabase, sleep, start, subscribed, testConfig, token, wsClient } from '../support/harness.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let app: App;

beforeAll(async () => {
  db = await createTestDatabase('outbox');
  app = await start(testConfig(db.url, { OUTBOX_REPUBLISH_AFTER_SECONDS: '0.2', ENABLE_CRON: 'false' }));
});
afterAll(async () => {
  await app?.stop();
  await db?.drop();
});

const snapshot = (id: string) => ({
  id, sellerId: 's', nftId: 'n', title: 't', startingPrice: 1, minIncrement: 1, endTime: new Date().toISOString(),
  status: 'ENDED', highestBid: null, highestBidderId: null, winnerId: null, softCloseSeconds: 0,
  endedAt: new Date().toISOString(), createdAt: new Date().toISOString(),
});

test('an event committed but never published (a crash after commit) is published by the sweep, once', async () => {
  const client = wsClient(app, token('listener'));
  const sub = await subscribed(app, client, `subscription { auctionEnded { eventId auction { id } } }`, {}, 'AUCTION_ENDED');
  const eventId = randomUUID();
  // What a process that died between commit and publish leaves behind.
  await app.services.orm.em.fork().execute(
    `insert into outbox_events (id, topic, payload, created_at) values (?, 'AUCTION_ENDED', ?, now() - interval '1 second')`,
    [eventId, JSON.stringify({ eventId, auction: snapshot('77'), winnerId: null, finalPrice: null, endedAt: new Date().toISOString() })],
  );
  expect(await app.relay.sweep()).toBe(1);
  await sub.waitFor((s) => s.events.length === 1, 3_000, 'the republished event');
  expect(sub.events[0].auctionEnded).toEqual({ eventId, auction: { id: '77' } });

  expect(await app.relay.sweep()).toBe(0);
  // Claimed by a relay that then died before marking it published: republished, and dropped by
  // the instance that already delivered that event id.
  await app.services.orm.em.fork().execute(`update outbox_events set published_at = null, claimed_at = now() - interval '1 second' where id = ?`, [eventId]);
  expect(await app.relay.sweep()).toBe(1);
  await sleep(500);
  expect(sub.events).toHaveLength(1);
  sub.dispose();
  await client.dispose();
});

test('batches of auction ends committed but never published are published by the sweep, beside a row of its own: each event once, with the ids the batch keeps', async () => {
  const client = wsClient(app, token('listener'));
  const sub = await subscribed(app, client, `subscription { auctionEnded { eventId auction { id status } winnerId } }`, {}, 'AUCTION_ENDED');
  const em = app.services.orm.em.fork();
  await em.execute(`insert into users (id, role) values ('batch-seller', 'user') on conflict do nothing`);
  const ids = (
    await em.execute<Array<{ id: string }>>(
      `insert into auctions (seller_id, nft_id, title, starting_price, min_increment, end_time, soft_close_seconds)
       select 'batch-seller', 'nft-' || g, 'Batch lot', 1, 1, now() - interval '1 second', 0 from generate_series(1, 5) g returning id::text`,
    )
  ).map((r) => r.id);
  // What a process that died between commits and publication leaves behind: the ends, in two batches of
  // at most 3, their two rows, and an event of its own committed between them.
  const endBatch = () =>
    em.fork().transactional((tem) => app.services.auctions.endDue({ em: tem, events: new EventSink(tem), now: new Date(), afterCommit: () => undefined }, 3, []));
  const first = await endBatch();
  const single = randomUUID();
  await em.execute(`insert into outbox_events (id, topic, payload) values (?, 'AUCTION_ENDED', ?)`, [
    single,
    JSON.stringify({ eventId: single, auction: snapshot('78'), winnerId: null, finalPrice: null, endedAt: new Date().toISOString() }),
  ]);
  const second = await endBatch();
  expect([...first.settled, ...second.settled].sort()).toEqual([...ids].sort());
  // Committed 3, 2 and 1 s ago, in that order: the first batch, the row of its own, the second batch.
  const age = (where: string, params: unknown[], seconds: number) =>
    em.execute<Array<{ id: string; payload: { entries?: string[][] } }>>(
      `update outbox_events set created_at = now() - make_interval(secs => ${seconds}) where published_at is null and ${where} returning id, payload`,
      params,
    );
  const batches = [
    ...(await age(`topic like '@%' and payload -> 'entries' @> jsonb_build_array(jsonb_build_array(?::text))`, [first.settled[0]], 3)),
    ...(await age('id = ?', [single], 2)),
    ...(await age(`topic like '@%' and payload -> 'entries' @> jsonb_build_array(jsonb_build_array(?::text))`, [second.settled[0]], 1)),
  ];
  expect(batches).toHaveLength(3);
  // A sweep takes at most so many entities' events, and at least one row: the first batch (3) only.
  expect(await app.relay.sweep(500, 3)).toBe(1);
  await sub.waitFor((s) => s.events.length === 3, 3_000, 'the first batch');
  expect(await app.relay.sweep()).toBe(2);
  await sub.waitFor((s) => s.events.length === 6, 3_000, 'the five ends and the single event');
  const byAuction = (a: { auction: { id: string } }, b: { auction: { id: string } }) => a.auction.id.localeCompare(b.auction.id);
  expect(sub.events.map((e) => e.auctionEnded).sort(byAuction)).toEqual(
    [
      ...batches.flatMap((b) => b.payload.entries ?? []).map(([id, eventId]) => ({ eventId, auction: { id, status: 'ENDED' }, winnerId: null })),
      { eventId: single, auction: { id: '78', status: 'ENDED' }, winnerId: null },
    ].sort(byAuction),
  );
  expect(await app.relay.sweep()).toBe(0);
  await sleep(300);
  expect(sub.events).toHaveLength(6);
  sub.dispose();
  await client.dispose();
});

test('orders closed in a batch: their events live and read back from the batch row are the same, as orderWire writes the closed order', async () => {
  const buyer = token('closer');
  await credit(app, 'closer', 10_000);
  const product = await createProduct(app, { name: 'Closer tea', price: 300 });
  const [expiring, cancelled] = [await createOrder(app, buyer, { productId: product.id, paymentMethod: 'WALLET' }), await createOrder(app, buyer, { productId: product.id, paymentMethod: 'WALLET' })];
  const channels = ['ORDER_EXPIRED', `ORDER_UPDATED:${expiring.id}`, `ORDER_UPDATED:${cancelled.id}`];
  const live: PublishedEvent[] = [];
  const stops = await Promise.all(channels.map((channel) => app.services.bus.listen(channel, (payload) => live.push({ channel, payload }))));
  const since = new Date();
  await ok(app, CANCEL, { id: cancelled.id, reason: 'changed my mind' }, buyer);
  await app.services.tx.run((uow) => app.services.orderSettlement.expireNow(uow, expiring.id, 'unpaid at the provider'));
  await Promise.all(stops.map((stop) => stop()));
  const readBack = await committedSince(app.services.orm, new EventBatches([orderCloses]))(channels, since);

  const key = (e: PublishedEvent) => `${e.channel} ${e.payload.eventId} ${JSON.stringify(e.payload)}`;
  expect(readBack.map(key).sort()).toEqual(live.map(key).sort());
  const { rows } = await sql<Record<string, unknown>>`select * from orders where id in (${expiring.id}, ${cancelled.id})`.execute(app.services.orm.em.getKysely());
  const wire = new Map(rowsAs(app.services.orm.em, Order, rows).map((o) => [o.id, orderWire(o)]));
  expect(wire.get(expiring.id)).toMatchObject({ status: 'EXPIRED', cancelReason: 'unpaid at the provider', expiresAt: null });
  expect(wire.get(cancelled.id)).toMatchObject({ status: 'CANCELLED', cancelReason: 'changed my mind', expiresAt: null });
  expect(live.map((e) => [e.channel, e.payload.order])).toEqual([
    [`ORDER_UPDATED:${cancelled.id}`, wire.get(cancelled.id)],
    ['ORDER_EXPIRED', wire.get(expiring.id)],
    [`ORDER_UPDATED:${expiring.id}`, wire.get(expiring.id)],
  ]);
});

test('published events past OUTBOX_RETENTION_HOURS (24) are deleted by the sweep; an unpublished one never is', async () => {
  const em = app.services.orm.em.fork();
  const row = (age: string, published: boolean) => {
    const id = randomUUID();
    return em
      .execute(
        `insert into outbox_events (id, topic, payload, created_at, published_at, claimed_at)
         values (?, 'AUCTION_ENDED', '{}', now() - ?::interval, ${published ? 'now()' : 'null'}, now())`,
        [id, age],
      )
      .then(() => id);
  };
  const old = await row('25 hours', true);
  const oldUnpublished = await row('25 hours', false);
  const recent = await row('23 hours', true);
  expect(await app.relay.trim()).toBe(1);
  const left = await em.execute<Array<{ id: string }>>('select id from outbox_events where id = any(?::uuid[])', [`{${[old, oldUnpublished, recent].join(',')}}`]);
  expect(left.map((r) => r.id).sort()).toEqual([oldUnpublished, recent].sort());
  expect(await app.relay.trim()).toBe(0);
});

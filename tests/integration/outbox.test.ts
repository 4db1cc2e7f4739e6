import { randomUUID } from 'node:crypto';
import type { App } from '../../src/app.js';
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

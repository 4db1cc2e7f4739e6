import type { Client } from 'graphql-ws';
import type pg from 'pg';
import type { PostgresJobRepository } from '@agendajs/postgres-backend';
import type { App } from '../../src/app.js';
import { createAuction, createTestDatabase, gql, inSeconds, LogCapture, start, subscribed, Subscription, testConfig, token, waitUntil, wsClient } from '../support/harness.js';
import { ADMIN, createOrder, createProduct, credit, invariants, wallet, withDb } from '../support/orders.js';
import { TcpProxy } from '../support/tcp-proxy.js';

// PostgreSQL goes away from this server (not from the other test files) for 10 s: the server's
// DATABASE_URL, and with it Agenda's job store, point at a proxy of this file's own that the test
// cuts: 5 s refused (PostgreSQL down), then 5 s silent (packets dropped), then restored. Job lock
// lifetime and sweep intervals are the production defaults (120 s, 60 s): a job cut in the middle of
// its run stays locked that long, so what settles within seconds of the return was not left to them.
const OUTAGE_MS = 10_000;
/** The pool's connect timeout (src/db/unavailable.ts) plus room for a loaded machine. */
const REQUEST_BOUND_MS = 7_000;

const ENDED_SUB = 'subscription { auctionEnded { eventId winnerId finalPrice auction { id status } } }';
const EXPIRED_SUB = 'subscription { orderExpired { eventId order { id status } } }';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let proxy: TcpProxy;
let app: App;
let log: LogCapture;
const clients: Client[] = [];
// Anything the server let escape would end the process in production; here it is collected.
const escaped: unknown[] = [];
const collect = (err: unknown) => void escaped.push(err);

beforeAll(async () => {
  process.on('unhandledRejection', collect);
  process.on('uncaughtException', collect);
  db = await createTestDatabase('pg_outage');
  proxy = await TcpProxy.start({ host: '127.0.0.1', port: Number(new URL(db.url).port || 5432) });
  log = new LogCapture();
  app = await start(
    testConfig(proxy.url(db.url), {
      ORDER_EXPIRE_MINUTES: '0.1',
      LOG_LEVEL: 'info',
      JOB_LOCK_LIFETIME_SECONDS: '120',
      DEADLINE_SWEEP_SECONDS: '60',
      OUTBOX_SWEEP_SECONDS: '10',
    }),
    log,
  );
});

afterAll(async () => {
  for (const c of clients) await c.dispose();
  await app?.stop();
  await proxy?.close();
  await db?.drop();
  process.off('unhandledRejection', collect);
  process.off('uncaughtException', collect);
});

const health = async () => {
  const res = await fetch(app.url.replace('/graphql', '/health'));
  return { status: res.status, body: (await res.json()) as { checks: Record<string, string> } };
};

/** A request during the outage: how long it took and what the client got. */
async function timed(query: string, bearer?: string) {
  const started = Date.now();
  const res = await gql(app, query, {}, bearer);
  return { ms: Date.now() - started, status: res.status, data: res.data, errors: res.errors };
}

function expectUnavailable(r: Awaited<ReturnType<typeof timed>>) {
  expect(r.errors).toHaveLength(1);
  expect(r.errors![0].extensions?.code).toBe('SERVICE_UNAVAILABLE');
  expect(r.errors![0].extensions?.stacktrace).toBeUndefined();
  expect(r.errors![0].message).toBe('The database is unavailable; try again shortly');
  expect(r.ms).toBeLessThan(REQUEST_BOUND_MS);
}

test('PostgreSQL unreachable for 10 s: requests fail fast with SERVICE_UNAVAILABLE, /health says 503, and what came due settles once, heard live', async () => {
  const product = await createProduct(app, { name: 'Tea', price: 300, stock: 50 });
  const buyers = ['b1', 'b2', 'b3', 'b4'];
  for (const b of buyers) await credit(app, b, 1_000);
  const admin = wsClient(app, ADMIN);
  clients.push(admin);
  const ended = await subscribed(app, admin, ENDED_SUB, {}, 'AUCTION_ENDED');
  const expired = await subscribed(app, admin, EXPIRED_SUB, {}, 'ORDER_EXPIRED');

  // The first auction ends before the outage; the other four come due 1.5 s later, in the outage
  // (the timer and the wake-up job fail), and so do the orders, 6 s after creation
  // (ORDER_EXPIRE_MINUTES = 0.1). The timer's LISTEN connection is cut too, and made again after.
  const seller = token('seller-1');
  const t0 = Date.now();
  const at = (ms: number) => new Date(t0 + ms).toISOString();
  const first = await createAuction(app, seller, at(3_000));
  const auctions: Array<{ id: string }> = [];
  for (let i = 0; i < 4; i++) auctions.push(await createAuction(app, seller, at(4_500)));
  const bid = await gql(app, `mutation { placeBid(input: { auctionId: "${auctions[0].id}", amount: 150 }) { highestBid } }`, {}, token('b1'));
  expect(bid.errors).toBeUndefined();
  const orders = await Promise.all(buyers.map((b) => createOrder(app, token(b), { productId: product.id, paymentMethod: 'WALLET' })));
  expect((await health()).status).toBe(200);
  await ended.waitFor((s) => s.events.length === 1, 10_000, 'the first auction to end');
  expect(ended.events[0].auctionEnded.auction.id).toBe(first.id);

  const cutAt = Date.now();
  await proxy.cut('refuse');

  // Refused: the pool finds out at once.
  const requests: Array<{ phase: string; what: string; ms: number; status: number }> = [];
  const attempt = async (phase: string, what: string, query: string, bearer?: string) => {
    const r = await timed(query, bearer);
    requests.push({ phase, what, ms: r.ms, status: r.status });
    expectUnavailable(r);
  };
  // A caller seen before fails in the resolver; one seen for the first time while its context is
  // built (its user row is written then): both give the same code.
  await attempt('refused', 'wallet', '{ wallet { balance frozen } }', token('b1'));
  await attempt('refused', 'auction, first-time caller', `{ auction(id: "${auctions[1].id}") { id status } }`, token('newcomer-1'));
  await attempt('refused', 'createAuction', `mutation { createAuction(input: { nftId: "n", title: "t", startingPrice: 1, minIncrement: 1, endTime: "${inSeconds(60)}", softCloseSeconds: 0 }) { id } }`, seller);
  // The seed's REST route too.
  const rest = await fetch(app.url.replace('/graphql', `/api/auction-tasks/${auctions[3].id}`), { method: 'DELETE', headers: { authorization: `Bearer ${seller}` } });
  expect(rest.status).toBe(503);
  expect(await rest.json()).toMatchObject({ success: false, code: 'SERVICE_UNAVAILABLE' });
  // A subscriber connecting meanwhile is told to try again later, not that its token is bad.
  const newcomer = wsClient(app, token('newcomer-3'));
  clients.push(newcomer);
  const refused = new Subscription(newcomer, ENDED_SUB);
  await refused.waitFor((s) => s.errors.length > 0, 5_000, 'the socket to be closed');
  expect((refused.errors[0] as { code?: number }).code).toBe(1013);
  let started = Date.now();
  const down = await health();
  const healthMs = [Date.now() - started];
  expect(down.status).toBe(503);
  expect(down.body.checks).toEqual({ postgres: 'down', redis: 'ok' });

  // Silent: connections are accepted and never answered; the connect timeout bounds the wait.
  while (Date.now() - cutAt < OUTAGE_MS / 2) await new Promise((r) => setTimeout(r, 100));
  await proxy.cut('hang');
  await Promise.all([
    attempt('silent', 'wallet', '{ wallet { balance frozen } }', token('b2')),
    attempt('silent', 'auction, first-time caller', `{ auction(id: "${auctions[2].id}") { id status } }`, token('newcomer-2')),
    (async () => {
      started = Date.now();
      const silent = await health();
      healthMs.push(Date.now() - started);
      expect(silent.status).toBe(503);
    })(),
  ]);
  expect(ended.events).toHaveLength(1);
  expect(expired.events).toEqual([]);

  while (Date.now() - cutAt < OUTAGE_MS) await new Promise((r) => setTimeout(r, 100));
  await proxy.restore();
  const restoredAt = Date.now();

  await waitUntil(async () => (await health()).status === 200, 10_000, '/health to say 200');
  const healthyAfterMs = Date.now() - restoredAt;
  await ended.waitFor((s) => s.events.length >= 1 + auctions.length, 15_000, 'every auctionEnded');
  const auctionsHeardMs = Date.now() - restoredAt;
  await expired.waitFor((s) => s.events.length >= orders.length, 15_000, 'every orderExpired');
  const ordersHeardMs = Date.now() - restoredAt;

  // The engine works again (its timer or its wake-up job, not only the sweep): an auction created now
  // ends on time, once, and its end is heard after any late copy of the others would have been.
  const late = await createAuction(app, seller, inSeconds(1.5));
  await ended.waitFor((s) => s.events.some((e) => e.auctionEnded.auction.id === late.id), 10_000, 'the new auction to end');
  const lateSettledBy = log.lines.filter((l) => l.msg === 'deadlines settled' && (l.ids as string[]).includes(late.id));
  expect(lateSettledBy).toHaveLength(1);
  expect(['timer', 'wake-up']).toContain(lateSettledBy[0].via);
  // The timers' LISTEN connection, cut with the others, is made again (its retries are 2 s apart, and
  // one begun in the silent phase waits out its 5 s connect timeout).
  expect(log.messages()).toContain('deadline notifications: connection lost; listening again as soon as it can be made');
  await waitUntil(() => log.messages().includes('deadline notifications: listening again'), 15_000, 'the LISTEN connection to be made again');

  // Once each: every auction and order heard once, with distinct event ids, and settled in the table.
  const endedIds = ended.events.map((e) => e.auctionEnded.auction.id);
  expect(endedIds.sort()).toEqual([first.id, ...auctions.map((a) => a.id), late.id].sort());
  expect(new Set(ended.events.map((e) => e.auctionEnded.eventId)).size).toBe(ended.events.length);
  expect(ended.events.find((e) => e.auctionEnded.auction.id === auctions[0].id).auctionEnded).toMatchObject({ winnerId: 'b1', finalPrice: 150 });
  expect(expired.events.map((e) => e.orderExpired.order.id).sort()).toEqual(orders.map((o) => o.id).sort());
  expect(expired.events.every((e) => e.orderExpired.order.status === 'EXPIRED')).toBe(true);
  const statuses = await withDb(db.url, async (c) => (await c.query(`select status, count(*)::int as n from auctions group by status`)).rows);
  expect(statuses).toEqual([{ status: 'ENDED', n: auctions.length + 2 }]);
  for (const b of buyers) expect(await wallet(app, token(b))).toEqual({ balance: 1_000, frozen: 0 });
  expect((await invariants(db.url, { running: true })).violations).toEqual([]);

  // No pool left wedged: three times the business pool's size at once all get answers.
  const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => gql(app, '{ wallet { balance } }', {}, token(buyers[i % buyers.length]))));
  expect(burst.filter((r) => r.errors)).toEqual([]);

  // No pool left wedged: once quiet, no connection is held but Agenda's LISTEN one (a transaction cut
  // by the outage kept its connection for good before, kysely-org/kysely#1990) ...
  const ormPool = (await app.services.orm.em.getConnection().getNativeClient());
  const storePool = (app.scheduler.db as PostgresJobRepository).getPool();
  const held = (p: pg.Pool) => p.totalCount - p.idleCount;
  await waitUntil(() => held(ormPool) === 0 && held(storePool) <= 1, 10_000, 'no connection held');
  // ... and the server stops (it waited for ever for the connections it had lost).
  const stopping = Date.now();
  await Promise.race([app.stop(), new Promise((_, reject) => setTimeout(() => reject(new Error('app.stop() hung')), 20_000))]);
  const stopMs = Date.now() - stopping;

  // Nothing escaped, and the operator read one warning for the outage and one line when it ended.
  expect(escaped).toEqual([]);
  const msgs = log.messages();
  expect(msgs.filter((m) => m === 'PostgreSQL unreachable; retrying until it is back')).toHaveLength(1);
  expect(msgs.filter((m) => m === 'PostgreSQL reachable again')).toHaveLength(1);
  expect(msgs.filter((m) => m === 'scheduler error')).toEqual([]);
  // What it took, for the record (docs: README "PostgreSQL outages").
  console.log(JSON.stringify({ requests, healthMs, healthyAfterMs, auctionsHeardMs, ordersHeardMs, stopMs }));
}, 90_000);

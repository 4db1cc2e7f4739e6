import type { App } from '../../src/app.js';
import { createTestDatabase, gql, LogCapture, sleep, start, subscribed, testConfig, token, waitUntil, wsClient } from '../support/harness.js';
import { envOf, spawnServer } from '../support/child.js';
import { ADMIN, CANCEL, createOrder, createProduct, credit, invariants, PAY, withDb, type OrderResult } from '../support/orders.js';
import { ORDER_EXPIRED_EVENTS_SQL } from '../../bench/outbox-events.js';

// Two instances, a restart and a killed process, all on one database: the money must add up after each.
let db: Awaited<ReturnType<typeof createTestDatabase>>;
const apps: App[] = [];

beforeAll(async () => {
  db = await createTestDatabase('order_instances');
});

afterAll(async () => {
  for (const a of apps) await a.stop();
  await db?.drop();
});

async function startInstance(env: Record<string, string>, log?: LogCapture, prefix?: string) {
  const config = testConfig(db.url, { ORDER_EXPIRE_MINUTES: '0.1', ...env });
  if (prefix) config.redisPrefix = prefix;
  const app = await start(config, log);
  apps.push(app);
  return app;
}

const statuses = async (ids: string[]) =>
  withDb(db.url, async (c) => (await c.query('select status, count(*)::int as n from orders where id = any($1::bigint[]) group by status', [ids])).rows);

test('two instances: both expire, pay and cancel the same orders at once; each order settles once and is heard once', async () => {
  const a = await startInstance({});
  const b = await startInstance({}, undefined, a.services.config.redisPrefix);
  const product = await createProduct(a, { name: 'Cake', price: 300 });
  const users = Array.from({ length: 20 }, (_, i) => `twin-${i}`);
  for (const u of users) await credit(a, u, 900);
  const admin = wsClient(a, ADMIN);
  const heard = await subscribed(a, admin, 'subscription { orderExpired { eventId order { id } } }', {}, 'ORDER_EXPIRED');

  // 60 orders, created through both instances at once, their deadlines within ~100 ms of each other.
  const orders: OrderResult[] = await Promise.all(
    users.flatMap((u, i) =>
      [0, 1, 2].map((k) =>
        createOrder([a, b][(i + k) % 2], token(u), {
          productId: product.id,
          paymentMethod: k === 2 ? 'WECHAT' : k === 1 ? 'MIXED' : 'WALLET',
          ...(k === 1 ? { walletAmount: 120 } : {}),
        }),
      ),
    ),
  );
  const ids = orders.map((o) => o.id);
  const last = Math.max(...orders.map((o) => new Date(o.expiresAt!).getTime()));
  const first = Math.min(...orders.map((o) => new Date(o.expiresAt!).getTime()));
  await sleep(first - Date.now() - 150);
  // Around the deadlines: payments and cancellations through either instance, and extra wake-ups and sweeps.
  // Every other WALLET order is paid, every fourth order cancelled (orders[i] is WALLET when i % 3 is 0).
  const action = (i: number) => (i % 6 === 0 ? 'pay' : i % 4 === 1 ? 'cancel' : null);
  const actions = orders.map((o, i) => {
    const app = [a, b][i % 2];
    if (action(i) === 'pay') return gql(app, PAY, { id: o.id }, token(o.userId));
    if (action(i) === 'cancel') return gql(app, CANCEL, { id: o.id }, token(o.userId));
    return Promise.resolve(null);
  });
  const wakes = [a.deadlines.settleDue('order-expiry', 'timer'), b.deadlines.settleDue('order-expiry', 'wake-up'), a.deadlines.sweep(), b.deadlines.sweep()];
  await sleep(last - Date.now() + 50);
  const more = [a.deadlines.settleDue('order-expiry', 'timer'), b.deadlines.sweep()];
  const answers = await Promise.all(actions);
  await Promise.all([...wakes, ...more]);
  // Each payment or cancellation either won, or lost to the expiry with a CONFLICT: never an error.
  const codes = answers.filter((r) => r !== null).map((r) => r.errors?.[0]?.extensions?.code ?? 'OK');
  expect(codes.filter((c) => c !== 'OK' && c !== 'CONFLICT')).toEqual([]);
  await waitUntil(async () => !(await statuses(ids)).some((r) => r.status === 'PENDING'), 5_000, 'every order settled');

  const expiredIds = await withDb(db.url, async (c) => (await c.query(`select id from orders where id = any($1::bigint[]) and status = 'EXPIRED'`, [ids])).rows.map((r) => String(r.id)));
  await heard.waitFor((s) => s.events.length >= expiredIds.length, 5_000, 'every expiry heard');
  await sleep(500);
  expect(heard.events.map((e) => e.orderExpired.order.id).sort()).toEqual([...expiredIds].sort());
  // What each answer said is what the order became.
  const final = await withDb(db.url, async (c) => (await c.query('select id, status from orders where id = any($1::bigint[])', [ids])).rows);
  const statusOf = new Map(final.map((r) => [String(r.id), r.status]));
  answers.forEach((r, i) => {
    if (r === null) expect(statusOf.get(orders[i].id)).toBe('EXPIRED');
    else if (r.errors) expect(statusOf.get(orders[i].id)).toBe('EXPIRED');
    else expect(statusOf.get(orders[i].id)).toBe(action(i) === 'pay' ? 'PAID' : 'CANCELLED');
  });
  const outbox = await withDb(db.url, async (c) => (await c.query(`select order_id as id, count(*)::int as n from ${ORDER_EXPIRED_EVENTS_SQL} e group by 1 having count(*) > 1`)).rows);
  expect(outbox).toEqual([]);
  expect((await invariants(db.url, { running: true })).violations).toEqual([]);
  heard.dispose();
  await admin.dispose();
  for (const app of apps.splice(0)) await app.stop();
});

test('restart: orders that expired while no server ran expire at start-up, which logs what it restored', async () => {
  const a = await startInstance({});
  const product = await createProduct(a, { name: 'Bread', price: 200 });
  await credit(a, 'sleeper', 1_000);
  const overdue = await Promise.all([0, 1, 2].map(() => createOrder(a, token('sleeper'), { productId: product.id, paymentMethod: 'MIXED', walletAmount: 50 })));
  await apps.splice(0)[0].stop();
  // While no server runs, time passes for two of them: their deadlines go by; the third is still ahead.
  await withDb(db.url, async (c) => {
    await c.query(`update orders set expires_at = now() - interval '1 second' where id = any($1::bigint[])`, [[overdue[0].id, overdue[1].id]]);
    await c.query(`update orders set expires_at = now() + interval '1 hour' where id = $1`, [overdue[2].id]);
  });

  const log = new LogCapture();
  await startInstance({}, log);
  expect(log.messages()).toContain('Restored 2/3 order expiry tasks');
  expect(await statuses(overdue.map((o) => o.id))).toEqual(expect.arrayContaining([{ status: 'EXPIRED', n: 2 }, { status: 'PENDING', n: 1 }]));
  expect((await invariants(db.url, { running: true })).violations).toEqual([]);
  await withDb(db.url, (c) => c.query(`update orders set expires_at = now() + interval '300 milliseconds' where id = $1`, [overdue[2].id]));
  await apps[0].deadlines.arm('order-expiry', new Date(Date.now() + 300));
  await waitUntil(async () => (await statuses([overdue[2].id]))[0].status === 'EXPIRED', 5_000, 'the later one to expire');
  expect((await invariants(db.url, { running: true })).violations).toEqual([]);
  for (const app of apps.splice(0)) await app.stop();
});

test('a server process killed with SIGKILL while expiring: what it committed stands, the next one finishes, no money twice', async () => {
  const config = testConfig(db.url, { ORDER_EXPIRE_MINUTES: '0.08' });
  // One order per transaction, so the kill lands between and inside many transactions.
  const child = await spawnServer(envOf(config, { ORDER_EXPIRE_MINUTES: '0.08', ORDER_EXPIRY_BATCH_SIZE: '1' }));
  const via = { url: child.url } as App;
  const product = await createProduct(via, { name: 'Soup', price: 100 });
  const users = Array.from({ length: 30 }, (_, i) => `victim-${i}`);
  for (const u of users) await credit(via, u, 1_000);
  const orders: OrderResult[] = [];
  for (let round = 0; round < 8; round++) {
    orders.push(
      ...(await Promise.all(
        users.map((u, i) =>
          createOrder(via, token(u), { productId: product.id, paymentMethod: i % 2 ? 'MIXED' : 'WALLET', ...(i % 2 ? { walletAmount: 40 } : {}) }),
        ),
      )),
    );
  }
  const ids = orders.map((o) => o.id);
  const pending = async () => Number((await statuses(ids)).find((r) => r.status === 'PENDING')?.n ?? 0);
  await waitUntil(async () => (await pending()) < ids.length - 20, 20_000, 'expiries under way');
  await child.kill();
  const left = await pending();
  expect(left).toBeGreaterThan(0);
  // Killed mid-way: the state is consistent as it stands (no PENDING check: no server runs).
  expect((await invariants(db.url)).violations).toEqual([]);

  const log = new LogCapture();
  const next = await startInstance({ OUTBOX_SWEEP_SECONDS: '0.5', OUTBOX_REPUBLISH_AFTER_SECONDS: '0.5' }, log, config.redisPrefix);
  expect(log.messages().some((m) => /^Restored \d+\/\d+ order expiry tasks$/.test(m))).toBe(true);
  // The overdue ones at start-up, the rest as they come due.
  await waitUntil(async () => (await pending()) === 0, 10_000, 'the rest to expire');
  expect((await invariants(db.url, { running: true })).violations).toEqual([]);
  // Every expiry's events were written once and are (re)published by the outbox sweep.
  const dupes = await withDb(db.url, async (c) => (await c.query(`select order_id as id from ${ORDER_EXPIRED_EVENTS_SQL} e group by 1 having count(*) > 1`)).rows);
  expect(dupes).toEqual([]);
  await waitUntil(async () => (await withDb(db.url, (c) => c.query('select 1 from outbox_events where published_at is null'))).rowCount === 0, 10_000, 'outbox drained');
  expect(next.services.config.redisPrefix).toBe(config.redisPrefix);
});

import type { Client } from 'graphql-ws';
import type { App } from '../../src/app.js';
import { createTestDatabase, gql, LogCapture, sleep, start, subscribed, testConfig, token, waitUntil, wsClient } from '../support/harness.js';
import { ADMIN, createOrder, createProduct, credit, invariants, PAY, wallet, withDb, type OrderResult } from '../support/orders.js';

// Orders expire 3 s after creation; the safety sweep runs every 5 s, so an expiry the timers missed
// would show as lateness well over a second.
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let app: App;
let log: LogCapture;
let product: { id: string };
const clients: Client[] = [];

const EXPIRED_SUB = 'subscription { orderExpired { eventId order { id userId status expiresAt isExpired cancelReason walletAmount } } }';

beforeAll(async () => {
  db = await createTestDatabase('order_expiry');
  log = new LogCapture();
  app = await start(testConfig(db.url, { ORDER_EXPIRE_MINUTES: '0.05', DEADLINE_SWEEP_SECONDS: '5' }), log);
  product = await createProduct(app, { name: 'Coffee', price: 400, stock: 100 });
});

afterAll(async () => {
  for (const c of clients) await c.dispose();
  await app?.stop();
  await db?.drop();
});

const client = (bearer: string) => {
  const c = wsClient(app, bearer);
  clients.push(c);
  return c;
};

/** When the server settled each order, against its original deadline. */
async function settledLateness(orders: OrderResult[]): Promise<number[]> {
  const rows = await withDb(db.url, async (c) => (await c.query('select id, closed_at from orders where id = any($1::bigint[])', [orders.map((o) => o.id)])).rows);
  const closed = new Map(rows.map((r) => [String(r.id), new Date(r.closed_at).getTime()]));
  return orders.map((o) => closed.get(o.id)! - new Date(o.expiresAt!).getTime());
}

test('unpaid orders expire on time, give back exactly their frozen part and stock, and the right people hear it once', async () => {
  await credit(app, 'u1', 1_000);
  await credit(app, 'u2', 1_000);
  const own = await subscribed(app, client(token('u1')), EXPIRED_SUB, {}, 'ORDER_EXPIRED');
  const admin = await subscribed(app, client(ADMIN), EXPIRED_SUB, {}, 'ORDER_EXPIRED', 2);
  const stranger = await subscribed(app, client(token('u9')), EXPIRED_SUB, {}, 'ORDER_EXPIRED', 3);

  const whole = await createOrder(app, token('u1'), { productId: product.id, paymentMethod: 'WALLET' });
  const mixed = await createOrder(app, token('u2'), { productId: product.id, paymentMethod: 'MIXED', walletAmount: 150, quantity: 2 });
  const online = await createOrder(app, token('u2'), { productId: product.id, paymentMethod: 'WECHAT' });
  const updates = await subscribed(app, client(token('u2')), 'subscription($id: ID!) { orderUpdated(orderId: $id) { id status } }', { id: mixed.id }, `ORDER_UPDATED:${mixed.id}`);
  expect(await wallet(app, token('u1'))).toEqual({ balance: 600, frozen: 400 });
  expect(await wallet(app, token('u2'))).toEqual({ balance: 850, frozen: 150 });

  await admin.waitFor((s) => s.events.length >= 3, 10_000, 'three orderExpired');
  await own.waitFor((s) => s.events.length >= 1, 5_000, "u1's orderExpired");
  await updates.waitFor((s) => s.events.length >= 1, 5_000, 'orderUpdated');
  await sleep(500);

  expect(admin.events.map((e) => e.orderExpired.order.id).sort()).toEqual([whole.id, mixed.id, online.id].sort());
  expect(own.events.map((e) => e.orderExpired.order.id)).toEqual([whole.id]);
  expect(stranger.events).toEqual([]);
  expect(updates.events).toEqual([{ orderUpdated: { id: mixed.id, status: 'EXPIRED' } }]);
  expect(admin.events[0].orderExpired.order).toMatchObject({ status: 'EXPIRED', expiresAt: null, isExpired: false, cancelReason: 'Not paid within 0.05 minutes' });
  expect(new Set(admin.events.map((e) => e.orderExpired.eventId)).size).toBe(3);

  expect(await wallet(app, token('u1'))).toEqual({ balance: 1_000, frozen: 0 });
  expect(await wallet(app, token('u2'))).toEqual({ balance: 1_000, frozen: 0 });
  const stock = (await gql(app, 'query($id: ID!) { product(id: $id) { stock } }', { id: product.id }, ADMIN)).data!.product.stock;
  expect(stock).toBe(100);
  // Never early, and (the precision bound is generous) well within a second.
  for (const late of await settledLateness([whole, mixed, online])) {
    expect(late).toBeGreaterThanOrEqual(0);
    expect(late).toBeLessThan(1_000);
  }
  // Settled once, at its time: by the instance's timer (or its wake-up job, when that came first).
  const settledBy = log.lines.filter((l) => l.msg === 'deadlines settled' && (l.ids as string[]).includes(whole.id));
  expect(settledBy).toHaveLength(1);
  expect(['timer', 'wake-up']).toContain(settledBy[0].via);
  expect((await invariants(db.url, { running: true })).violations).toEqual([]);
  for (const s of [own, admin, stranger, updates]) s.dispose();
});

test('a payment and the expiry racing on the same order: exactly one wins and the wallet agrees', async () => {
  const users = Array.from({ length: 12 }, (_, i) => `racer-${i}`);
  for (const u of users) await credit(app, u, 400);
  const orders = await Promise.all(users.map((u) => createOrder(app, token(u), { productId: product.id, paymentMethod: 'WALLET' })));
  // Each payment is sent from 300 ms before to 250 ms after its order's deadline: the early ones win
  // even on a slow machine, the late ones lose, and those around the deadline race the expiry.
  const outcomes = await Promise.all(
    orders.map(async (o, i) => {
      await sleep(new Date(o.expiresAt!).getTime() - Date.now() - 300 + i * 50);
      return gql(app, PAY, { id: o.id }, token(users[i]));
    }),
  );
  await waitUntil(async () => (await withDb(db.url, (c) => c.query(`select 1 from orders where id = any($1::bigint[]) and status = 'PENDING'`, [orders.map((o) => o.id)]))).rowCount === 0, 5_000, 'all settled');

  const rows = await withDb(db.url, async (c) => (await c.query('select id, status from orders where id = any($1::bigint[]) order by id', [orders.map((o) => o.id)])).rows);
  const statusOf = new Map(rows.map((r) => [String(r.id), r.status]));
  let paid = 0;
  for (const [i, o] of orders.entries()) {
    const res = outcomes[i];
    const w = await wallet(app, token(users[i]));
    if (res.errors) {
      expect(res.errors[0].extensions?.code).toBe('CONFLICT');
      expect(statusOf.get(o.id)).toBe('EXPIRED');
      expect(w).toEqual({ balance: 400, frozen: 0 });
    } else {
      paid++;
      expect(res.data!.payOrderWithWallet.status).toBe('PAID');
      expect(statusOf.get(o.id)).toBe('PAID');
      expect(w).toEqual({ balance: 0, frozen: 0 });
    }
  }
  // The payments early enough won, the late ones lost (the exact split depends on timing).
  expect(paid).toBeGreaterThan(0);
  expect(paid).toBeLessThan(orders.length);
  expect((await invariants(db.url, { running: true })).violations).toEqual([]);
});

test('an order whose wake-up job was deleted from the job store still expires at its time, by the instance\'s timer', async () => {
  const sub = await subscribed(app, client(ADMIN), EXPIRED_SUB, {}, 'ORDER_EXPIRED');
  const order = await createOrder(app, token('u3'), { productId: product.id, paymentMethod: 'WECHAT' });
  await withDb(db.url, (c) => c.query(`delete from agenda_jobs where name = 'deadline:order-expiry'`));
  await sub.waitFor((s) => s.events.some((e) => e.orderExpired.order.id === order.id), 12_000, 'the order to expire');
  // Not the wake-up job (gone), nor the sweep (every 5 s): the timer, on time.
  const settledBy = log.lines.filter((l) => l.msg === 'deadlines settled' && (l.ids as string[]).includes(order.id));
  expect(settledBy.map((l) => l.via)).toEqual(['timer']);
  const [late] = await settledLateness([order]);
  expect(late).toBeGreaterThanOrEqual(0);
  expect(late).toBeLessThan(1_000);
  expect(sub.events.filter((e) => e.orderExpired.order.id === order.id)).toHaveLength(1);
  expect((await invariants(db.url, { running: true })).violations).toEqual([]);
  sub.dispose();
});

test('an expiry whose wallet does not match is rolled back, logged and retried; the rest of the batch expires', async () => {
  await credit(app, 'broken', 1_000);
  await credit(app, 'fine', 1_000);
  const bad = await createOrder(app, token('broken'), { productId: product.id, paymentMethod: 'WALLET' });
  const good = await createOrder(app, token('fine'), { productId: product.id, paymentMethod: 'MIXED', walletAmount: 100 });
  await withDb(db.url, (c) => c.query(`update wallets set frozen = 100, balance = balance + 300 where user_id = 'broken'`));

  await waitUntil(() => log.lines.some((l) => l.id === bad.id && l.kind === 'order-expiry'), 5_000, 'the failure to be logged');
  const failure = log.lines.find((l) => l.id === bad.id)!;
  expect(failure.reason).toBe('the wallet of user broken holds 100 frozen cents, the order needs 400');
  await waitUntil(() => log.lines.some((l) => l.msg === 'job failed' && l.job === 'deadline:order-expiry'), 5_000, 'the job to report failure');
  const [goodLate] = await settledLateness([good]);
  expect(goodLate).toBeLessThan(1_000);
  const still = await withDb(db.url, async (c) => (await c.query('select status, expires_at from orders where id = $1', [bad.id])).rows[0]);
  expect(still.status).toBe('PENDING');
  expect(new Date(still.expires_at).toISOString()).toBe(bad.expiresAt);
  expect(await wallet(app, token('broken'))).toEqual({ balance: 900, frozen: 100 });
  expect((await invariants(db.url, { running: true, exempt: [bad.id] })).violations.join()).toMatch(/frozen differs/);

  // Repaired, the retry (1, 2, 4 … s apart) expires it without anyone's help.
  await withDb(db.url, (c) => c.query(`update wallets set frozen = 400, balance = balance - 300 where user_id = 'broken'`));
  await waitUntil(async () => (await withDb(db.url, (c) => c.query(`select 1 from orders where id = $1 and status = 'EXPIRED'`, [bad.id]))).rowCount === 1, 10_000, 'the retry');
  expect(await wallet(app, token('broken'))).toEqual({ balance: 1_000, frozen: 0 });
  expect((await invariants(db.url, { running: true })).violations).toEqual([]);
});

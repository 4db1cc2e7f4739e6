import type { App } from '../../src/app.js';
import type { SandboxHandle } from '../../src/payments/sandbox/server.js';
import { PaymentRecorder } from '../../src/services/payments/record.js';
import { gql, LogCapture, MovableClock, paymentSandbox, setUp, sleep, subscribed, type TestDatabase, token, waitUntil, wsClient } from '../support/harness.js';
import { ADMIN, createProduct, credit, invariants, ok, wallet, withDb } from '../support/orders.js';

/**
 * Online payments end to end: a real server, the sandbox over real HTTP (WeChat Pay v3's shapes, its
 * own keys, signed and encrypted callbacks), graphql-ws watchers. Reconciliation runs on a clock the
 * test moves, so "older than 5 minutes" and "unpaid past 15 minutes" take no time. After each test
 * the money invariants of the orders tests hold.
 */
let db: TestDatabase;
let app: App;
let sandbox: SandboxHandle;
const clock = new MovableClock();
const log = new LogCapture();

const ORDER = 'id orderNo status paidVia expiresAt walletAmount amount cancelReason payment { provider codeUrl h5Url prepayId expiresAt }';
const CREATE = `mutation($input: CreateOrderInput!) { createOrder(input: $input) { ${ORDER} } }`;
const PAYMENTS = `query($f: PaymentFilter, $first: Int) { payments(filter: $f, first: $first) {
  edges { node { id orderId orderNo provider transactionId amount paidAt source needsRefund refundReason } } } }`;

interface PaidOrder {
  id: string;
  orderNo: string;
  status: string;
  paidVia: string | null;
  walletAmount: number;
  amount: number;
  cancelReason: string | null;
  payment: { provider: string; codeUrl: string | null } | null;
}

beforeAll(async () => {
  sandbox = await paymentSandbox();
  // The periodic run at start-up happens with nothing to do; each test runs reconciliation itself.
  ({ db, app } = await setUp('payments', { RECONCILE_INTERVAL_MINUTES: '60' }, { log, clock }));
});

afterEach(async () => {
  sandbox.faults.systemError = false;
  const { violations } = await invariants(db.url);
  expect(violations).toEqual([]);
});

let product: { id: string; price: number };
beforeAll(async () => {
  product = await createProduct(app, { name: 'Tea', price: 1000 });
});

async function order(bearer: string, paymentMethod: string, walletAmount?: number): Promise<PaidOrder> {
  const data = await ok(app, CREATE, { input: { productId: product.id, quantity: 1, paymentMethod, walletAmount } }, bearer);
  return data.createOrder as PaidOrder;
}

const read = async (id: string, bearer = ADMIN) => (await ok(app, `query($id: ID!) { order(id: $id) { ${ORDER} } }`, { id }, bearer)).order as PaidOrder;

async function sandboxCall(path: string, body: unknown = {}): Promise<any> {
  const res = await fetch(`${sandbox.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return res.json();
}

/** Runs payment-reconciliation now, through the jobs API, and waits for that run to finish. */
async function reconcile(): Promise<void> {
  const done = new Promise<void>((resolve, reject) => {
    app.scheduler.once('success:payment-reconciliation', () => resolve());
    app.scheduler.once('fail:payment-reconciliation', (err: Error) => reject(err));
  });
  await app.services.jobs.run('payment-reconciliation');
  await done;
}

const ledgerOf = async (orderId: string) =>
  withDb(db.url, async (c) => (await c.query('select entry, amount from wallet_ledger where order_id = $1 order by id', [orderId])).rows);

const paymentsOf = async (orderNo: string) =>
  withDb(db.url, async (c) => (await c.query('select * from payments where order_no = $1 order by id', [orderNo])).rows);

test('a WECHAT order answers how to pay; paid at the provider, the callback makes it PAID, heard live, once', async () => {
  const buyer = token('pay-alice');
  const created = await order(buyer, 'WECHAT');
  expect(created.status).toBe('PENDING');
  expect(created.payment).toMatchObject({ provider: 'sandbox', codeUrl: expect.stringMatching(/^weixin:\/\//) });
  expect(sandbox.trades.get(created.orderNo)).toMatchObject({ amount: 1000, state: 'NOTPAY' });

  const client = wsClient(app, buyer);
  const updates = await subscribed(app, client, `subscription($id: ID!) { orderUpdated(orderId: $id) { status paidVia } }`, { id: created.id }, `ORDER_UPDATED:${created.id}`);
  const paid = await sandboxCall(`/sandbox/trades/${created.orderNo}/pay`);
  expect(paid.callback.status).toBe(204);
  await updates.waitFor((s) => s.events.length >= 1, 5_000, 'orderUpdated');
  expect(updates.events[0].orderUpdated).toEqual({ status: 'PAID', paidVia: 'CALLBACK' });

  // The same notification re-signed (WeChat's retry) is answered 204 and changes nothing; the same
  // delivery replayed byte for byte, a probe, a stale and a forged one are refused.
  expect((await sandboxCall(`/sandbox/trades/${created.orderNo}/callbacks/duplicate`)).status).toBe(204);
  for (const kind of ['replay', 'probe', 'stale', 'forged']) {
    const refused = await sandboxCall(`/sandbox/trades/${created.orderNo}/callbacks/${kind}`);
    expect(refused.status).toBe(401);
    expect(JSON.parse(refused.body)).toMatchObject({ code: 'FAIL' });
  }
  expect(log.lines.filter((l) => l.msg === 'payment callback refused').length).toBeGreaterThanOrEqual(4);

  const payments = await paymentsOf(created.orderNo);
  expect(payments).toHaveLength(1);
  expect(payments[0]).toMatchObject({ provider: 'sandbox', amount: 1000, source: 'CALLBACK', needs_refund: false });
  expect(await read(created.id)).toMatchObject({ status: 'PAID', paidVia: 'CALLBACK', expiresAt: null });
  await sleep(200); // room for a second update the refused callbacks must not cause
  expect(updates.events).toHaveLength(1);
  await client.dispose();

  // The owner sees the payment; a stranger sees none of it; an admin sees it.
  const own = (await ok(app, PAYMENTS, { f: { orderId: created.id } }, buyer)).payments.edges;
  expect(own.map((e: any) => e.node)).toEqual([expect.objectContaining({ orderNo: created.orderNo, source: 'CALLBACK', needsRefund: false })]);
  const stranger = await gql(app, PAYMENTS, { f: { orderId: created.id } }, token('pay-mallory'));
  expect(stranger.errors?.[0].extensions?.code).toBe('FORBIDDEN');
  expect((await ok(app, PAYMENTS, {}, token('pay-mallory'))).payments.edges).toEqual([]);
  expect((await ok(app, PAYMENTS, { f: { orderId: created.id } }, ADMIN)).payments.edges).toHaveLength(1);
});

test('a MIXED order freezes its wallet part; paying the rest online debits it', async () => {
  const buyer = token('pay-bob');
  await credit(app, 'pay-bob', 500);
  const created = await order(buyer, 'MIXED', 300);
  expect(await wallet(app, buyer)).toEqual({ balance: 200, frozen: 300 });
  expect(sandbox.trades.get(created.orderNo)!.amount).toBe(700);
  await sandboxCall(`/sandbox/trades/${created.orderNo}/pay`);
  expect(await read(created.id)).toMatchObject({ status: 'PAID', paidVia: 'CALLBACK' });
  expect(await wallet(app, buyer)).toEqual({ balance: 200, frozen: 0 });
  expect(await ledgerOf(created.id)).toEqual([
    { entry: 'FREEZE', amount: 300 },
    { entry: 'DEBIT', amount: 300 },
  ]);
});

test('reconciliation: a lost callback is repaired (COMPENSATE); unpaid past 15 minutes and closed there expire here', async () => {
  const buyer = token('pay-carol');
  const lost = await order(buyer, 'WECHAT');
  const unpaid = await order(buyer, 'ALIPAY'); // no Alipay configured: the sandbox serves it
  const closed = await order(buyer, 'WECHAT');
  const young = await order(buyer, 'WECHAT');
  expect((await sandboxCall(`/sandbox/trades/${lost.orderNo}/pay`, { callback: 'lose' })).callback).toBeNull();
  await sandboxCall(`/sandbox/trades/${closed.orderNo}/close`);

  // Under 5 minutes old: reconciliation leaves every order alone.
  await reconcile();
  expect((await read(lost.id)).status).toBe('PENDING');

  clock.advance(6);
  const late = await order(buyer, 'WECHAT'); // created "now": younger than the threshold
  await reconcile();
  expect(await read(lost.id)).toMatchObject({ status: 'PAID', paidVia: 'COMPENSATE' });
  expect((await paymentsOf(lost.orderNo))[0]).toMatchObject({ source: 'COMPENSATE', amount: 1000, needs_refund: false });
  expect(await read(closed.id)).toMatchObject({ status: 'EXPIRED', cancelReason: expect.stringMatching(/^Closed at sandbox/) });
  expect((await read(unpaid.id)).status).toBe('PENDING'); // unpaid, but not yet 15 minutes
  expect((await read(late.id)).status).toBe('PENDING');

  clock.advance(10); // 16 minutes after the first orders
  await reconcile();
  expect(await read(unpaid.id)).toMatchObject({ status: 'EXPIRED', cancelReason: expect.stringMatching(/within 15 minutes: closed there/) });
  expect(sandbox.trades.get(unpaid.orderNo)!.state).toBe('CLOSED');
  expect(await read(young.id)).toMatchObject({ status: 'EXPIRED' });
  expect((await read(late.id)).status).toBe('PENDING'); // 10 minutes old: checked, unpaid, left
  const summary = log.lines.filter((l) => l.msg === 'payment reconciliation finished').at(-1)!;
  expect(summary).toMatchObject({ totalChecked: 3, synced: 0, closed: 2, errors: 0 });

  // A lost callback arriving after all (WeChat's retry): recognised by its transaction, nothing changes.
  expect((await sandboxCall(`/sandbox/trades/${lost.orderNo}/callbacks/duplicate`)).status).toBe(204);
  expect(await paymentsOf(lost.orderNo)).toHaveLength(1);
});

test('a payment for an expired order or for the wrong amount is kept for a refund, announced and listed', async () => {
  const buyer = token('pay-dave');
  const admin = wsClient(app, ADMIN);
  const refunds = await subscribed(app, admin, 'subscription { paymentNeedsRefund { orderNo amount needsRefund refundReason source } }', {}, 'PAYMENT_NEEDS_REFUND');
  const expired = await order(buyer, 'WECHAT');
  await app.services.tx.run((uow) => app.services.orderSettlement.expireNow(uow, expired.id, 'test: expired'));
  await sandboxCall(`/sandbox/trades/${expired.orderNo}/pay`, { late: true });
  const short = await order(buyer, 'WECHAT');
  await sandboxCall(`/sandbox/trades/${short.orderNo}/pay`, { amount: 1 });

  await refunds.waitFor((s) => s.events.length >= 2, 5_000, 'two refund announcements');
  expect(refunds.events.map((e) => e.paymentNeedsRefund)).toEqual([
    { orderNo: expired.orderNo, amount: 1000, needsRefund: true, refundReason: `order ${expired.orderNo} is EXPIRED`, source: 'CALLBACK' },
    { orderNo: short.orderNo, amount: 1, needsRefund: true, refundReason: 'paid 1 cents, the order asks 1000', source: 'CALLBACK' },
  ]);
  expect((await read(expired.id)).status).toBe('EXPIRED');
  expect((await read(short.id)).status).toBe('PENDING');
  const listed = (await ok(app, PAYMENTS, { f: { needsRefund: true } }, ADMIN)).payments.edges.map((e: any) => e.node.orderNo);
  expect(listed).toEqual(expect.arrayContaining([expired.orderNo, short.orderNo]));
  // Users cannot hear refunds.
  const userSocket = wsClient(app, buyer);
  const denied = await new Promise<unknown>((resolve) => {
    userSocket.subscribe({ query: 'subscription { paymentNeedsRefund { id } }' }, { next: (v) => resolve(v.errors), error: resolve, complete: () => resolve(null) });
  });
  expect(JSON.stringify(denied)).toContain('FORBIDDEN');
  await userSocket.dispose();
  await admin.dispose();
});

test('a callback and a reconciliation racing on one order: PAID once, one payment, money right', async () => {
  const buyer = token('pay-erin');
  await credit(app, 'pay-erin', 1000);
  const orders = await Promise.all(Array.from({ length: 8 }, () => order(buyer, 'MIXED', 100)));
  for (const o of orders) await sandboxCall(`/sandbox/trades/${o.orderNo}/pay`, { callback: 'lose' });
  clock.advance(6);
  await Promise.all([reconcile(), ...orders.map((o) => sandboxCall(`/sandbox/trades/${o.orderNo}/callbacks/duplicate`))]);
  for (const o of orders) {
    const now = await read(o.id);
    expect(now.status).toBe('PAID');
    expect(['CALLBACK', 'COMPENSATE']).toContain(now.paidVia);
    const rows = await paymentsOf(o.orderNo);
    expect(rows).toHaveLength(1);
    expect(rows[0].source).toBe(now.paidVia);
  }
  expect(await wallet(app, buyer)).toEqual({ balance: 200, frozen: 0 });
});

test('a callback racing a cancel and an expiry on one order: one outcome, and the money is where it says', async () => {
  const buyer = token('pay-gina');
  await credit(app, 'pay-gina', 2000);
  const orders = await Promise.all(Array.from({ length: 10 }, () => order(buyer, 'MIXED', 150)));
  for (const o of orders) await sandboxCall(`/sandbox/trades/${o.orderNo}/pay`, { callback: 'lose' });
  await Promise.all(
    orders.flatMap((o) => [
      sandboxCall(`/sandbox/trades/${o.orderNo}/callbacks/duplicate`),
      gql(app, `mutation($id: ID!) { cancelOrder(orderId: $id) { status } }`, { id: o.id }, buyer),
      app.services.tx.run((uow) => app.services.orderSettlement.expireNow(uow, o.id, 'test: racing expiry')).catch(() => null),
    ]),
  );
  let paid = 0;
  for (const o of orders) {
    const now = await read(o.id);
    const rows = await paymentsOf(o.orderNo);
    expect(rows).toHaveLength(1); // the money the provider took is recorded once, whatever won
    if (now.status === 'PAID') {
      paid++;
      expect(rows[0]).toMatchObject({ needs_refund: false, source: 'CALLBACK' });
    } else {
      expect(['CANCELLED', 'EXPIRED']).toContain(now.status);
      expect(rows[0]).toMatchObject({ needs_refund: true, refund_reason: `order ${o.orderNo} is ${now.status}` });
    }
  }
  // Paid orders spent their wallet part; closed ones gave it back.
  expect(await wallet(app, buyer)).toEqual({ balance: 2000 - paid * 150, frozen: 0 });
});

test('payments recorded together come out as if recorded one after the other', async () => {
  const buyer = token('pay-hana');
  await credit(app, 'pay-hana', 1000);
  const [a, b, c, d] = [await order(buyer, 'WECHAT'), await order(buyer, 'WECHAT'), await order(buyer, 'MIXED', 200), await order(buyer, 'WECHAT')];
  const paidAt = new Date();
  const item = (o: { orderNo: string }, transactionId: string, amount: number, notificationId?: string, source: 'CALLBACK' | 'COMPENSATE' = 'CALLBACK') => ({
    provider: 'sandbox' as const,
    source,
    paid: { orderNo: o.orderNo, transactionId, amount, paidAt, ...(notificationId ? { notificationId } : {}) },
  });
  // One transaction, as the recorder makes for payments arriving together.
  const outcomes = await app.services.tx.run((uow) =>
    app.services.payments.recordMany(uow, [
      item(a, 'hana-a1', 1000, 'hana-n1'),
      item(a, 'hana-a1', 1000, 'hana-n1'), // the same notification again
      item(b, 'hana-b1', 1000, 'hana-n2'),
      item(b, 'hana-b1', 1000, 'hana-n3'), // the same transaction, notified again
      item(c, 'hana-c1', 800, 'hana-n4'),
      item(c, 'hana-c2', 800, 'hana-n5'), // a second payment of the same order
      item(d, 'hana-d1', 1, 'hana-n6'), // the wrong amount
      item({ orderNo: 'NO-SUCH-ORDER' }, 'hana-x1', 500, 'hana-n7'),
      item(d, 'hana-d2', 1000, undefined, 'COMPENSATE'), // reconciliation found the right payment
    ]),
  );
  expect(outcomes.map((o) => (o.outcome === 'DUPLICATE' ? o.outcome : `${o.outcome} ${o.payment.refundReason ?? ''}`.trim()))).toEqual([
    'PAID',
    'DUPLICATE',
    'PAID',
    'DUPLICATE',
    'PAID',
    `NEEDS_REFUND order ${c.orderNo} is PAID`,
    'NEEDS_REFUND paid 1 cents, the order asks 1000',
    'NEEDS_REFUND no order has number NO-SUCH-ORDER',
    'PAID',
  ]);
  expect(await read(a.id)).toMatchObject({ status: 'PAID', paidVia: 'CALLBACK' });
  expect(await read(b.id)).toMatchObject({ status: 'PAID', paidVia: 'CALLBACK' });
  expect(await read(c.id)).toMatchObject({ status: 'PAID', paidVia: 'CALLBACK' });
  expect(await read(d.id)).toMatchObject({ status: 'PAID', paidVia: 'COMPENSATE' });
  expect((await paymentsOf(a.orderNo)).map((p) => p.transaction_id)).toEqual(['hana-a1']);
  expect((await paymentsOf(b.orderNo)).map((p) => p.transaction_id)).toEqual(['hana-b1']);
  expect((await paymentsOf(c.orderNo)).map((p) => [p.transaction_id, p.needs_refund])).toEqual([
    ['hana-c1', false],
    ['hana-c2', true],
  ]);
  expect(await wallet(app, buyer)).toEqual({ balance: 800, frozen: 0 });
  expect(await ledgerOf(c.id)).toEqual([
    { entry: 'FREEZE', amount: 200 },
    { entry: 'DEBIT', amount: 200 },
  ]);
});

test('a payment that cannot be recorded fails alone; the others of its group are recorded', async () => {
  const buyer = token('pay-ivan');
  const orders = [await order(buyer, 'WECHAT'), await order(buyer, 'WECHAT'), await order(buyer, 'WECHAT')];
  // One transaction at a time: the first payment goes alone, the rest wait and go together.
  const recorder = new PaymentRecorder(app.services.tx, app.services.payments, app.services.log, { maxGroup: 100, inFlight: 1 });
  const paidAt = new Date();
  const results = await Promise.allSettled([
    ...orders.map((o, i) => recorder.record({ provider: 'sandbox', source: 'CALLBACK', paid: { orderNo: o.orderNo, transactionId: `ivan-${i}`, amount: 1000, paidAt, notificationId: `ivan-n${i}` } })),
    // More cents than a payment row holds: its insert fails, and with it the group's transaction.
    recorder.record({ provider: 'sandbox', source: 'CALLBACK', paid: { orderNo: 'NO-SUCH-ORDER', transactionId: 'ivan-huge', amount: 3_000_000_000, paidAt, notificationId: 'ivan-nx' } }),
  ]);
  expect(results.map((r) => (r.status === 'fulfilled' ? r.value.outcome.outcome : 'rejected'))).toEqual(['PAID', 'PAID', 'PAID', 'rejected']);
  expect(log.lines.some((l) => l.msg === 'a group of payments could not be recorded together; recording them one by one' && l.payments === 3)).toBe(true);
  for (const o of orders) expect(await read(o.id)).toMatchObject({ status: 'PAID', paidVia: 'CALLBACK' });
  const stray = await withDb(db.url, async (conn) => (await conn.query(`select count(*)::int as n from payment_notifications where notification_id = 'ivan-nx'`)).rows[0].n);
  expect(stray).toBe(0); // rolled back with its payment: the provider's retry will be fresh
});

test('a provider down for a whole run fails the run (retried); an unreachable provider at checkout closes the order', async () => {
  const buyer = token('pay-frank');
  await credit(app, 'pay-frank', 500);
  const pending = await order(buyer, 'WECHAT');
  clock.advance(6);
  sandbox.faults.systemError = true;
  await expect(reconcile()).rejects.toThrow(/payment reconciliation failed: (\d+) of \1 provider calls failed/);
  const info = await app.services.jobs.get('payment-reconciliation');
  expect(info).toMatchObject({ failCount: 1, lastError: expect.stringMatching(/failed/) });
  expect((await read(pending.id)).status).toBe('PENDING');

  // Checkout while the provider answers SYSTEMERROR: the order is closed at once, its wallet part given back.
  const res = await gql(app, CREATE, { input: { productId: product.id, quantity: 1, paymentMethod: 'MIXED', walletAmount: 200 } }, buyer);
  expect(res.errors?.[0].extensions?.code).toBe('SERVICE_UNAVAILABLE');
  expect(await wallet(app, buyer)).toEqual({ balance: 500, frozen: 0 });
  sandbox.faults.systemError = false;

  await reconcile();
  expect((await app.services.jobs.get('payment-reconciliation')).failCount).toBe(0);
});

test('a callback to an unknown provider is 404; a malformed one is refused', async () => {
  const unknown = await fetch(`${app.url.replace('/graphql', '')}/api/payments/paypal/notify`, { method: 'POST', body: '{}' });
  expect(unknown.status).toBe(404);
  const malformed = await fetch(`${app.url.replace('/graphql', '')}/api/payments/sandbox/notify`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"not":"signed"}',
  });
  expect(malformed.status).toBe(401);
  expect(await malformed.json()).toMatchObject({ code: 'FAIL' });
  await waitUntil(() => log.lines.some((l) => l.msg === 'payment callback refused' && l.provider === 'sandbox'), 2_000, 'the refusal logged');
  const huge = await fetch(`${app.url.replace('/graphql', '')}/api/payments/sandbox/notify`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: 'x'.repeat(200_000),
  });
  expect(huge.status).toBe(413);
  expect(await huge.json()).toMatchObject({ code: 'FAIL' });
  const badFilter = await gql(app, PAYMENTS, { f: { provider: 'paypal' } }, ADMIN);
  expect(badFilter.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
});

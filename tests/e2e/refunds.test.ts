import type { App } from '../../src/app.js';
import type { SandboxHandle } from '../../src/payments/sandbox/server.js';
import { gql, LogCapture, paymentSandbox, setUp, subscribed, type TestDatabase, token, waitUntil, wsClient } from '../support/harness.js';
import { ADMIN, createProduct, credit, invariants, ok, wallet, withDb } from '../support/orders.js';

/**
 * Refunds end to end: a real server, the sandbox over real HTTP (WeChat Pay v3's refund routes,
 * signed and encrypted refund notifications to /api/payments/sandbox/refund-notify), graphql-ws
 * listeners. Each refund's provider side is set up through the sandbox's refund plan for its trade;
 * refund-reconciliation is run by the test (its own interval is a day). After each test the money
 * invariants hold: wallets and ledger, orders and their refunds, payments and what was given back.
 */
let db: TestDatabase;
let app: App;
let sandbox: SandboxHandle;
const log = new LogCapture();

const REFUND = 'id outRefundNo amount walletAmount status reason failureReason createdAt finishedAt payment { id orderNo amount needsRefund } order { id status }';
const REFUND_ORDER = `mutation($id: ID!, $r: String!) { refundOrder(orderId: $id, reason: $r) { ${REFUND} } }`;
const REFUND_PAYMENT = `mutation($id: ID!, $r: String!) { refundPayment(paymentId: $id, reason: $r) { ${REFUND} } }`;
const REFUNDS = `query($f: RefundFilter, $first: Int) { refunds(filter: $f, first: $first) { edges { node { ${REFUND} } } } }`;
const ORDER = 'id orderNo status walletAmount amount';

interface RefundResult {
  id: string;
  outRefundNo: string | null;
  amount: number;
  walletAmount: number;
  status: string;
  failureReason: string | null;
  finishedAt: string | null;
  payment: { id: string; orderNo: string; amount: number } | null;
  order: { id: string; status: string } | null;
}

let goods: { id: string; price: number };

beforeAll(async () => {
  sandbox = await paymentSandbox();
  // Reconciliations run when a test says; their periodic runs at start-up find nothing to do.
  ({ db, app } = await setUp('refunds', { RECONCILE_INTERVAL_MINUTES: '1440', REFUND_RECONCILE_INTERVAL_MINUTES: '1440' }, { log }));
  goods = await createProduct(app, { name: 'Tea', price: 1000, stock: 100 });
});

afterEach(async () => {
  sandbox.faults.systemError = false;
  const { violations } = await invariants(db.url);
  expect(violations).toEqual([]);
});

async function sandboxCall(path: string, body: unknown = {}): Promise<any> {
  const res = await fetch(`${sandbox.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return res.json();
}

/** An order paid online through the sandbox (its callback delivered), as a buyer would. */
async function paidOnline(buyer: string, paymentMethod = 'WECHAT', walletAmount?: number, productId = goods.id) {
  const created = (await ok(app, `mutation($i: CreateOrderInput!) { createOrder(input: $i) { ${ORDER} } }`, { i: { productId, quantity: 1, paymentMethod, walletAmount } }, buyer)).createOrder;
  const paid = await sandboxCall(`/sandbox/trades/${created.orderNo}/pay`);
  expect(paid.callback.status).toBe(204);
  return created as { id: string; orderNo: string; walletAmount: number; amount: number };
}

async function paidWithWallet(buyer: string, productId = goods.id) {
  const created = (await ok(app, `mutation($p: ID!) { createOrder(input: { productId: $p, quantity: 1, paymentMethod: WALLET }) { id } }`, { p: productId }, buyer)).createOrder;
  await ok(app, 'mutation($id: ID!) { payOrderWithWallet(orderId: $id) { status } }', { id: created.id }, buyer);
  return created as { id: string };
}

const refundOrder = async (orderId: string, reason = 'customer asked') => (await ok(app, REFUND_ORDER, { id: orderId, r: reason }, ADMIN)).refundOrder as RefundResult;
const orderStatus = async (id: string) => (await ok(app, 'query($id: ID!) { order(id: $id) { status } }', { id }, ADMIN)).order.status as string;
const refundById = async (id: string) =>
  ((await ok(app, REFUNDS, { first: 100 }, ADMIN)).refunds.edges.map((e: any) => e.node) as RefundResult[]).find((r) => r.id === id)!;
const stockOf = async (id: string) => (await ok(app, 'query($id: ID!) { product(id: $id) { stock } }', { id }, ADMIN)).product.stock as number;
const ledgerOf = async (orderId: string) =>
  withDb(db.url, async (c) => (await c.query('select entry, amount from wallet_ledger where order_id = $1 order by id', [orderId])).rows);
const sandboxRefundsOf = (orderNo: string) => [...sandbox.refunds.values()].filter((r) => r.orderNo === orderNo);
const codeOf = (res: { errors?: Array<{ extensions?: { code?: string } }> }) => res.errors?.[0]?.extensions?.code;

/** Runs refund-reconciliation now, through the jobs API, and waits for that run's end. */
async function reconcileRefunds(): Promise<Record<string, unknown>> {
  const done = new Promise<void>((resolve, reject) => {
    app.scheduler.once('success:refund-reconciliation', () => resolve());
    app.scheduler.once('fail:refund-reconciliation', (err: Error) => reject(err));
  });
  await app.services.jobs.run('refund-reconciliation');
  await done;
  return log.lines.filter((l) => l.msg === 'refund reconciliation finished').at(-1)!;
}

test('a refund confirmed by its notification: PENDING, then SUCCEEDED with the order REFUNDED, heard by admins and the owner, audited', async () => {
  const buyer = token('refund-ann');
  const order = await paidOnline(buyer);
  await sandboxCall(`/sandbox/trades/${order.orderNo}/refund-plan`, { status: 'PROCESSING' });
  const stock = await stockOf(goods.id);
  const admin = wsClient(app, ADMIN);
  const owner = wsClient(app, buyer);
  const heard = await subscribed(app, admin, `subscription { refundUpdated { id status outRefundNo } }`, {}, 'REFUND_UPDATED');
  const updates = await subscribed(app, owner, 'subscription($id: ID!) { orderUpdated(orderId: $id) { status } }', { id: order.id }, `ORDER_UPDATED:${order.id}`);

  const refund = await refundOrder(order.id, 'wrong size');
  expect(refund).toMatchObject({ status: 'PENDING', amount: 1000, walletAmount: 0, finishedAt: null, order: { id: order.id, status: 'PAID' } });
  expect(refund.outRefundNo).toBe(`R${refund.payment!.id}-1`);
  expect(sandboxRefundsOf(order.orderNo)).toMatchObject([{ outRefundNo: refund.outRefundNo, amount: 1000, status: 'PROCESSING', reason: 'wrong size' }]);

  // The provider finishes it and says so: the notification settles it.
  const finished = await sandboxCall(`/sandbox/refunds/${refund.outRefundNo}/finish`, { status: 'SUCCESS' });
  expect(finished.callback.status).toBe(204);
  expect(await refundById(refund.id)).toMatchObject({ status: 'SUCCEEDED', finishedAt: expect.any(String), order: { status: 'REFUNDED' } });
  await updates.waitFor((s) => s.events.some((e) => e.orderUpdated.status === 'REFUNDED'), 5_000, 'orderUpdated REFUNDED');
  await heard.waitFor((s) => s.events.filter((e) => e.refundUpdated.id === refund.id).length >= 2, 5_000, 'refundUpdated PENDING then SUCCEEDED');
  expect(heard.events.filter((e) => e.refundUpdated.id === refund.id).map((e) => e.refundUpdated.status)).toEqual(['PENDING', 'SUCCEEDED']);
  expect(await stockOf(goods.id)).toBe(stock + 1);

  // WeChat's retry of the same notification: accepted, nothing changes; the same delivery replayed is refused.
  expect((await sandboxCall(`/sandbox/refunds/${refund.outRefundNo}/callbacks/duplicate`)).status).toBe(204);
  expect((await sandboxCall(`/sandbox/refunds/${refund.outRefundNo}/callbacks/replay`)).status).toBe(401);
  expect(await stockOf(goods.id)).toBe(stock + 1);
  // Refunded once: a second refundOrder of it is CONFLICT.
  expect(codeOf(await gql(app, REFUND_ORDER, { id: order.id, r: 'again' }, ADMIN))).toBe('CONFLICT');

  const audit = (await ok(app, '{ auditLog(first: 20) { edges { node { action target details actorId } } } }', {}, ADMIN)).auditLog.edges.map((e: any) => e.node);
  const entry = audit.find((a: any) => a.action === 'REFUND_ORDER' && a.target === order.id);
  expect(JSON.parse(entry.details)).toMatchObject({ orderId: order.id, reason: 'wrong size', result: { id: refund.id, status: 'PENDING', outRefundNo: refund.outRefundNo } });
  await admin.dispose();
  await owner.dispose();
});

test('a lost notification: refund-reconciliation asks the provider and settles it; a refund the provider never received is asked for again', async () => {
  const buyer = token('refund-ben');
  await credit(app, 'refund-ben', 1000);
  const mixed = await paidOnline(buyer, 'MIXED', 300);
  expect(await wallet(app, buyer)).toEqual({ balance: 700, frozen: 0 });
  await sandboxCall(`/sandbox/trades/${mixed.orderNo}/refund-plan`, { status: 'PROCESSING' });
  const lost = await refundOrder(mixed.id);
  expect(lost).toMatchObject({ status: 'PENDING', amount: 700, walletAmount: 300 });
  expect((await sandboxCall(`/sandbox/refunds/${lost.outRefundNo}/finish`, { status: 'SUCCESS', callback: 'lose' })).callback).toBeNull();

  // A second refund whose request never reached the provider (it answered SYSTEMERROR): PENDING, unknown there.
  const unsent = await paidOnline(buyer);
  // Its notification lost too, once it is made: only the reconciliation can settle it.
  await sandboxCall(`/sandbox/trades/${unsent.orderNo}/refund-plan`, { status: 'SUCCESS', callback: 'lose' });
  sandbox.faults.systemError = true;
  const pending = await refundOrder(unsent.id);
  sandbox.faults.systemError = false;
  expect(pending.status).toBe('PENDING');
  expect(sandboxRefundsOf(unsent.orderNo)).toEqual([]);
  expect(log.lines.some((l) => l.msg === 'refund not confirmed by its provider; refund-reconciliation will ask' && l.refundId === pending.id)).toBe(true);

  expect(await reconcileRefunds()).toMatchObject({ totalChecked: 2, succeeded: 2, failed: 0, errors: 0 });
  expect(await refundById(lost.id)).toMatchObject({ status: 'SUCCEEDED', order: { status: 'REFUNDED' } });
  expect(await refundById(pending.id)).toMatchObject({ status: 'SUCCEEDED', order: { status: 'REFUNDED' } });
  expect(sandboxRefundsOf(unsent.orderNo)).toMatchObject([{ outRefundNo: pending.outRefundNo, status: 'SUCCESS' }]);
  // The MIXED order's wallet part is back in the wallet, as one REFUND line.
  expect(await wallet(app, buyer)).toEqual({ balance: 1000, frozen: 0 });
  expect(await ledgerOf(mixed.id)).toEqual([
    { entry: 'FREEZE', amount: 300 },
    { entry: 'DEBIT', amount: 300 },
    { entry: 'REFUND', amount: 300 },
  ]);
  // Nothing left: the next run checks nothing.
  expect(await reconcileRefunds()).toMatchObject({ totalChecked: 0 });
});

test('refund-reconciliation: a refund that cannot be settled fails alone (in a group or not); a later run settles it', async () => {
  const orders = [await paidOnline(token('refund-ida')), await paidOnline(token('refund-ida')), await paidOnline(token('refund-ida'))];
  const refunds: RefundResult[] = [];
  for (const o of orders) {
    await sandboxCall(`/sandbox/trades/${o.orderNo}/refund-plan`, { status: 'PROCESSING' });
    const r = await refundOrder(o.id);
    await sandboxCall(`/sandbox/refunds/${r.outRefundNo}/finish`, { status: 'SUCCESS', callback: 'lose' });
    refunds.push(r);
  }
  // One order damaged behind the server's back: it can no longer become REFUNDED.
  await withDb(db.url, (c) => c.query(`update orders set status = 'EXPIRED' where id = $1`, [orders[1].id]));
  expect(await reconcileRefunds()).toMatchObject({ totalChecked: 3, succeeded: 2, errors: 1 });
  expect((await Promise.all(refunds.map((r) => refundById(r.id)))).map((r) => r.status)).toEqual(['SUCCEEDED', 'PENDING', 'SUCCEEDED']);
  await withDb(db.url, (c) => c.query(`update orders set status = 'PAID' where id = $1`, [orders[1].id]));
  expect(await reconcileRefunds()).toMatchObject({ totalChecked: 1, succeeded: 1, errors: 0 });
  expect(await orderStatus(orders[1].id)).toBe('REFUNDED');
});

test('a forged, stale or probing refund notification is refused and changes nothing; the genuine one is applied', async () => {
  const order = await paidOnline(token('refund-cat'));
  await sandboxCall(`/sandbox/trades/${order.orderNo}/refund-plan`, { status: 'PROCESSING' });
  const refund = await refundOrder(order.id);
  await sandboxCall(`/sandbox/refunds/${refund.outRefundNo}/finish`, { status: 'SUCCESS', callback: 'lose' });
  for (const kind of ['forged', 'stale', 'probe']) {
    const refused = await sandboxCall(`/sandbox/refunds/${refund.outRefundNo}/callbacks/${kind}`);
    expect({ kind, status: refused.status, body: JSON.parse(refused.body) }).toEqual({ kind, status: 401, body: { code: 'FAIL', message: expect.any(String) } });
  }
  const base = app.url.replace('/graphql', '');
  const unsigned = await fetch(`${base}/api/payments/sandbox/refund-notify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"id":"x"}' });
  expect(unsigned.status).toBe(401);
  expect(log.lines.filter((l) => l.msg === 'refund notification refused').length).toBeGreaterThanOrEqual(4);
  expect(await refundById(refund.id)).toMatchObject({ status: 'PENDING', order: { status: 'PAID' } });
  // The notification as the provider signed it (delivered late) settles it.
  expect((await sandboxCall(`/sandbox/refunds/${refund.outRefundNo}/callbacks/replay`)).status).toBe(204);
  expect(await refundById(refund.id)).toMatchObject({ status: 'SUCCEEDED', order: { status: 'REFUNDED' } });
  // Providers without refund notifications, and unknown names, have no such route.
  expect((await fetch(`${base}/api/payments/paypal/refund-notify`, { method: 'POST', body: '{}' })).status).toBe(404);
});

test('a refund the provider ends ABNORMAL or CLOSED is FAILED and changes nothing; a new attempt, a new outRefundNo, succeeds', async () => {
  const buyer = token('refund-dan');
  await credit(app, 'refund-dan', 500);
  const order = await paidOnline(buyer, 'MIXED', 200);
  const stock = await stockOf(goods.id);
  await sandboxCall(`/sandbox/trades/${order.orderNo}/refund-plan`, { status: 'ABNORMAL' });
  const first = await refundOrder(order.id);
  expect(first).toMatchObject({ status: 'FAILED', failureReason: 'ABNORMAL', finishedAt: expect.any(String), order: { status: 'PAID' } });
  expect(first.outRefundNo).toMatch(/-1$/);

  await sandboxCall(`/sandbox/trades/${order.orderNo}/refund-plan`, { status: 'PROCESSING' });
  const second = await refundOrder(order.id);
  expect(second.outRefundNo).toBe(first.outRefundNo!.replace(/-1$/, '-2'));
  expect((await sandboxCall(`/sandbox/refunds/${second.outRefundNo}/finish`, { status: 'CLOSED' })).callback.status).toBe(204);
  expect(await refundById(second.id)).toMatchObject({ status: 'FAILED', failureReason: 'CLOSED', order: { status: 'PAID' } });
  expect(await wallet(app, buyer)).toEqual({ balance: 300, frozen: 0 });
  expect(await stockOf(goods.id)).toBe(stock);

  await sandboxCall(`/sandbox/trades/${order.orderNo}/refund-plan`, { status: 'SUCCESS' });
  const third = await refundOrder(order.id);
  expect(third).toMatchObject({ status: 'SUCCEEDED', outRefundNo: first.outRefundNo!.replace(/-1$/, '-3'), order: { status: 'REFUNDED' } });
  expect(await wallet(app, buyer)).toEqual({ balance: 500, frozen: 0 });
  expect(await stockOf(goods.id)).toBe(stock + 1);
  const failed = (await ok(app, REFUNDS, { f: { status: 'FAILED' }, first: 100 }, ADMIN)).refunds.edges.map((e: any) => e.node.id);
  expect(failed).toEqual(expect.arrayContaining([first.id, second.id]));
  expect(failed).not.toContain(third.id);
});

test('refundOrder racing itself refunds once, at the provider and in the wallet', async () => {
  const buyer = token('refund-eve');
  await credit(app, 'refund-eve', 1000);
  const online = await paidOnline(buyer);
  const byWallet = await paidWithWallet(buyer);
  for (const order of [online, byWallet]) {
    const results = await Promise.all(Array.from({ length: 6 }, () => gql(app, REFUND_ORDER, { id: order.id, r: 'race' }, ADMIN)));
    const won = results.filter((r) => !r.errors);
    expect(won).toHaveLength(1);
    expect(results.filter((r) => r.errors).map(codeOf)).toEqual(Array(5).fill('CONFLICT'));
    expect(won[0].data!.refundOrder.status).toBe('SUCCEEDED');
    expect(await orderStatus(order.id)).toBe('REFUNDED');
  }
  expect(sandboxRefundsOf(online.orderNo)).toHaveLength(1);
  expect(await wallet(app, buyer)).toEqual({ balance: 1000, frozen: 0 });
});

test('WALLET and OFFLINE orders are refunded at once: SUCCEEDED, no provider, the wallet part back; admin orders and cancels are audited', async () => {
  const buyer = token('refund-fay');
  await credit(app, 'refund-fay', 3000);
  const own = await paidWithWallet(buyer);
  const refund = await refundOrder(own.id);
  expect(refund).toMatchObject({ status: 'SUCCEEDED', outRefundNo: null, payment: null, amount: 0, walletAmount: 1000, finishedAt: expect.any(String), order: { status: 'REFUNDED' } });
  expect(await wallet(app, buyer)).toEqual({ balance: 3000, frozen: 0 });
  expect(await ledgerOf(own.id)).toEqual([
    { entry: 'FREEZE', amount: 1000 },
    { entry: 'DEBIT', amount: 1000 },
    { entry: 'REFUND', amount: 1000 },
  ]);

  const adminMade = (await ok(app, `mutation($i: AdminCreateOrderInput!) { adminCreateOrder(input: $i) { ${ORDER} } }`, { i: { userId: 'refund-fay', productId: goods.id, quantity: 2, paymentMethod: 'WALLET' } }, ADMIN)).adminCreateOrder;
  expect(await wallet(app, buyer)).toEqual({ balance: 1000, frozen: 0 });
  expect(await refundOrder(adminMade.id)).toMatchObject({ status: 'SUCCEEDED', walletAmount: 2000 });
  expect(await wallet(app, buyer)).toEqual({ balance: 3000, frozen: 0 });
  const offline = (await ok(app, `mutation($i: AdminCreateOrderInput!) { adminCreateOrder(input: $i) { ${ORDER} } }`, { i: { userId: 'refund-fay', productId: goods.id, quantity: 1, paymentMethod: 'OFFLINE' } }, ADMIN)).adminCreateOrder;
  expect(await refundOrder(offline.id)).toMatchObject({ status: 'SUCCEEDED', amount: 0, walletAmount: 0, order: { status: 'REFUNDED' } });
  expect(await wallet(app, buyer)).toEqual({ balance: 3000, frozen: 0 });

  // Only PAID orders are refunded; a reason is required.
  const pending = (await ok(app, `mutation($p: ID!) { createOrder(input: { productId: $p, quantity: 1, paymentMethod: WALLET }) { id } }`, { p: goods.id }, buyer)).createOrder;
  expect(codeOf(await gql(app, REFUND_ORDER, { id: pending.id, r: 'too early' }, ADMIN))).toBe('CONFLICT');
  expect(codeOf(await gql(app, REFUND_ORDER, { id: own.id, r: '  ' }, ADMIN))).toBe('BAD_USER_INPUT');
  expect(codeOf(await gql(app, REFUND_ORDER, { id: '999999', r: 'no such' }, ADMIN))).toBe('NOT_FOUND');

  // An admin's cancel is audited with the action; the buyer's own is not.
  await ok(app, 'mutation($id: ID!) { cancelOrder(orderId: $id, reason: "ops") { status } }', { id: pending.id }, ADMIN);
  const second = (await ok(app, `mutation($p: ID!) { createOrder(input: { productId: $p, quantity: 1, paymentMethod: WALLET }) { id } }`, { p: goods.id }, buyer)).createOrder;
  await ok(app, 'mutation($id: ID!) { cancelOrder(orderId: $id) { status } }', { id: second.id }, buyer);
  const audit = (await ok(app, '{ auditLog(first: 50) { edges { node { action target details } } } }', {}, ADMIN)).auditLog.edges.map((e: any) => e.node);
  expect(audit.filter((a: any) => a.action === 'CANCEL_ORDER').map((a: any) => a.target)).toEqual([pending.id]);
  expect(JSON.parse(audit.find((a: any) => a.action === 'CANCEL_ORDER').details)).toMatchObject({ orderId: pending.id, reason: 'ops', result: { status: 'CANCELLED' } });
  const made = audit.filter((a: any) => a.action === 'ADMIN_CREATE_ORDER').map((a: any) => [a.target, JSON.parse(a.details)]);
  expect(made).toEqual(
    expect.arrayContaining([[adminMade.id, expect.objectContaining({ input: expect.objectContaining({ paymentMethod: 'WALLET', quantity: 2 }), result: expect.objectContaining({ status: 'PAID' }) })]]),
  );
  expect(made).toHaveLength(2);
});

test('a VIP_PLAN refund takes the plan\'s days back; the last one lapses the membership through its expiry deadline', async () => {
  const buyer = token('refund-gus');
  await credit(app, 'refund-gus', 1000);
  const plan = await createProduct(app, { name: 'VIP month', price: 100, kind: 'VIP_PLAN', vipDays: 30, vipLevel: 2 });
  const first = await paidWithWallet(buyer, plan.id);
  const second = await paidWithWallet(buyer, plan.id);
  const status = async () => (await ok(app, '{ vipStatus { active expiresAt level } }', {}, buyer)).vipStatus as { active: boolean; expiresAt: string };
  const before = await status();
  const client = wsClient(app, buyer);
  const changes = await subscribed(app, client, 'subscription { vipStatusChanged { userId active expiresAt } }', {}, 'VIP_STATUS_CHANGED');

  await refundOrder(second.id);
  const after = await status();
  expect(after.active).toBe(true);
  expect(Date.parse(before.expiresAt) - Date.parse(after.expiresAt)).toBe(30 * 86_400_000);

  await refundOrder(first.id);
  // Its new expiry has passed: the vip-expiry deadline lapses it, and says so.
  await changes.waitFor((s) => s.events.some((e) => e.vipStatusChanged.active === false), 10_000, 'the membership lapsed');
  expect((await status()).active).toBe(false);
  expect(await wallet(app, buyer)).toEqual({ balance: 1000, frozen: 0 });
  await client.dispose();
});

test('refundPayment gives back money that bought nothing; its order stays as it is; the gauges count what is left', async () => {
  const buyer = token('refund-hal');
  const created = (await ok(app, `mutation($p: ID!) { createOrder(input: { productId: $p, quantity: 1, paymentMethod: WECHAT }) { ${ORDER} } }`, { p: goods.id }, buyer)).createOrder;
  await app.services.tx.run((uow) => app.services.orderSettlement.expireNow(uow, created.id, 'test: expired'));
  await sandboxCall(`/sandbox/trades/${created.orderNo}/pay`, { late: true });
  const payments = 'query($o: ID) { payments(filter: { orderId: $o, needsRefund: true }) { edges { node { id } } } }';
  await waitUntil(async () => (await ok(app, payments, { o: created.id }, ADMIN)).payments.edges.length === 1, 5_000, 'the payment kept for a refund');
  const paymentId = (await ok(app, payments, { o: created.id }, ADMIN)).payments.edges[0].node.id;
  const gauge = async (name: string) => {
    const text = await (await fetch(new URL('/metrics', app.url))).text();
    return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);
  };
  const needing = await gauge('deadline_payments_needing_refund');
  expect(needing).toBeGreaterThanOrEqual(1);

  await sandboxCall(`/sandbox/trades/${created.orderNo}/refund-plan`, { status: 'PROCESSING' });
  const refund = (await ok(app, REFUND_PAYMENT, { id: paymentId, r: 'paid after expiry' }, ADMIN)).refundPayment as RefundResult;
  expect(refund).toMatchObject({ status: 'PENDING', amount: 1000, walletAmount: 0, outRefundNo: `R${paymentId}-1`, payment: { id: paymentId, needsRefund: true }, order: { id: created.id, status: 'EXPIRED' } });
  expect(await gauge('deadline_refunds_pending')).toBeGreaterThanOrEqual(1);
  expect(await gauge('deadline_payments_needing_refund')).toBe(needing - 1);
  expect(codeOf(await gql(app, REFUND_PAYMENT, { id: paymentId, r: 'twice' }, ADMIN))).toBe('CONFLICT');

  await sandboxCall(`/sandbox/refunds/${refund.outRefundNo}/finish`, { status: 'SUCCESS' });
  expect(await refundById(refund.id)).toMatchObject({ status: 'SUCCEEDED', order: { status: 'EXPIRED' } });
  expect(await gauge('deadline_refunds_pending')).toBe(0);
  // A payment that paid its order is refunded with its order, not alone.
  const paid = await paidOnline(buyer);
  const paying = (await ok(app, 'query($o: ID) { payments(filter: { orderId: $o }) { edges { node { id } } } }', { o: paid.id }, ADMIN)).payments.edges[0].node.id;
  expect(codeOf(await gql(app, REFUND_PAYMENT, { id: paying, r: 'wrong way' }, ADMIN))).toBe('CONFLICT');
});

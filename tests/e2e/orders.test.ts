import type { Client } from 'graphql-ws';
import type { App } from '../../src/app.js';
import { gql, LogCapture, setUp, sleep, subscribed, type TestDatabase, token, wsClient } from '../support/harness.js';
import {
  ADMIN,
  CANCEL,
  CREATE_ORDER,
  createOrder,
  createProduct,
  credit,
  invariants,
  ok,
  ORDER_FIELDS,
  PAY,
  wallet,
  withDb,
} from '../support/orders.js';

// Orders here expire in 30 minutes (the default): these tests are about everything but expiry.
let db: TestDatabase;
let app: App;
let log: LogCapture;
let client: Client;
let tea: { id: string; price: number };
const alice = token('alice');
const bob = token('bob');

beforeAll(async () => {
  log = new LogCapture();
  ({ db, app } = await setUp('orders', {}, { log }));
  client = wsClient(app, alice);
  tea = await createProduct(app, { name: 'Tea', price: 500 });
});

afterEach(async () => {
  const { violations } = await invariants(db.url, { running: true });
  expect(violations).toEqual([]);
});

afterAll(async () => {
  await client?.dispose();
});

const codeOf = (res: { errors?: Array<{ extensions?: { code?: string } }> }) => res.errors?.[0]?.extensions?.code;

describe('products and wallets', () => {
  test('admins create products of every kind; users read the catalogue but cannot add to it', async () => {
    const vip = await createProduct(app, { name: 'VIP month', price: 3000, kind: 'VIP_PLAN', vipDays: 30, vipLevel: 1 });
    const window = { saleStartsAt: new Date(Date.now() + 3_600_000).toISOString(), saleEndsAt: new Date(Date.now() + 7_200_000).toISOString() };
    const flash = await createProduct(app, { name: 'Flash', price: 100, kind: 'FLASH_SALE', stock: 10, ...window });
    const list = (await ok(app, '{ products { id name kind vipDays vipLevel stock } }', {}, alice)).products;
    expect(list).toEqual(
      expect.arrayContaining([
        { id: vip.id, name: 'VIP month', kind: 'VIP_PLAN', vipDays: 30, vipLevel: 1, stock: null },
        { id: flash.id, name: 'Flash', kind: 'FLASH_SALE', vipDays: null, vipLevel: null, stock: 10 },
      ]),
    );
    expect((await ok(app, 'query($id: ID!) { product(id: $id) { name price } }', { id: tea.id }, bob)).product).toEqual({ name: 'Tea', price: 500 });

    const byUser = await gql(app, 'mutation { createProduct(input: { name: "x", price: 1, kind: GOODS }) { id } }', {}, alice);
    expect(codeOf(byUser)).toBe('FORBIDDEN');
    const anonymous = await gql(app, '{ products { id } }');
    expect(codeOf(anonymous)).toBe('UNAUTHENTICATED');
  });

  test('bad products are refused with the field named', async () => {
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ name: 'x', price: 0, kind: 'GOODS' }, 'BAD_USER_INPUT'],
      [{ name: '', price: 1, kind: 'GOODS' }, 'BAD_USER_INPUT'],
      [{ name: 'x', price: 1, kind: 'VIP_PLAN' }, 'BAD_USER_INPUT'],
      [{ name: 'x', price: 1, kind: 'GOODS', vipDays: 3 }, 'BAD_USER_INPUT'],
      [{ name: 'x', price: 1, kind: 'FLASH_SALE' }, 'BAD_USER_INPUT'],
      [{ name: 'x', price: 1, kind: 'FLASH_SALE', stock: 1 }, 'BAD_USER_INPUT'],
    ];
    for (const [input, code] of cases) {
      const res = await gql(app, 'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }', { input }, ADMIN);
      expect([input, codeOf(res)]).toEqual([input, code]);
    }
    const missing = await gql(app, '{ product(id: "999999") { id } }', {}, alice);
    expect(codeOf(missing)).toBe('NOT_FOUND');
    const garbage = await gql(app, '{ product(id: "abc") { id } }', {}, alice);
    expect(codeOf(garbage)).toBe('BAD_USER_INPUT');
  });

  test('admins credit wallets (users cannot); each caller reads only their own wallet', async () => {
    expect(await credit(app, 'carol', 1_000)).toMatchObject({ balance: 1_000, frozen: 0 });
    expect(await wallet(app, token('carol'))).toEqual({ balance: 1_000, frozen: 0 });
    const self = await gql(app, 'mutation { creditWallet(userId: "alice", amount: 100) { balance } }', {}, alice);
    expect(codeOf(self)).toBe('FORBIDDEN');
    for (const amount of [0, -5, 2_000_000_000]) {
      const res = await gql(app, 'mutation($a: Int!) { creditWallet(userId: "carol", amount: $a) { balance } }', { a: amount }, ADMIN);
      expect(codeOf(res)).toBe('BAD_USER_INPUT');
    }
    expect(await wallet(app, token('carol'))).toEqual({ balance: 1_000, frozen: 0 });
  });
});

describe('first requests', () => {
  test('many new users at once each get a row and an empty wallet; of two roles at once for one new id, the later wins', async () => {
    const ids = Array.from({ length: 120 }, (_, i) => `first-${i}`);
    const wallets = await Promise.all(ids.map((id) => ok(app, '{ wallet { balance frozen } }', {}, token(id))));
    expect(wallets.map((w) => w.wallet)).toEqual(ids.map(() => ({ balance: 0, frozen: 0 })));
    // Three first requests in one tick: the first goes alone, the next two (one id) are written together, and
    // of one id twice in a group the later token's role wins, as one request after the other would leave it.
    const { users, orm } = app.services;
    const ensure = (id: string, role: 'user' | 'admin') => users.ensure(() => orm.em.fork(), { id, role });
    await Promise.all([ensure('first-other', 'user'), ensure('first-both', 'user'), ensure('first-both', 'admin')]);
    const rows = await withDb(db.url, async (c) =>
      (
        await c.query(
          `select u.id, u.role, w.balance from users u join wallets w on w.user_id = u.id where u.id like 'first-%' order by u.id`,
        )
      ).rows,
    );
    expect(rows).toHaveLength(122);
    expect(rows.find((r) => r.id === 'first-both')).toMatchObject({ role: 'admin' });
    expect(rows.filter((r) => r.id !== 'first-both').every((r) => r.role === 'user' && Number(r.balance) === 0)).toBe(true);
  });
});

describe('creating orders', () => {
  test('a WALLET order is PENDING for ORDER_EXPIRE_MINUTES with its whole amount frozen', async () => {
    await credit(app, 'dave', 2_000);
    const before = Date.now();
    const order = await createOrder(app, token('dave'), { productId: tea.id, quantity: 2, paymentMethod: 'WALLET' });
    expect(order).toMatchObject({ status: 'PENDING', amount: 1_000, walletAmount: 1_000, channel: 'H5', isExpired: false, paidAt: null });
    expect(order.orderNo).toMatch(/^DL\d{8}\d{10}$/);
    const minutes = (new Date(order.expiresAt!).getTime() - before) / 60_000;
    expect(minutes).toBeGreaterThan(29.9);
    expect(minutes).toBeLessThan(30.1);
    expect(await wallet(app, token('dave'))).toEqual({ balance: 1_000, frozen: 1_000 });
  });

  test('a MIXED order freezes only its wallet part; WECHAT and ALIPAY freeze nothing', async () => {
    await credit(app, 'erin', 300);
    const mixed = await createOrder(app, token('erin'), { productId: tea.id, paymentMethod: 'MIXED', walletAmount: 200 });
    expect(mixed).toMatchObject({ status: 'PENDING', amount: 500, walletAmount: 200, paymentMethod: 'MIXED' });
    const online = await createOrder(app, token('erin'), { productId: tea.id, paymentMethod: 'WECHAT' });
    expect(online).toMatchObject({ status: 'PENDING', walletAmount: 0 });
    await createOrder(app, token('erin'), { productId: tea.id, paymentMethod: 'ALIPAY', walletAmount: 0 });
    expect(await wallet(app, token('erin'))).toEqual({ balance: 100, frozen: 200 });
  });

  test('too little balance is a CONFLICT and changes nothing', async () => {
    await credit(app, 'fred', 499);
    const res = await gql(app, CREATE_ORDER, { input: { productId: tea.id, quantity: 1, paymentMethod: 'WALLET' } }, token('fred'));
    expect(codeOf(res)).toBe('CONFLICT');
    expect(await wallet(app, token('fred'))).toEqual({ balance: 499, frozen: 0 });
    const mine = await ok(app, '{ orders { edges { node { id } } } }', {}, token('fred'));
    expect(mine.orders.edges).toEqual([]);
  });

  test('running out of stock is a CONFLICT that leaves the wallet as it was', async () => {
    const scarce = await createProduct(app, { name: 'Scarce', price: 100, stock: 1 });
    await credit(app, 'gina', 1_000);
    const res = await gql(app, CREATE_ORDER, { input: { productId: scarce.id, quantity: 2, paymentMethod: 'WALLET' } }, token('gina'));
    expect(codeOf(res)).toBe('CONFLICT');
    expect(await wallet(app, token('gina'))).toEqual({ balance: 1_000, frozen: 0 });
    await createOrder(app, token('gina'), { productId: scarce.id, paymentMethod: 'WALLET' });
    expect((await ok(app, 'query($id: ID!) { product(id: $id) { stock } }', { id: scarce.id }, alice)).product.stock).toBe(0);
  });

  test('bad orders are BAD_USER_INPUT or NOT_FOUND', async () => {
    await credit(app, 'hank', 10_000);
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ productId: tea.id, paymentMethod: 'OFFLINE' }, 'BAD_USER_INPUT'],
      [{ productId: tea.id, paymentMethod: 'MIXED' }, 'BAD_USER_INPUT'],
      [{ productId: tea.id, paymentMethod: 'MIXED', walletAmount: 500 }, 'BAD_USER_INPUT'],
      [{ productId: tea.id, paymentMethod: 'WALLET', walletAmount: 100 }, 'BAD_USER_INPUT'],
      [{ productId: tea.id, paymentMethod: 'WECHAT', walletAmount: 100 }, 'BAD_USER_INPUT'],
      [{ productId: tea.id, paymentMethod: 'WALLET', quantity: 0 }, 'BAD_USER_INPUT'],
      [{ productId: tea.id, paymentMethod: 'WALLET', quantity: 101 }, 'BAD_USER_INPUT'], // ORDER_MAX_QUANTITY, 100 by default
      [{ productId: tea.id, paymentMethod: 'WECHAT', quantity: 2_000_000_000 }, 'BAD_USER_INPUT'],
      [{ productId: tea.id, paymentMethod: 'PAYPAL' }, 'BAD_USER_INPUT'],
      [{ productId: '424242', paymentMethod: 'WECHAT' }, 'NOT_FOUND'],
      [{ productId: 'tea', paymentMethod: 'WECHAT' }, 'BAD_USER_INPUT'],
    ];
    for (const [input, code] of cases) {
      const res = await gql(app, CREATE_ORDER, { input: { quantity: 1, ...input } }, token('hank'));
      expect([input, codeOf(res)]).toEqual([input, code]);
      expect(JSON.stringify(res.errors)).not.toMatch(/at .*\.ts:\d+/);
    }
    expect(await wallet(app, token('hank'))).toEqual({ balance: 10_000, frozen: 0 });
    expect(codeOf(await gql(app, CREATE_ORDER, { input: { productId: tea.id, paymentMethod: 'WECHAT' } }))).toBe('UNAUTHENTICATED');
  });

  test('adminCreateOrder: WALLET is debited and PAID at once, OFFLINE is PAID, anything else refused', async () => {
    await credit(app, 'ivan', 800);
    const mutation = `mutation($input: AdminCreateOrderInput!) { adminCreateOrder(input: $input) { ${ORDER_FIELDS} } }`;
    const paid = (await ok(app, mutation, { input: { userId: 'ivan', productId: tea.id, paymentMethod: 'WALLET' } }, ADMIN)).adminCreateOrder;
    expect(paid).toMatchObject({ status: 'PAID', channel: 'ADMIN', expiresAt: null, walletAmount: 500, isExpired: false });
    expect(paid.paidAt).not.toBeNull();
    expect(await wallet(app, token('ivan'))).toEqual({ balance: 300, frozen: 0 });
    const offline = (await ok(app, mutation, { input: { userId: 'newcomer', productId: tea.id, paymentMethod: 'OFFLINE' } }, ADMIN)).adminCreateOrder;
    expect(offline).toMatchObject({ status: 'PAID', walletAmount: 0, userId: 'newcomer' });

    for (const paymentMethod of ['WECHAT', 'ALIPAY', 'MIXED']) {
      const res = await gql(app, mutation, { input: { userId: 'ivan', productId: tea.id, paymentMethod } }, ADMIN);
      expect(codeOf(res)).toBe('BAD_USER_INPUT');
    }
    const short = await gql(app, mutation, { input: { userId: 'ivan', productId: tea.id, paymentMethod: 'WALLET' } }, ADMIN);
    expect(codeOf(short)).toBe('CONFLICT');
    const byUser = await gql(app, mutation, { input: { userId: 'ivan', productId: tea.id, paymentMethod: 'OFFLINE' } }, alice);
    expect(codeOf(byUser)).toBe('FORBIDDEN');
    expect(await wallet(app, token('ivan'))).toEqual({ balance: 300, frozen: 0 });
  });
});

describe('paying and cancelling', () => {
  test('payOrderWithWallet: PAID, frozen money debited, no deadline; the watcher hears it once', async () => {
    await credit(app, 'jane', 600);
    const jane = token('jane');
    const order = await createOrder(app, jane, { productId: tea.id, paymentMethod: 'WALLET' });
    const janeClient = wsClient(app, jane);
    const sub = await subscribed(app, janeClient, `subscription($id: ID!) { orderUpdated(orderId: $id) { id status expiresAt paidAt } }`, { id: order.id }, `ORDER_UPDATED:${order.id}`);
    const paid = (await ok(app, PAY, { id: order.id }, jane)).payOrderWithWallet;
    expect(paid).toMatchObject({ status: 'PAID', expiresAt: null, isExpired: false });
    expect(await wallet(app, jane)).toEqual({ balance: 100, frozen: 0 });

    await sub.waitFor((s) => s.events.length >= 1, 5_000, 'orderUpdated');
    const again = await gql(app, PAY, { id: order.id }, jane);
    expect(codeOf(again)).toBe('CONFLICT');
    const cancelPaid = await gql(app, CANCEL, { id: order.id }, jane);
    expect(codeOf(cancelPaid)).toBe('CONFLICT');
    await sleep(300); // room for an update the refused pay or cancel must not cause
    expect(sub.events.map((e) => e.orderUpdated.status)).toEqual(['PAID']);
    expect(await wallet(app, jane)).toEqual({ balance: 100, frozen: 0 });
    sub.dispose();
    await janeClient.dispose();
  });

  test('only WALLET orders are paid with the wallet; only the owner or an admin may pay', async () => {
    await credit(app, 'kate', 1_000);
    const kate = token('kate');
    const mixed = await createOrder(app, kate, { productId: tea.id, paymentMethod: 'MIXED', walletAmount: 100 });
    expect(codeOf(await gql(app, PAY, { id: mixed.id }, kate))).toBe('BAD_USER_INPUT');
    const own = await createOrder(app, kate, { productId: tea.id, paymentMethod: 'WALLET' });
    expect(codeOf(await gql(app, PAY, { id: own.id }, bob))).toBe('FORBIDDEN');
    expect(codeOf(await gql(app, PAY, { id: '987654' }, kate))).toBe('NOT_FOUND');
    expect((await ok(app, PAY, { id: own.id }, ADMIN)).payOrderWithWallet.status).toBe('PAID');
    expect(await wallet(app, kate)).toEqual({ balance: 400, frozen: 100 });
  });

  test('cancelOrder gives back exactly the frozen part, with a reason; online orders give back nothing', async () => {
    await credit(app, 'liam', 1_000);
    const liam = token('liam');
    const mixed = await createOrder(app, liam, { productId: tea.id, paymentMethod: 'MIXED', walletAmount: 150 });
    const whole = await createOrder(app, liam, { productId: tea.id, paymentMethod: 'WALLET' });
    const online = await createOrder(app, liam, { productId: tea.id, paymentMethod: 'ALIPAY' });
    expect(await wallet(app, liam)).toEqual({ balance: 350, frozen: 650 });

    const c1 = (await ok(app, CANCEL, { id: mixed.id }, liam)).cancelOrder;
    expect(c1).toMatchObject({ status: 'CANCELLED', expiresAt: null, cancelReason: 'Cancelled by the buyer', isExpired: false });
    expect(await wallet(app, liam)).toEqual({ balance: 500, frozen: 500 });
    const c2 = (await ok(app, CANCEL, { id: whole.id, reason: 'changed my mind' }, ADMIN)).cancelOrder;
    expect(c2.cancelReason).toBe('changed my mind');
    const c3 = (await ok(app, CANCEL, { id: online.id }, ADMIN)).cancelOrder;
    expect(c3).toMatchObject({ status: 'CANCELLED', cancelReason: 'Cancelled by an admin' });
    expect(await wallet(app, liam)).toEqual({ balance: 1_000, frozen: 0 });
    expect(codeOf(await gql(app, CANCEL, { id: mixed.id }, liam))).toBe('CONFLICT');
    expect(await wallet(app, liam)).toEqual({ balance: 1_000, frozen: 0 });
  });

  test('a stock taken by an order comes back when it is cancelled', async () => {
    const limited = await createProduct(app, { name: 'Limited', price: 10, stock: 5 });
    const order = await createOrder(app, token('mia'), { productId: limited.id, quantity: 3, paymentMethod: 'WECHAT' });
    const stock = async () => (await ok(app, 'query($id: ID!) { product(id: $id) { stock } }', { id: limited.id }, alice)).product.stock;
    expect(await stock()).toBe(2);
    await ok(app, CANCEL, { id: order.id }, token('mia'));
    expect(await stock()).toBe(5);
  });

  test('a wallet that lost its frozen money or vanished: cancel and pay roll back, leave the order as it was, log why', async () => {
    await credit(app, 'nina', 1_000);
    const nina = token('nina');
    const a = await createOrder(app, nina, { productId: tea.id, paymentMethod: 'WALLET' });
    const b = await createOrder(app, nina, { productId: tea.id, paymentMethod: 'MIXED', walletAmount: 100 });
    // Damage the wallet behind the API's back: 400 frozen where the orders hold 600.
    await withDb(db.url, (c) => c.query(`update wallets set frozen = 400, balance = balance + 200 where user_id = 'nina'`));

    const cancel = await gql(app, CANCEL, { id: a.id }, nina);
    expect(codeOf(cancel)).toBe('CONFLICT');
    const pay = await gql(app, PAY, { id: a.id }, nina);
    expect(codeOf(pay)).toBe('CONFLICT');
    const row = await withDb(db.url, async (c) => (await c.query('select status, expires_at, cancel_reason from orders where id = $1', [a.id])).rows[0]);
    expect(row).toMatchObject({ status: 'PENDING', cancel_reason: null });
    expect(row.expires_at).not.toBeNull();
    expect(await wallet(app, nina)).toEqual({ balance: 600, frozen: 400 });
    const logged = log.lines.filter((l) => l.orderId === a.id);
    expect(logged.map((l) => l.action)).toEqual(['cancel', 'pay']);
    expect(String(logged[0].reason)).toContain('holds 400 frozen cents, the order needs 500');

    // The smaller order still fits in what is frozen.
    expect((await ok(app, CANCEL, { id: b.id }, nina)).cancelOrder.status).toBe('CANCELLED');

    await withDb(db.url, (c) => c.query(`delete from wallets where user_id = 'nina'`));
    const gone = await gql(app, CANCEL, { id: a.id }, nina);
    expect(codeOf(gone)).toBe('CONFLICT');
    expect(log.lines.some((l) => l.orderId === a.id && String(l.reason).includes('missing'))).toBe(true);
    // Repair as an operator would, so the invariants hold again: the wallet as the ledger says.
    await withDb(db.url, (c) => c.query(`insert into wallets (user_id, balance, frozen) values ('nina', 500, 500)`));
    expect((await ok(app, CANCEL, { id: a.id }, nina)).cancelOrder.status).toBe('CANCELLED');
  });
});

test('text PostgreSQL cannot store and padded user ids are BAD_USER_INPUT, not a server error', async () => {
  const order = await createOrder(app, alice, { productId: tea.id, paymentMethod: 'WECHAT' });
  expect(codeOf(await gql(app, CANCEL, { id: order.id, reason: 'a\u0000b' }, alice))).toBe('BAD_USER_INPUT');
  expect(codeOf(await gql(app, 'mutation { createProduct(input: { name: "x\\u0000", price: 1, kind: GOODS }) { id } }', {}, ADMIN))).toBe('BAD_USER_INPUT');
  expect(codeOf(await gql(app, 'mutation { creditWallet(userId: " bob", amount: 1) { balance } }', {}, ADMIN))).toBe('BAD_USER_INPUT');
  expect(codeOf(await gql(app, 'mutation($u: ID!) { creditWallet(userId: $u, amount: 1) { balance } }', { u: 'x'.repeat(201) }, ADMIN))).toBe('BAD_USER_INPUT');
  expect(log.lines.filter((l) => l.msg === 'unexpected GraphQL error')).toEqual([]);
  expect((await ok(app, CANCEL, { id: order.id }, alice)).cancelOrder.status).toBe('CANCELLED');
});

describe('reading orders', () => {
  test("users read and cancel only their own orders; admins read anyone's", async () => {
    const order = await createOrder(app, alice, { productId: tea.id, paymentMethod: 'WECHAT' });
    const read = 'query($id: ID!) { order(id: $id) { id userId } }';
    expect((await ok(app, read, { id: order.id }, alice)).order).toEqual({ id: order.id, userId: 'alice' });
    expect((await ok(app, read, { id: order.id }, ADMIN)).order.userId).toBe('alice');
    expect(codeOf(await gql(app, read, { id: order.id }, bob))).toBe('FORBIDDEN');
    expect(codeOf(await gql(app, CANCEL, { id: order.id }, bob))).toBe('FORBIDDEN');
    expect(codeOf(await gql(app, read, { id: order.id }))).toBe('UNAUTHENTICATED');
    const others = await gql(app, '{ orders(filter: { userId: "alice" }) { edges { node { id } } } }', {}, bob);
    expect(codeOf(others)).toBe('FORBIDDEN');
    const bobs = await ok(app, '{ orders { edges { node { userId } } } }', {}, bob);
    expect(bobs.orders.edges.every((e: any) => e.node.userId === 'bob')).toBe(true);
    const sub = wsClient(app, bob);
    const denied = await new Promise<unknown>((resolve) => {
      sub.subscribe({ query: `subscription { orderUpdated(orderId: "${order.id}") { id } }` }, { next: (v) => resolve(v.errors), error: resolve, complete: () => resolve('complete') });
    });
    expect(JSON.stringify(denied)).toContain('FORBIDDEN');
    await sub.dispose();
    expect((await ok(app, CANCEL, { id: order.id }, alice)).cancelOrder.status).toBe('CANCELLED');
  });

  test('orders: filters by status, userId and isExpired (the same rule as the field), pages with cursors', async () => {
    const olga = token('olga');
    const made = [];
    for (let i = 0; i < 5; i++) made.push(await createOrder(app, olga, { productId: tea.id, paymentMethod: 'WECHAT' }));
    // Two of them are past their deadline without the expiry having run yet (the wake-up is 30 minutes away).
    const overdue = [made[1].id, made[3].id];
    await withDb(db.url, (c) => c.query(`update orders set expires_at = now() - interval '200 milliseconds' where id = any($1::bigint[])`, [overdue]));
    await ok(app, CANCEL, { id: made[4].id }, olga);

    const list = async (filter: Record<string, unknown>, first = 20, after?: string) =>
      (await ok(app, 'query($f: OrderFilter, $n: Int!, $a: String) { orders(filter: $f, first: $n, after: $a) { edges { cursor node { id status isExpired } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }', { f: filter, n: first, a: after }, olga)).orders;

    const expired = await list({ isExpired: true });
    expect(expired.edges.map((e: any) => e.node.id).sort()).toEqual([...overdue].sort());
    expect(expired.edges.every((e: any) => e.node.isExpired && e.node.status === 'PENDING')).toBe(true);
    const notExpired = await list({ isExpired: false });
    expect(notExpired.edges.map((e: any) => e.node.id).sort()).toEqual([made[0].id, made[2].id, made[4].id].sort());
    expect(notExpired.edges.every((e: any) => !e.node.isExpired)).toBe(true);
    expect((await list({ status: 'CANCELLED' })).edges.map((e: any) => e.node.id)).toEqual([made[4].id]);
    expect((await list({ status: 'PENDING', isExpired: false })).edges).toHaveLength(2);
    const one = (await ok(app, 'query($id: ID!) { order(id: $id) { isExpired } }', { id: overdue[0] }, olga)).order;
    expect(one.isExpired).toBe(true);

    const page1 = await list({}, 2);
    expect(page1.edges.map((e: any) => e.node.id)).toEqual([made[4].id, made[3].id]);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    expect(page1.pageInfo).toMatchObject({ hasPreviousPage: false, startCursor: page1.edges[0].cursor, endCursor: page1.edges[1].cursor });
    const page2 = await list({}, 2, page1.pageInfo.endCursor);
    expect(page2.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: true, startCursor: page2.edges[0].cursor });
    const page3 = await list({}, 2, page2.pageInfo.endCursor);
    expect(page3.edges.map((e: any) => e.node.id)).toEqual([made[0].id]);
    expect(page3.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: true, startCursor: page3.edges[0].cursor, endCursor: page3.edges[0].cursor });
    // hasPreviousPage asks the filter: is anything it matches at or before the cursor? The cursor's row
    // (made[3], PENDING) does not match CANCELLED, but made[4], newer, does.
    expect((await list({ status: 'CANCELLED' }, 2, page1.edges[1].cursor)).pageInfo).toMatchObject({ hasPreviousPage: true, startCursor: null });
    // made[4] is the cursor but CANCELLED, and no PENDING order is newer.
    const pending = await list({ status: 'PENDING' }, 2, page1.edges[0].cursor);
    expect(pending.edges.map((e: any) => e.node.id)).toEqual([made[3].id, made[2].id]);
    expect(pending.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false });
    const adminView = (await ok(app, '{ orders(filter: { userId: "olga", isExpired: true }) { edges { node { id } } } }', {}, ADMIN)).orders;
    expect(adminView.edges).toHaveLength(2);
    expect(codeOf(await gql(app, '{ orders(after: "nonsense") { edges { cursor } } }', {}, olga))).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(app, '{ orders(first: 500) { edges { cursor } } }', {}, olga))).toBe('BAD_USER_INPUT');

    // The sweep settles them (the invariant check after this test wants no overdue PENDING order).
    await app.deadlines.sweep();
    const after = await list({ isExpired: true });
    expect(after.edges).toEqual([]);
    expect((await list({ status: 'EXPIRED' })).edges.map((e: any) => e.node.id).sort()).toEqual([...overdue].sort());
  });
});

test('the invariant check itself notices money that appears, a double release and an overdue order', async () => {
  await credit(app, 'pete', 500);
  const order = await createOrder(app, token('pete'), { productId: tea.id, paymentMethod: 'WALLET' });
  await withDb(db.url, (c) => c.query(`update wallets set balance = balance + 1 where user_id = 'pete'`));
  expect((await invariants(db.url)).violations.join()).toMatch(/money/);
  await withDb(db.url, (c) => c.query(`update wallets set balance = balance - 1 where user_id = 'pete'`));
  await withDb(db.url, (c) => c.query(`update orders set expires_at = now() - interval '5 seconds' where id = $1`, [order.id]));
  expect((await invariants(db.url, { running: true })).violations.join()).toMatch(/past expiresAt/);
  expect((await invariants(db.url, { running: true, exempt: [order.id] })).violations).toEqual([]);
  expect(codeOf(await gql(app, CANCEL, { id: order.id }, ADMIN))).toBe('CONFLICT'); // past its deadline: expiry's to settle
  await app.deadlines.sweep();
  await withDb(db.url, (c) => c.query(`update wallets set balance = balance - 500, frozen = frozen + 500 where user_id = 'pete'`));
  expect((await invariants(db.url)).violations.join()).toMatch(/frozen differs/);
  await withDb(db.url, (c) => c.query(`update wallets set balance = balance + 500, frozen = frozen - 500 where user_id = 'pete'`));
  expect((await invariants(db.url)).violations).toEqual([]);
});

import { createSign, generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { App } from '../../src/app.js';
import { toBeijingTime } from '../../src/payments/alipay.js';
import { startSandbox, type SandboxHandle } from '../../src/payments/sandbox/server.js';
import { createTestDatabase, gql, LogCapture, MovableClock, start, subscribed, testConfig, token, wsClient } from '../support/harness.js';
import { ADMIN, CANCEL, createProduct, credit, ok, wallet, withDb } from '../support/orders.js';

/**
 * No play money in production: servers started with PAYMENTS_SANDBOX off, as production starts.
 * - "bare": no provider configured. Online orders are refused, the sandbox's callback route is gone,
 *   and a listener where the sandbox would be proves nothing asks it for keys. Also the abuse limits
 *   (ORDER_MAX_PENDING_PER_USER 5, ORDER_MAX_QUANTITY 3).
 * - "merchant": WeChat Pay configured (a sandbox instance plays WeChat Pay, under its own keys and
 *   appid) and Alipay configured with keys made here (creating an Alipay payment and checking its
 *   notification need no gateway). Money arriving at the wrong provider, app, currency or seller.
 */
const PRICE = 1000;
const SELLER_ID = '2088102177000000';
const ALIPAY_APP_ID = '2021000000000001';
const ORDER = 'id orderNo status paidVia payment { provider }';
const CREATE = `mutation($input: CreateOrderInput!) { createOrder(input: $input) { ${ORDER} } }`;

const appKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const alipayKeys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const pem = (k: { export(o: { type: 'pkcs8' | 'spki'; format: 'pem' }): string | Buffer }, type: 'pkcs8' | 'spki') => k.export({ type, format: 'pem' }).toString();

let keyRequests = 0;
let standIn: Server;
let wechatPay: SandboxHandle;
const dbs: Array<Awaited<ReturnType<typeof createTestDatabase>>> = [];
let bare: App;
let merchant: App;
const bareLog = new LogCapture();
const merchantLog = new LogCapture();
const clock = new MovableClock();
let bareProduct: { id: string };
let product: { id: string };

beforeAll(async () => {
  standIn = createServer((_req, res) => {
    keyRequests++;
    res.writeHead(503).end();
  });
  await new Promise<void>((resolve) => standIn.listen(0, '127.0.0.1', resolve));
  const sandboxUrl = `http://127.0.0.1:${(standIn.address() as AddressInfo).port}`;
  wechatPay = await startSandbox();
  const [bareDb, merchantDb] = await Promise.all([createTestDatabase('pay_prod_bare'), createTestDatabase('pay_prod_merchant')]);
  dbs.push(bareDb, merchantDb);
  const off = { PAYMENTS_SANDBOX: 'false', SANDBOX_PAY_URL: sandboxUrl, RECONCILE_INTERVAL_MINUTES: '60' };
  bare = await start(testConfig(bareDb.url, { ...off, ORDER_MAX_PENDING_PER_USER: '5', ORDER_MAX_QUANTITY: '3' }), bareLog);
  const c = wechatPay.credentials;
  merchant = await start(
    testConfig(merchantDb.url, {
      ...off,
      WECHATPAY_MCHID: c.mchid,
      WECHATPAY_APPID: c.appid,
      WECHATPAY_SERIAL_NO: c.serialNo,
      WECHATPAY_PRIVATE_KEY: c.privateKey,
      WECHATPAY_APIV3_KEY: c.apiV3Key,
      WECHATPAY_PUBLIC_KEY_ID: c.publicKeyId,
      WECHATPAY_PUBLIC_KEY: c.publicKey,
      WECHATPAY_BASE_URL: wechatPay.url,
      ALIPAY_APP_ID,
      ALIPAY_PRIVATE_KEY: pem(appKeys.privateKey, 'pkcs8'),
      ALIPAY_PUBLIC_KEY: pem(alipayKeys.publicKey, 'spki'),
      ALIPAY_GATEWAY: 'http://127.0.0.1:9/gateway.do', // never called here
      ALIPAY_SELLER_ID: SELLER_ID,
    }),
    merchantLog,
    { clock },
  );
  bareProduct = await createProduct(bare, { name: 'Tea', price: PRICE });
  product = await createProduct(merchant, { name: 'Tea', price: PRICE });
});

afterAll(async () => {
  await Promise.all([bare?.stop(), merchant?.stop()]);
  await wechatPay?.close();
  standIn?.closeAllConnections();
  await new Promise((resolve) => standIn?.close(resolve));
  for (const db of dbs) await db.drop();
});

/** A user's first request makes their user row and wallet (an unknown user cannot be credited). */
async function buyer(app: App, userId: string, credited = 0): Promise<string> {
  const bearer = token(userId);
  await ok(app, '{ wallet { balance } }', {}, bearer);
  if (credited > 0) await credit(app, userId, credited);
  return bearer;
}
const base = (app: App) => app.url.replace('/graphql', '');
const notify = (app: App, provider: string, body: string, contentType = 'application/json') =>
  fetch(`${base(app)}/api/payments/${provider}/notify`, { method: 'POST', headers: { 'content-type': contentType }, body });
const paymentsOf = (app: App, orderNo: string) =>
  withDb(dbs[app === bare ? 0 : 1].url, async (c) => (await c.query('select provider, amount, needs_refund, refund_reason from payments where order_no = $1', [orderNo])).rows);
const read = async (app: App, id: string) => (await ok(app, `query($id: ID!) { order(id: $id) { ${ORDER} } }`, { id }, ADMIN)).order;
const sandboxPay = async (orderNo: string, body: Record<string, unknown> = {}) =>
  (await fetch(`${wechatPay.url}/sandbox/trades/${orderNo}/pay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })).json() as Promise<{
    callback: { status: number; body: string };
  }>;

/** Runs payment-reconciliation now and resolves when that run finished. */
async function reconcile(app: App): Promise<void> {
  const done = new Promise<void>((resolve, reject) => {
    app.scheduler.once('success:payment-reconciliation', () => resolve());
    app.scheduler.once('fail:payment-reconciliation', (err: Error) => reject(err));
  });
  await app.services.jobs.run('payment-reconciliation');
  await done;
}

/** An Alipay notification as Alipay signs it: every field but sign and sign_type, sorted, RSA2. */
function alipayNotification(orderNo: string, overrides: Record<string, string | undefined> = {}): string {
  const now = toBeijingTime(new Date());
  const fields = Object.fromEntries(
    Object.entries({
      app_id: ALIPAY_APP_ID,
      auth_app_id: ALIPAY_APP_ID,
      charset: 'utf-8',
      notify_id: `n${Date.now()}${Math.random().toString(16).slice(2)}`,
      notify_time: now,
      notify_type: 'trade_status_sync',
      gmt_payment: now,
      out_trade_no: orderNo,
      trade_no: `2026120122001${Math.random().toString().slice(2, 12)}`,
      trade_status: 'TRADE_SUCCESS',
      total_amount: (PRICE / 100).toFixed(2),
      seller_id: SELLER_ID,
      sign_type: 'RSA2',
      version: '1.0',
      ...overrides,
    }).filter((e): e is [string, string] => e[1] !== undefined),
  );
  const content = Object.keys(fields)
    .filter((k) => k !== 'sign_type')
    .sort()
    .map((k) => `${k}=${fields[k]}`)
    .join('&');
  const sign = createSign('RSA-SHA256').update(content, 'utf8').sign(alipayKeys.privateKey, 'base64');
  return new URLSearchParams({ ...fields, sign }).toString();
}
const FORM = 'application/x-www-form-urlencoded; charset=utf-8';

describe('the sandbox off, no provider configured', () => {
  test('WECHAT, ALIPAY and MIXED orders are refused naming the method: nothing frozen, no order written', async () => {
    const ann = await buyer(bare, 'off-ann', 5_000);
    for (const [paymentMethod, walletAmount] of [['WECHAT'], ['ALIPAY'], ['MIXED', 300]] as const) {
      const res = await gql(bare, CREATE, { input: { productId: bareProduct.id, quantity: 1, paymentMethod, walletAmount } }, ann);
      expect(res.errors?.[0]).toMatchObject({ message: expect.stringContaining(paymentMethod), extensions: { code: 'BAD_USER_INPUT', field: 'paymentMethod' } });
    }
    expect(await wallet(bare, ann)).toEqual({ balance: 5_000, frozen: 0 });
    const written = await withDb(dbs[0].url, async (c) => (await c.query(`select count(*)::int as n from orders where user_id = 'off-ann'`)).rows[0].n);
    expect(written).toBe(0);
    // The wallet still pays.
    expect((await ok(bare, CREATE, { input: { productId: bareProduct.id, quantity: 1, paymentMethod: 'WALLET' } }, ann)).createOrder).toMatchObject({ status: 'PENDING', payment: null });
    expect(keyRequests).toBe(0);
  });

  test('the sandbox callback route answers 404, and reconciliation does not ask the sandbox about an order started there', async () => {
    const res = await notify(bare, 'sandbox', '{}');
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ code: 'FAIL' });
    // Its refund notifications too (issue 28): no sandbox, no route.
    const refund = await fetch(`${base(bare)}/api/payments/sandbox/refund-notify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(refund.status).toBe(404);
    expect(await refund.json()).toMatchObject({ code: 'FAIL' });

    // An order started at the sandbox before it was switched off, unpaid for 10 minutes.
    await buyer(bare, 'off-ben');
    const orderNo = 'DL20261201SANDBOX001';
    await withDb(dbs[0].url, async (c) => {
      const { rows } = await c.query(
        `insert into orders (order_no, user_id, product_id, quantity, amount, wallet_amount, payment_method, channel, status, expires_at, created_at)
         values ($1, 'off-ben', $2, 1, $3, 0, 'WECHAT', 'H5', 'PENDING', now() + interval '20 minutes', now() - interval '10 minutes') returning id`,
        [orderNo, bareProduct.id, PRICE],
      );
      await c.query(`insert into payment_intents (order_id, provider, code_url, created_at) values ($1, 'sandbox', 'weixin://x', now())`, [rows[0].id]);
    });
    await reconcile(bare);
    expect(bareLog.lines.filter((l) => l.msg === 'payment reconciliation finished').at(-1)).toMatchObject({ totalChecked: 1, synced: 0, closed: 0, errors: 1 });
    const why = bareLog.lines.find((l) => String(l.msg).startsWith('reconciliation of an order failed') && l.orderNo === orderNo);
    expect((why?.err as { message?: string } | undefined)?.message).toMatch(/started at sandbox, which this server does not serve/);
    expect(keyRequests).toBe(0);
  });

  test('a flash sale, whose orders are WECHAT, cannot be started while no provider takes WECHAT', async () => {
    const now = Date.now();
    const sale = await createProduct(bare, { name: 'Flash', price: PRICE, kind: 'FLASH_SALE', stock: 5, saleStartsAt: new Date(now - 60_000).toISOString(), saleEndsAt: new Date(now + 3_600_000).toISOString() });
    const res = await gql(bare, `mutation($id: ID!) { startFlashSale(productId: $id) { left } }`, { id: sale.id }, ADMIN);
    expect(res.errors?.[0]).toMatchObject({ message: expect.stringContaining('WECHAT payments are not available'), extensions: { code: 'CONFLICT' } });
    const seckill = await gql(bare, `mutation($id: ID!) { seckill(productId: $id) { status } }`, { id: sale.id }, await buyer(bare, 'off-flash'));
    expect(seckill.data?.seckill ?? seckill.errors?.[0].extensions?.code).not.toMatchObject({ status: 'QUEUED' });
  });

  test.each(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'xyz'])('POST /api/payments/%s/notify is 404, never a 5xx', async (name) => {
    const res = await notify(bare, name, '{}');
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ code: 'FAIL', message: 'No such payment provider' });
  });
});

describe('abuse limits', () => {
  test('more than ORDER_MAX_QUANTITY units in one order is BAD_USER_INPUT', async () => {
    const quinn = await buyer(bare, 'limit-quinn', 10 * PRICE);
    const tooMany = await gql(bare, CREATE, { input: { productId: bareProduct.id, quantity: 4, paymentMethod: 'WALLET' } }, quinn);
    expect(tooMany.errors?.[0]).toMatchObject({ message: 'quantity must be at most 3', extensions: { code: 'BAD_USER_INPUT', field: 'quantity' } });
    expect(await wallet(bare, quinn)).toEqual({ balance: 10 * PRICE, frozen: 0 });
    await ok(bare, CREATE, { input: { productId: bareProduct.id, quantity: 3, paymentMethod: 'WALLET' } }, quinn);
    expect(await wallet(bare, quinn)).toEqual({ balance: 7 * PRICE, frozen: 3 * PRICE });
  });

  test('ORDER_MAX_PENDING_PER_USER unpaid orders at most, however many requests arrive at once; flash-sale orders not counted', async () => {
    const hoarder = await buyer(bare, 'limit-hoarder', 100 * PRICE);
    // A flash-sale order, pending: it has its own one-per-sale rule and takes no slot.
    await withDb(dbs[0].url, (c) =>
      c.query(
        `insert into orders (order_no, user_id, product_id, quantity, amount, wallet_amount, payment_method, channel, status, expires_at, created_at)
         values ('DL20261201SECKILL01', 'limit-hoarder', $1, 1, $2, 0, 'WECHAT', 'SECKILL', 'PENDING', now() + interval '30 minutes', now())`,
        [bareProduct.id, PRICE],
      ),
    );
    const attempt = () => gql(bare, CREATE, { input: { productId: bareProduct.id, quantity: 1, paymentMethod: 'WALLET' } }, hoarder);
    const results = await Promise.all(Array.from({ length: 12 }, attempt));
    const made = results.filter((r) => !r.errors).map((r) => r.data!.createOrder as { id: string });
    expect(made).toHaveLength(5);
    expect(results.filter((r) => r.errors).map((r) => r.errors![0].extensions?.code)).toEqual(Array(7).fill('CONFLICT'));
    expect(results.find((r) => r.errors)!.errors![0].message).toMatch(/5 orders are waiting to be paid \(at most 5\)/);
    expect(await wallet(bare, hoarder)).toEqual({ balance: 95 * PRICE, frozen: 5 * PRICE });

    // Settling one frees its slot; paying one too.
    await ok(bare, CANCEL, { id: made[0].id }, hoarder);
    await ok(bare, `mutation($id: ID!) { payOrderWithWallet(orderId: $id) { status } }`, { id: made[1].id }, hoarder);
    expect((await Promise.all([attempt(), attempt(), attempt()])).map((r) => r.errors?.[0].extensions?.code ?? 'made').sort()).toEqual(['CONFLICT', 'made', 'made']);
  });
});

describe('the sandbox off, WeChat Pay and Alipay configured', () => {
  test('a callback from another provider than the order was started at is kept for a refund, announced, and pays nothing', async () => {
    const mia = token('mm-mia');
    const admin = wsClient(merchant, ADMIN);
    const refunds = await subscribed(merchant, admin, 'subscription { paymentNeedsRefund { orderNo provider amount needsRefund refundReason } }', {}, 'PAYMENT_NEEDS_REFUND');
    const atWechat = (await ok(merchant, CREATE, { input: { productId: product.id, quantity: 1, paymentMethod: 'WECHAT' } }, mia)).createOrder;
    const atAlipay = (await ok(merchant, CREATE, { input: { productId: product.id, quantity: 1, paymentMethod: 'ALIPAY' } }, mia)).createOrder;
    expect([atWechat.payment.provider, atAlipay.payment.provider]).toEqual(['wechat', 'alipay']);

    // Alipay says it was paid the WECHAT order's amount: a real, signed notification, answered `success`.
    const viaAlipay = await notify(merchant, 'alipay', alipayNotification(atWechat.orderNo), FORM);
    expect([viaAlipay.status, await viaAlipay.text()]).toEqual([200, 'success']);
    // WeChat Pay says it was paid the ALIPAY order's amount.
    const wechat = (await merchant.services.providers.byName('wechat'))!;
    await wechat.create({ orderNo: atAlipay.orderNo, amount: PRICE, description: 'elsewhere', expiresAt: new Date(Date.now() + 600_000), notifyUrl: `${base(merchant)}/api/payments/wechat/notify` });
    expect((await sandboxPay(atAlipay.orderNo)).callback.status).toBe(204);

    await refunds.waitFor((s) => s.events.length >= 2, 5_000, 'two refund announcements');
    expect(refunds.events.map((e) => e.paymentNeedsRefund)).toEqual([
      { orderNo: atWechat.orderNo, provider: 'alipay', amount: PRICE, needsRefund: true, refundReason: 'provider mismatch: paid at alipay, order started at wechat' },
      { orderNo: atAlipay.orderNo, provider: 'wechat', amount: PRICE, needsRefund: true, refundReason: 'provider mismatch: paid at wechat, order started at alipay' },
    ]);
    for (const o of [atWechat, atAlipay]) expect(await read(merchant, o.id)).toMatchObject({ status: 'PENDING', paidVia: null });
    await admin.dispose();
    // Out of the way of the reconciliation below (no Alipay gateway answers here).
    await ok(merchant, CANCEL, { id: atAlipay.id }, mia);
  });

  test('WeChat callbacks for another appid or in another currency are refused with FAIL and logged; reconciliation counts their query answers as errors', async () => {
    const noah = token('mm-noah');
    const foreignApp = (await ok(merchant, CREATE, { input: { productId: product.id, quantity: 1, paymentMethod: 'WECHAT' } }, noah)).createOrder;
    const dollars = (await ok(merchant, CREATE, { input: { productId: product.id, quantity: 1, paymentMethod: 'WECHAT' } }, noah)).createOrder;
    for (const [o, change, what] of [[foreignApp, { appid: 'wx0123456789abcdef' }, 'appid wx0123456789abcdef'], [dollars, { currency: 'USD' }, 'USD']] as const) {
      const { callback } = await sandboxPay(o.orderNo, change);
      expect(callback.status).toBe(400);
      expect(JSON.parse(callback.body)).toMatchObject({ code: 'FAIL', message: expect.stringContaining(what) });
      expect(merchantLog.lines.some((l) => l.msg === 'payment callback refused' && l.provider === 'wechat' && String(l.reason).includes(what))).toBe(true);
    }

    clock.advance(6); // past RECONCILE_THRESHOLD_MINUTES: both are asked about at WeChat Pay
    await reconcile(merchant);
    const summary = merchantLog.lines.filter((l) => l.msg === 'payment reconciliation finished').at(-1)!;
    expect(summary).toMatchObject({ synced: 0, errors: 2 });
    for (const [o, what] of [[foreignApp, 'appid'], [dollars, 'USD']] as const) {
      const why = merchantLog.lines.find((l) => String(l.msg).startsWith('reconciliation of an order failed') && l.orderNo === o.orderNo);
      expect((why?.err as { message?: string } | undefined)?.message).toMatch(new RegExp(`MISMATCH.*${what}`));
      expect(await read(merchant, o.id)).toMatchObject({ status: 'PENDING', paidVia: null });
      expect(await paymentsOf(merchant, o.orderNo)).toEqual([]);
    }
  });

  test('an Alipay notification for another seller is refused and records nothing', async () => {
    const o = (await ok(merchant, CREATE, { input: { productId: product.id, quantity: 1, paymentMethod: 'ALIPAY' } }, token('mm-olga'))).createOrder;
    const res = await notify(merchant, 'alipay', alipayNotification(o.orderNo, { seller_id: '2088999999999999' }), FORM);
    expect([res.status, await res.text()]).toEqual([400, 'fail']);
    expect(merchantLog.lines.some((l) => l.msg === 'payment callback refused' && l.provider === 'alipay' && String(l.reason).includes('seller_id 2088999999999999'))).toBe(true);
    expect(await paymentsOf(merchant, o.orderNo)).toEqual([]);
    // The same notification for our seller pays it.
    const paid = await notify(merchant, 'alipay', alipayNotification(o.orderNo), FORM);
    expect(await paid.text()).toBe('success');
    expect(await read(merchant, o.id)).toMatchObject({ status: 'PAID', paidVia: 'CALLBACK' });
  });
});

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { generateKeyPairSync } from 'node:crypto';
import { CallbackRejected, ProviderUnavailable, type ProviderNotification, type RefundNotification } from '../../src/payments/provider.js';
import { WechatPayError, type WechatPayProvider } from '../../src/payments/wechat/client.js';
import { startSandbox, type SandboxHandle } from '../../src/payments/sandbox/server.js';
import { connectSandbox, sandboxProvider } from '../../src/payments/sandbox/provider.js';
import { waitUntil } from '../support/wait.js';

// The real WeChat Pay client against the sandbox, over real HTTP on 127.0.0.1; a local listener
// plays our notify endpoint and runs verifyCallback on what the sandbox POSTs.
let sandbox: SandboxHandle;
let provider: WechatPayProvider;
let notify: Server;
let notifyUrl: string;
const received: Array<{ notification?: ProviderNotification; rejected?: CallbackRejected }> = [];
const refundsReceived: Array<{ notification?: RefundNotification; rejected?: CallbackRejected }> = [];

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

beforeAll(async () => {
  sandbox = await startSandbox();
  provider = await connectSandbox(sandbox.url);
  // An error other than a refusal is left unhandled: it fails the run, as it should.
  const deliver = async (req: IncomingMessage, res: ServerResponse) => {
    const body = await readBody(req);
    let answer;
    const refund = req.url?.endsWith('/refund-notify');
    try {
      if (refund) refundsReceived.push({ notification: await provider.verifyRefundCallback({ headers: req.headers, body }) });
      else received.push({ notification: await provider.verifyCallback({ headers: req.headers, body }) });
      answer = provider.accepted();
    } catch (e) {
      if (!(e instanceof CallbackRejected)) throw e;
      (refund ? refundsReceived : received).push({ rejected: e });
      answer = provider.failed(e.status, e.message);
    }
    res.writeHead(answer.status, { 'Content-Type': answer.contentType }).end(answer.body);
  };
  notify = createServer((req, res) => void deliver(req, res));
  await new Promise<void>((resolve) => notify.listen(0, '127.0.0.1', resolve));
  notifyUrl = `http://127.0.0.1:${(notify.address() as AddressInfo).port}/api/payments/sandbox/notify`;
});

afterAll(async () => {
  await sandbox?.close();
  notify?.closeAllConnections();
  await new Promise((resolve) => notify?.close(resolve));
});

let seq = 0;
function orderNo(): string {
  return `T${Date.now()}${seq++}`;
}

async function create(no: string, amount = 1999, expiresInMs = 30 * 60_000) {
  return provider.create({ orderNo: no, amount, description: 'VIP 月卡 · Deadline', expiresAt: new Date(Date.now() + expiresInMs), notifyUrl });
}

/** The sandbox's control API: GET without a body, POST with one (possibly empty). */
async function control(method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${sandbox.url}${path}`, {
    method,
    headers: { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

describe('trades', () => {
  test('create answers a code_url; the trade there has our order number, cents and time_expire', async () => {
    const no = orderNo();
    const expiresAt = new Date(Date.now() + 30 * 60_000);
    const intent = await provider.create({ orderNo: no, amount: 1999, description: 'VIP', expiresAt, notifyUrl });
    expect(intent).toEqual({ provider: 'sandbox', prepayId: null, h5Url: null, codeUrl: expect.stringMatching(/^weixin:\/\/wxpay\/bizpayurl\?pr=/), expiresAt });
    const trade = sandbox.trades.get(no)!;
    expect(trade).toMatchObject({ orderNo: no, amount: 1999, state: 'NOTPAY', tradeType: 'NATIVE', notifyUrl });
    expect(trade.timeExpire).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$/);
    expect(Math.abs(Date.parse(trade.timeExpire!) - expiresAt.getTime())).toBeLessThan(1000);
  });

  test('the intent expires with the order, or after the 2 h a code_url lives', async () => {
    const intent = await create(orderNo(), 100, 3 * 3600_000);
    expect(Math.abs(intent.expiresAt!.getTime() - (Date.now() + 2 * 3600_000))).toBeLessThan(5_000);
  });

  test('an H5 provider answers an h5_url and sends the payer IP', async () => {
    const h5 = sandboxProvider(sandbox.credentials, { tradeType: 'h5' });
    const no = orderNo();
    const intent = await h5.create({ orderNo: no, amount: 500, description: 'H5', expiresAt: new Date(Date.now() + 600_000), notifyUrl, clientIp: '203.0.113.7' });
    expect(intent.h5Url).toMatch(/^https:\/\/wx\.tenpay\.com\//);
    expect(intent.codeUrl).toBeNull();
    expect(sandbox.trades.get(no)!.tradeType).toBe('MWEB');
  });

  test('NOTPAY is UNPAID; paid is PAID with transaction id, amount and time', async () => {
    const no = orderNo();
    await create(no, 2500);
    await expect(provider.query(no)).resolves.toEqual({ state: 'UNPAID', providerState: 'NOTPAY', transactionId: null, amount: null, paidAt: null });
    const paid = await control('POST', `/sandbox/trades/${no}/pay`, { callback: 'lose' });
    expect(paid.status).toBe(200);
    expect(paid.json.callback).toBeNull();
    const status = await provider.query(no);
    expect(status).toEqual({ state: 'PAID', providerState: 'SUCCESS', transactionId: paid.json.trade.transactionId, amount: 2500, paidAt: expect.any(Date) });
    expect(status.transactionId).toMatch(/^4200\d{24}$/);
    expect(status.paidAt!.getTime()).toBe(Date.parse(paid.json.trade.successTime));
  });

  test('close makes it CLOSED; closing again, or an unknown trade, is fine; a paid one is not', async () => {
    const no = orderNo();
    await create(no);
    await provider.close(no);
    await expect(provider.query(no)).resolves.toMatchObject({ state: 'CLOSED', providerState: 'CLOSED' });
    await provider.close(no);
    await provider.close(orderNo());
    const paid = orderNo();
    await create(paid);
    await control('POST', `/sandbox/trades/${paid}/pay`, { callback: 'lose' });
    await expect(provider.close(paid)).rejects.toMatchObject({ name: 'WechatPayError', code: 'ORDERPAID' });
  });

  test('a failed payment (PAYERROR) is CLOSED; an unknown order is UNPAID', async () => {
    const no = orderNo();
    await create(no);
    expect((await control('POST', `/sandbox/trades/${no}/fail`)).status).toBe(200);
    await expect(provider.query(no)).resolves.toMatchObject({ state: 'CLOSED', providerState: 'PAYERROR' });
    await expect(provider.query(orderNo())).resolves.toEqual({ state: 'UNPAID', providerState: 'ORDERNOTEXIST', transactionId: null, amount: null, paidAt: null });
  });

  test('creating the same order twice answers the same code_url; with another amount it is refused', async () => {
    const no = orderNo();
    const first = await create(no, 100);
    expect((await create(no, 100)).codeUrl).toBe(first.codeUrl);
    await expect(create(no, 200)).rejects.toBeInstanceOf(WechatPayError);
  });
});

describe('trust and failures', () => {
  test('an answer whose signature does not verify is refused', async () => {
    const no = orderNo();
    await create(no);
    sandbox.faults.corruptSignatures = true;
    try {
      await expect(provider.query(no)).rejects.toMatchObject({ name: 'WechatPayError', code: 'RESPONSE_NOT_VERIFIED' });
    } finally {
      sandbox.faults.corruptSignatures = false;
    }
  });

  test('an answer signed by a key we do not hold is refused', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const wrongKeyring = sandboxProvider({ ...sandbox.credentials, publicKey: other.publicKey.export({ type: 'spki', format: 'pem' }).toString() });
    await expect(wrongKeyring.query(orderNo())).rejects.toMatchObject({ code: 'RESPONSE_NOT_VERIFIED' });
  });

  test('a request not signed by the merchant key is 401 SIGN_ERROR', async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const impostor = sandboxProvider({ ...sandbox.credentials, privateKey: other.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() });
    await expect(impostor.query(orderNo())).rejects.toMatchObject({ name: 'WechatPayError', status: 401, code: 'SIGN_ERROR' });
  });

  test('SYSTEMERROR, a timeout and a sandbox that is down are ProviderUnavailable', async () => {
    sandbox.faults.systemError = true;
    try {
      await expect(provider.query(orderNo())).rejects.toBeInstanceOf(ProviderUnavailable);
    } finally {
      sandbox.faults.systemError = false;
    }
    const impatient = sandboxProvider(sandbox.credentials, { timeoutMs: 100 });
    sandbox.faults.delayMs = 1_000;
    try {
      await expect(impatient.query(orderNo())).rejects.toBeInstanceOf(ProviderUnavailable);
    } finally {
      sandbox.faults.delayMs = 0;
    }
    const down = await startSandbox();
    const orphan = sandboxProvider(down.credentials);
    await down.close();
    await expect(orphan.query(orderNo())).rejects.toBeInstanceOf(ProviderUnavailable);
    await expect(connectSandbox(down.url)).rejects.toBeInstanceOf(ProviderUnavailable);
  });
});

describe('callbacks', () => {
  test('the payment callback verifies and decrypts; probe, stale and forged are 401; replay and duplicate carry the same id', async () => {
    const no = orderNo();
    await create(no, 4200);
    const from = received.length;
    const paid = await control('POST', `/sandbox/trades/${no}/pay`);
    expect(paid.json.callback).toEqual({ status: 204, body: '' });
    const first = received[from].notification!;
    expect(first).toEqual({
      replayKey: expect.stringMatching(/^\d+:\w+$/),
      notificationId: paid.json.trade.lastNotificationId,
      orderNo: no,
      transactionId: paid.json.trade.transactionId,
      state: 'PAID',
      amount: 4200,
      paidAt: new Date(paid.json.trade.successTime),
    });

    for (const kind of ['probe', 'stale', 'forged']) {
      const sent = await control('POST', `/sandbox/trades/${no}/callbacks/${kind}`);
      expect({ kind, status: sent.json.status }).toEqual({ kind, status: 401 });
      expect(JSON.parse(sent.json.body)).toMatchObject({ code: 'FAIL' });
    }
    expect(received.slice(from + 1).map((r) => r.rejected?.status)).toEqual([401, 401, 401]);

    // The provider verifies both (the server refuses a replay by its replayKey, the same as the
    // first delivery's; a duplicate, WeChat's own retry, carries a fresh one).
    for (const kind of ['replay', 'duplicate']) {
      const sent = await control('POST', `/sandbox/trades/${no}/callbacks/${kind}`);
      expect({ kind, status: sent.json.status }).toEqual({ kind, status: 204 });
      const { replayKey, ...again } = received.at(-1)!.notification!;
      const { replayKey: firstKey, ...original } = first;
      expect(again).toEqual(original);
      expect(replayKey === firstKey).toBe(kind === 'replay');
    }
  });

  test('a payment of another amount says so in the callback', async () => {
    const no = orderNo();
    await create(no, 1000);
    const paid = await control('POST', `/sandbox/trades/${no}/pay`, { amount: 990 });
    expect(paid.json.callback.status).toBe(204);
    expect(received.at(-1)!.notification).toMatchObject({ orderNo: no, amount: 990 });
    await expect(provider.query(no)).resolves.toMatchObject({ amount: 990 });
  });

  test('a payment naming another appid or currency: its callback is refused (400) and its query answer is not read', async () => {
    for (const [change, what] of [[{ appid: 'wx0123456789abcdef' }, 'appid wx0123456789abcdef'], [{ currency: 'USD' }, 'USD']] as const) {
      const no = orderNo();
      await create(no, 1000);
      const from = received.length;
      const paid = await control('POST', `/sandbox/trades/${no}/pay`, change);
      expect(paid.json.callback.status).toBe(400);
      expect(JSON.parse(paid.json.callback.body)).toMatchObject({ code: 'FAIL', message: expect.stringContaining(what) });
      expect(received.slice(from).map((r) => r.rejected?.status)).toEqual([400]);
      await expect(provider.query(no)).rejects.toMatchObject({ name: 'WechatPayError', code: 'MISMATCH', message: expect.stringContaining(what) });
    }
    // An unpaid trade of another app is not ours to read either (nor to close an order on).
    const no = orderNo();
    await create(no, 1000);
    sandbox.trades.get(no)!.appid = 'wx0123456789abcdef';
    await expect(provider.query(no)).rejects.toMatchObject({ code: 'MISMATCH' });
  });

  test('a lost callback can be delivered later; an unpaid trade has none to resend', async () => {
    const no = orderNo();
    await create(no);
    expect((await control('POST', `/sandbox/trades/${no}/callbacks/replay`)).status).toBe(409);
    const paid = await control('POST', `/sandbox/trades/${no}/pay`, { callback: 'lose' });
    const sent = await control('POST', `/sandbox/trades/${no}/callbacks/replay`);
    expect(sent.json.status).toBe(204);
    expect(received.at(-1)!.notification).toMatchObject({ orderNo: no, notificationId: paid.json.trade.lastNotificationId });
  });

  test('the control API lists trades and refuses moves the state forbids', async () => {
    const no = orderNo();
    await create(no);
    const list = await control('GET', '/sandbox/trades');
    expect(list.json.map((t: { orderNo: string }) => t.orderNo)).toContain(no);
    expect((await control('GET', `/sandbox/trades/${no}`)).json).toMatchObject({ orderNo: no, state: 'NOTPAY' });
    await control('POST', `/sandbox/trades/${no}/close`);
    expect((await control('POST', `/sandbox/trades/${no}/pay`)).status).toBe(409);
    expect((await control('POST', '/sandbox/trades/NOPE12345/pay')).status).toBe(404);
    expect((await control('GET', '/sandbox/credentials')).json).toMatchObject({ mchid: sandbox.credentials.mchid, publicKeyId: expect.stringMatching(/^PUB_KEY_ID_[0-9a-f]{32}$/) });
  });
});

describe('refunds', () => {
  const refundNotifyUrl = () => notifyUrl.replace(/\/notify$/, '/refund-notify');
  /** A trade created and paid (its callback delivered), and the refund request of its whole payment. */
  async function paidTrade(amount = 1999) {
    const no = orderNo();
    await create(no, amount);
    const paid = await control('POST', `/sandbox/trades/${no}/pay`, { callback: 'lose' });
    const outRefundNo = `R${seq}-1`;
    return { no, request: { outRefundNo, orderNo: no, transactionId: paid.json.trade.transactionId, amount, total: amount, reason: '多付', notifyUrl: refundNotifyUrl() } };
  }

  test('a refund answered SUCCESS at once; asked again it is the same refund; the query and the notification agree', async () => {
    const { no, request } = await paidTrade();
    const before = refundsReceived.length;
    expect(await provider.refund(request)).toMatchObject({ state: 'SUCCEEDED', providerState: 'SUCCESS', amount: 1999, finishedAt: expect.any(Date) });
    expect(await provider.refund(request)).toMatchObject({ state: 'SUCCEEDED', amount: 1999 });
    expect([...sandbox.refunds.values()].filter((r) => r.orderNo === no)).toHaveLength(1);
    expect(await provider.queryRefund(request)).toMatchObject({ state: 'SUCCEEDED', amount: 1999 });
    // The notification follows the answer, signed and encrypted like a payment's.
    await waitUntil(() => refundsReceived.length > before, 5_000, 'the refund notification');
    expect(refundsReceived.at(-1)!.notification).toMatchObject({
      outRefundNo: request.outRefundNo, state: 'SUCCEEDED', providerState: 'SUCCESS', amount: 1999, replayKey: expect.any(String),
    });
  });

  test('PROCESSING, then finished: the notification says SUCCESS or ABNORMAL; forged, stale and probe notifications are refused', async () => {
    const { no, request } = await paidTrade(500);
    await control('POST', `/sandbox/trades/${no}/refund-plan`, { status: 'PROCESSING' });
    expect(await provider.refund(request)).toMatchObject({ state: 'PROCESSING', amount: 500, finishedAt: null });
    expect(await provider.queryRefund(request)).toMatchObject({ state: 'PROCESSING' });
    const done = await control('POST', `/sandbox/refunds/${request.outRefundNo}/finish`, { status: 'SUCCESS' });
    expect(done.json.callback.status).toBe(204);
    expect(refundsReceived.at(-1)!.notification).toMatchObject({ outRefundNo: request.outRefundNo, state: 'SUCCEEDED', amount: 500 });
    for (const kind of ['forged', 'stale', 'probe']) {
      const refused = await control('POST', `/sandbox/refunds/${request.outRefundNo}/callbacks/${kind}`);
      expect({ kind, status: refused.json.status }).toEqual({ kind, status: 401 });
    }
    expect(refundsReceived.at(-1)!.rejected).toBeInstanceOf(CallbackRejected);

    const second = await paidTrade(300);
    await control('POST', `/sandbox/trades/${second.no}/refund-plan`, { status: 'PROCESSING' });
    await provider.refund(second.request);
    await control('POST', `/sandbox/refunds/${second.request.outRefundNo}/finish`, { status: 'ABNORMAL' });
    expect(refundsReceived.at(-1)!.notification).toMatchObject({ state: 'FAILED', providerState: 'ABNORMAL', finishedAt: null });
    expect(await provider.queryRefund(second.request)).toMatchObject({ state: 'FAILED', providerState: 'ABNORMAL' });
  });

  test('a refund never received is NOT_FOUND; an unpaid trade, or more than was paid, is refused (FAILED); SYSTEMERROR is thrown', async () => {
    const { no, request } = await paidTrade(800);
    expect(await provider.queryRefund(request)).toEqual({ state: 'NOT_FOUND', providerState: 'RESOURCE_NOT_EXISTS', amount: null, finishedAt: null });
    const unpaid = orderNo();
    await create(unpaid);
    expect(await provider.refund({ ...request, orderNo: unpaid, outRefundNo: `${request.outRefundNo}x` })).toMatchObject({ state: 'FAILED', providerState: 'RESOURCE_NOT_EXISTS' });
    await control('POST', `/sandbox/trades/${no}/refund-plan`, { status: 'ABNORMAL' });
    expect(await provider.refund(request)).toMatchObject({ state: 'FAILED', providerState: 'ABNORMAL' });
    // An ABNORMAL refund gave nothing back: a new attempt may refund the whole payment; a third is too much.
    await control('POST', `/sandbox/trades/${no}/refund-plan`, { status: 'SUCCESS', callback: 'lose' });
    expect(await provider.refund({ ...request, outRefundNo: `${request.outRefundNo}b` })).toMatchObject({ state: 'SUCCEEDED' });
    expect(await provider.refund({ ...request, outRefundNo: `${request.outRefundNo}c` })).toMatchObject({ state: 'FAILED', providerState: 'INVALID_REQUEST' });
    sandbox.faults.systemError = true;
    try {
      await expect(provider.queryRefund(request)).rejects.toThrow(ProviderUnavailable);
    } finally {
      sandbox.faults.systemError = false;
    }
  });

  test('a refund answer whose signature does not verify is thrown, never read as FAILED', async () => {
    const { request } = await paidTrade(100);
    sandbox.faults.corruptSignatures = true;
    try {
      await expect(provider.refund(request)).rejects.toMatchObject({ name: 'WechatPayError', code: 'RESPONSE_NOT_VERIFIED' });
    } finally {
      sandbox.faults.corruptSignatures = false;
    }
    // It was made there, though: asked again with the same out_refund_no, the one refund is answered.
    expect(await provider.refund(request)).toMatchObject({ state: 'SUCCEEDED', amount: 100 });
    expect(sandbox.refunds.size).toBeGreaterThan(0);
  });
});

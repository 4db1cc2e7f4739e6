/**
 * AlipayProvider on the real alipay-sdk against a stand-in Alipay gateway on 127.0.0.1: the gateway
 * checks the app's request signatures with the app's public key and signs its answers with a
 * stand-in "Alipay" key the way Alipay does (RSA2 over the exact `xxx_response` JSON text).
 */
import { createSign, createVerify, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AlipayApiError,
  AlipayProvider,
  centsToYuan,
  fromBeijingTime,
  toBeijingTime,
  yuanToCents,
  type AlipayOptions,
} from '../../src/payments/alipay.js';
import { CallbackRejected, ProviderUnavailable } from '../../src/payments/provider.js';

const APP_ID = '2021000000000001';
const pair = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
const appKeys = pair();
const alipayKeys = pair();
const pem = {
  appPrivatePkcs1: appKeys.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString(),
  appPrivatePkcs8: appKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  appPublic: appKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  alipayPrivate: alipayKeys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  alipayPublic: alipayKeys.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
};
/** The bare base64 body, as the Alipay key tool prints keys. */
const alipayPublicBase64 = alipayKeys.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');

// ---- the stand-in gateway ----

type TradeKind =
  | 'paid' | 'finished' | 'waiting' | 'closed' | 'not-exist' | 'system-error' | 'unavailable'
  | 'invalid-parameter' | 'http-502' | 'slow' | 'bad-sign' | 'unsigned-error';
interface Trade { kind: TradeKind; totalAmount?: string; tradeNo?: string; sellerId?: string; refunds?: Map<string, string> }
interface Received { method: string; params: Record<string, string>; signatureOk: boolean }

const trades = new Map<string, Trade>();
const received: Received[] = [];
const held: ServerResponse[] = [];
let server: Server;
let gateway: string;
let tmp: string;

/** Alipay checks a request: every parameter but `sign` (and empty ones), sorted, `k=v` joined by `&`. */
function requestSignatureOk(params: Record<string, string>): boolean {
  const content = Object.keys(params)
    .filter((k) => k !== 'sign' && params[k] !== '')
    .sort()
    .map((k) => `${k}=${params[k]}`)
    .join('&');
  return !!params.sign && createVerify('RSA-SHA256').update(content, 'utf8').verify(pem.appPublic, params.sign, 'base64');
}

/** Alipay signs the exact JSON text of the `xxx_response` value; `sign` follows it. */
function answer(res: ServerResponse, key: string, body: object, signWith: string | null = pem.alipayPrivate): void {
  const inner = JSON.stringify(body);
  const text = signWith
    ? `{"${key}":${inner},"sign":"${createSign('RSA-SHA256').update(inner, 'utf8').sign(signWith, 'base64')}"}`
    : `{"${key}":${inner}}`;
  res.writeHead(200, { 'content-type': 'text/html;charset=utf-8' });
  res.end(text);
}

const BUSINESS_FAILED = { code: '40004', msg: 'Business Failed' };

function tradeQuery(orderNo: string, trade: Trade): object {
  const common = {
    ...{ code: '10000', msg: 'Success' },
    out_trade_no: orderNo,
    total_amount: trade.totalAmount ?? '12.34',
    buyer_pay_amount: '0.00',
    point_amount: '0.00',
    invoice_amount: '0.00',
    receipt_amount: '0.00',
  };
  switch (trade.kind) {
    case 'paid':
    case 'finished':
      return {
        ...common,
        trade_no: trade.tradeNo ?? `2024050122001${orderNo}`,
        buyer_logon_id: '159****5620',
        trade_status: trade.kind === 'paid' ? 'TRADE_SUCCESS' : 'TRADE_FINISHED',
        buyer_pay_amount: common.total_amount,
        receipt_amount: common.total_amount,
        send_pay_date: '2024-05-01 12:34:56',
        buyer_user_id: '2088102177846880',
        ...(trade.sellerId ? { seller_id: trade.sellerId } : {}),
      };
    case 'waiting':
      return { ...common, trade_no: `2024050122001${orderNo}`, trade_status: 'WAIT_BUYER_PAY' };
    case 'closed':
      return { ...common, trade_no: `2024050122001${orderNo}`, trade_status: 'TRADE_CLOSED' };
    default:
      return { ...BUSINESS_FAILED, sub_code: 'ACQ.TRADE_NOT_EXIST', sub_msg: '交易不存在', out_trade_no: orderNo };
  }
}

function tradeClose(orderNo: string, trade: Trade): object {
  switch (trade.kind) {
    case 'waiting':
      trade.kind = 'closed';
      return { code: '10000', msg: 'Success', trade_no: `2024050122001${orderNo}`, out_trade_no: orderNo };
    case 'closed':
    case 'paid':
    case 'finished':
      return { ...BUSINESS_FAILED, sub_code: 'ACQ.TRADE_STATUS_ERROR', sub_msg: '交易状态不合法' };
    default:
      return { ...BUSINESS_FAILED, sub_code: 'ACQ.TRADE_NOT_EXIST', sub_msg: '交易不存在' };
  }
}

/**
 * alipay.trade.refund as Alipay answers it: a paid trade's refund moves money once per out_request_no
 * (fund_change Y the first time, N when the same request comes again); more than was paid, or a
 * trade not paid, is refused.
 */
function tradeRefund(orderNo: string, trade: Trade, biz: Record<string, string>): object {
  if (trade.kind === 'not-exist') return { ...BUSINESS_FAILED, sub_code: 'ACQ.TRADE_NOT_EXIST', sub_msg: '交易不存在' };
  if (trade.kind !== 'paid') return { ...BUSINESS_FAILED, sub_code: 'ACQ.TRADE_STATUS_ERROR', sub_msg: '交易状态不合法' };
  const refunds = (trade.refunds ??= new Map());
  const repeat = refunds.has(biz.out_request_no);
  const total = yuanToCents(trade.totalAmount ?? '12.34')!;
  const refunded = [...refunds.values()].reduce((n, a) => n + yuanToCents(a)!, 0);
  if (!repeat && refunded + yuanToCents(biz.refund_amount)! > total) {
    return { ...BUSINESS_FAILED, sub_code: 'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL', sub_msg: '退款金额超限' };
  }
  if (!repeat) refunds.set(biz.out_request_no, biz.refund_amount);
  const refundFee = [...refunds.values()].reduce((n, a) => n + yuanToCents(a)!, 0);
  return {
    code: '10000', msg: 'Success', trade_no: trade.tradeNo ?? `2024050122001${orderNo}`, out_trade_no: orderNo, buyer_logon_id: '159****5620',
    fund_change: repeat ? 'N' : 'Y', refund_fee: centsToYuan(refundFee), gmt_refund_pay: '2024-05-02 10:00:00',
  };
}

/** alipay.trade.fastpay.refund.query: REFUND_SUCCESS for a refund made, no refund_status for one never received. */
function refundQuery(orderNo: string, trade: Trade, biz: Record<string, string>): object {
  if (trade.kind === 'not-exist') return { ...BUSINESS_FAILED, sub_code: 'ACQ.TRADE_NOT_EXIST', sub_msg: '交易不存在' };
  const amount = trade.refunds?.get(biz.out_request_no);
  if (!amount) return { code: '10000', msg: 'Success' };
  return {
    code: '10000', msg: 'Success', trade_no: trade.tradeNo ?? `2024050122001${orderNo}`, out_trade_no: orderNo, out_request_no: biz.out_request_no,
    total_amount: trade.totalAmount ?? '12.34', refund_amount: amount, refund_status: 'REFUND_SUCCESS', gmt_refund_pay: '2024-05-02 10:00:00',
  };
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const params: Record<string, string> = {};
  for (const [k, v] of new URL(req.url ?? '/', 'http://gateway').searchParams) params[k] = v;
  for (const [k, v] of new URLSearchParams(Buffer.concat(chunks).toString('utf8'))) params[k] = v;
  const signatureOk = requestSignatureOk(params);
  received.push({ method: params.method, params, signatureOk });
  const key = `${params.method.replaceAll('.', '_')}_response`;
  if (!signatureOk) {
    return answer(res, key, { code: '40002', msg: 'Invalid Arguments', sub_code: 'isv.invalid-signature', sub_msg: '验签出错' });
  }
  const orderNo = String(JSON.parse(params.biz_content).out_trade_no);
  const trade: Trade = trades.get(orderNo) ?? { kind: 'not-exist' };
  switch (trade.kind) {
    case 'system-error':
      return answer(res, key, { ...BUSINESS_FAILED, sub_code: 'ACQ.SYSTEM_ERROR', sub_msg: '系统错误' });
    case 'unavailable':
      return answer(res, key, { code: '20000', msg: 'Service Currently Unavailable', sub_code: 'isp.unknow-error', sub_msg: '系统繁忙' });
    case 'invalid-parameter':
      return answer(res, key, { code: '40004', msg: 'Business Failed', sub_code: 'ACQ.INVALID_PARAMETER', sub_msg: '参数无效' });
    case 'http-502':
      res.writeHead(502, { 'content-type': 'text/html' });
      return void res.end('<html>502 Bad Gateway</html>');
    case 'slow':
      held.push(res);
      return;
    case 'bad-sign':
      return answer(res, key, tradeQuery(orderNo, { kind: 'paid' }), pem.appPrivatePkcs8);
    case 'unsigned-error':
      return answer(res, 'error_response', { code: '40002', msg: 'Invalid Arguments', sub_code: 'isv.invalid-app-id', sub_msg: '无效的AppID参数' }, null);
  }
  if (params.method === 'alipay.trade.query') return answer(res, key, tradeQuery(orderNo, trade));
  if (params.method === 'alipay.trade.close') return answer(res, key, tradeClose(orderNo, trade));
  if (params.method === 'alipay.trade.refund') return answer(res, key, tradeRefund(orderNo, trade, JSON.parse(params.biz_content)));
  if (params.method === 'alipay.trade.fastpay.refund.query') return answer(res, key, refundQuery(orderNo, trade, JSON.parse(params.biz_content)));
  res.writeHead(404).end();
}

async function listen(s: Server): Promise<number> {
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  return (s.address() as AddressInfo).port;
}

function provider(overrides: Partial<AlipayOptions> = {}): AlipayProvider {
  return new AlipayProvider({
    appId: APP_ID,
    privateKey: pem.appPrivatePkcs1,
    alipayPublicKey: pem.alipayPublic,
    gateway,
    timeout: 2_000,
    ...overrides,
  });
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'alipay-test-'));
  server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      res.writeHead(500).end(String(err));
    });
  });
  gateway = `http://127.0.0.1:${await listen(server)}/gateway.do`;
});

afterAll(async () => {
  for (const res of held) res.destroy();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  rmSync(tmp, { recursive: true, force: true });
});

let seq = 0;
/** A fresh order number set up at the gateway as `kind`. */
function trade(kind: TradeKind, extra: Omit<Trade, 'kind'> = {}): string {
  const orderNo = `T${Date.now()}${++seq}`;
  trades.set(orderNo, { kind, ...extra });
  return orderNo;
}

// ---- amounts and times ----

test('amounts are exact integer cents both ways', () => {
  expect(yuanToCents('0.01')).toBe(1);
  expect(yuanToCents('1234.56')).toBe(123456); // 1234.56 * 100 is 123455.99999999999 in floating point
  expect(yuanToCents('12.3')).toBe(1230);
  expect(yuanToCents('5')).toBe(500);
  for (const bad of ['1.234', '-1.00', '1e3', '', '.5', 'abc', null]) expect(yuanToCents(bad)).toBeNull();
  expect(centsToYuan(1)).toBe('0.01');
  expect(centsToYuan(123456)).toBe('1234.56');
  expect(centsToYuan(100)).toBe('1.00');
  expect(() => centsToYuan(0)).toThrow(RangeError);
  expect(() => centsToYuan(1.5)).toThrow(RangeError);
});

test('Beijing time is UTC+8 either way; impossible times are refused', () => {
  expect(toBeijingTime(new Date('2024-05-01T04:34:56.789Z'))).toBe('2024-05-01 12:34:56');
  expect(fromBeijingTime('2024-05-01 12:34:56')).toEqual(new Date('2024-05-01T04:34:56Z'));
  expect(fromBeijingTime('2024-02-30 12:00:00')).toBeNull();
  expect(fromBeijingTime('2024-05-01T12:34:56')).toBeNull();
});

// ---- query ----

describe('query', () => {
  const alipay = () => provider();

  test('TRADE_SUCCESS is PAID with trade_no, cents and send_pay_date', async () => {
    const orderNo = trade('paid', { totalAmount: '1234.56', tradeNo: '2024050122001400001' });
    expect(await alipay().query(orderNo)).toEqual({
      state: 'PAID',
      providerState: 'TRADE_SUCCESS',
      transactionId: '2024050122001400001',
      amount: 123456,
      paidAt: new Date('2024-05-01T04:34:56Z'),
    });
  });

  test('TRADE_FINISHED is PAID too; "0.01" is 1 cent', async () => {
    const status = await alipay().query(trade('finished', { totalAmount: '0.01' }));
    expect(status).toMatchObject({ state: 'PAID', providerState: 'TRADE_FINISHED', amount: 1 });
  });

  test('WAIT_BUYER_PAY is UNPAID, TRADE_CLOSED is CLOSED', async () => {
    expect(await alipay().query(trade('waiting'))).toEqual({
      state: 'UNPAID', providerState: 'WAIT_BUYER_PAY', transactionId: null, amount: null, paidAt: null,
    });
    expect(await alipay().query(trade('closed'))).toMatchObject({ state: 'CLOSED', providerState: 'TRADE_CLOSED' });
  });

  test('ACQ.TRADE_NOT_EXIST (the buyer never opened it) is UNPAID, not an error', async () => {
    expect(await alipay().query(trade('not-exist'))).toEqual({
      state: 'UNPAID', providerState: 'ACQ.TRADE_NOT_EXIST', transactionId: null, amount: null, paidAt: null,
    });
  });

  test('ACQ.SYSTEM_ERROR, code 20000 and HTTP 5xx are ProviderUnavailable', async () => {
    await expect(alipay().query(trade('system-error'))).rejects.toThrow(ProviderUnavailable);
    await expect(alipay().query(trade('unavailable'))).rejects.toThrow(ProviderUnavailable);
    await expect(alipay().query(trade('http-502'))).rejects.toThrow(ProviderUnavailable);
  });

  test('a timeout is ProviderUnavailable', async () => {
    const err = await provider({ timeout: 300 }).query(trade('slow')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderUnavailable);
    expect((err as Error).message).toMatch(/timeout/i);
  });

  test('gateway down is ProviderUnavailable', async () => {
    const dead = createServer();
    const port = await listen(dead);
    await new Promise((resolve) => dead.close(resolve));
    const down = provider({ gateway: `http://127.0.0.1:${port}/gateway.do` });
    await expect(down.query('T-down')).rejects.toThrow(ProviderUnavailable);
    await expect(down.close('T-down')).rejects.toThrow(ProviderUnavailable);
  });

  test('other Alipay errors are AlipayApiError with code and sub code', async () => {
    const err = await alipay().query(trade('invalid-parameter')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AlipayApiError);
    expect(err).toMatchObject({ code: '40004', subCode: 'ACQ.INVALID_PARAMETER' });
    expect((err as Error).message).toContain('参数无效');
  });

  test('a response not signed by Alipay is refused, never read as a trade state', async () => {
    const forged = await alipay().query(trade('bad-sign')).catch((e: unknown) => e);
    expect(forged).toBeInstanceOf(AlipayApiError);
    expect(forged).toMatchObject({ code: 'INVALID_RESPONSE' });
    const unsigned = await alipay().query(trade('unsigned-error')).catch((e: unknown) => e);
    expect(unsigned).toBeInstanceOf(AlipayApiError);
    expect(unsigned).toMatchObject({ code: 'INVALID_RESPONSE' });
  });

  test('requests are signed with the app key, in Beijing time, whatever the key format', async () => {
    const keyFile = join(tmp, 'app-private-pkcs8.pem');
    writeFileSync(keyFile, pem.appPrivatePkcs8);
    const clock = { now: () => new Date('2030-01-02T03:04:05.678Z') };
    const variants = [
      provider({ clock }), // PKCS#1 PEM text
      provider({ clock, privateKey: keyFile, alipayPublicKey: alipayPublicBase64 }), // PKCS#8 file, bare base64
      provider({ clock, privateKey: `\n${pem.appPrivatePkcs8}\n\n` }), // PKCS#8 text with stray newlines
    ];
    for (const p of variants) {
      const orderNo = trade('waiting');
      expect(await p.query(orderNo)).toMatchObject({ state: 'UNPAID' });
      const request = received.at(-1)!;
      expect(request.signatureOk).toBe(true);
      expect(request.params).toMatchObject({
        method: 'alipay.trade.query', app_id: APP_ID, sign_type: 'RSA2', charset: 'utf-8', version: '1.0',
        timestamp: '2030-01-02 11:04:05',
      });
      expect(JSON.parse(request.params.biz_content)).toEqual({ out_trade_no: orderNo });
    }
    expect(received.every((r) => r.signatureOk)).toBe(true);
  });
});

// ---- close ----

test('query: with ALIPAY_SELLER_ID set, a trade paid to another seller is not read', async () => {
  const ours = provider({ sellerId: '2088102177000000' });
  await expect(ours.query(trade('paid', { sellerId: '2088102177000000' }))).resolves.toMatchObject({ state: 'PAID' });
  await expect(ours.query(trade('paid', { sellerId: '2088999999999999' }))).rejects.toMatchObject({ name: 'AlipayApiError', code: 'MISMATCH' });
  // Unset, nothing is checked: a deployment that does not know its seller id keeps working.
  await expect(provider().query(trade('paid', { sellerId: '2088999999999999' }))).resolves.toMatchObject({ state: 'PAID' });
});

describe('close', () => {
  test('closes a waiting trade', async () => {
    const orderNo = trade('waiting');
    await provider().close(orderNo);
    expect(received.at(-1)).toMatchObject({ method: 'alipay.trade.close', signatureOk: true });
    expect(trades.get(orderNo)?.kind).toBe('closed');
  });

  test('a missing trade and an already closed one are fine', async () => {
    await expect(provider().close(trade('not-exist'))).resolves.toBeUndefined();
    await expect(provider().close(trade('closed'))).resolves.toBeUndefined();
  });

  test('a paid trade is not closable: an error, so the order is not expired here', async () => {
    const err = await provider().close(trade('paid')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AlipayApiError);
    expect(err).toMatchObject({ subCode: 'ACQ.TRADE_STATUS_ERROR' });
    expect((err as Error).message).toContain('TRADE_SUCCESS');
  });

  test('a system error is ProviderUnavailable', async () => {
    await expect(provider().close(trade('system-error'))).rejects.toThrow(ProviderUnavailable);
  });
});

// ---- refunds ----

describe('refunds', () => {
  const request = (orderNo: string, outRefundNo: string, amount = 1234) => ({
    outRefundNo, orderNo, transactionId: `2024050122001${orderNo}`, amount, total: 1234, reason: 'paid twice', notifyUrl: 'http://unused.example/notify',
  });

  test('a paid trade is refunded once per out_request_no: signed, in yuan, asked again it moves no more money', async () => {
    const orderNo = trade('paid');
    expect(await provider().refund(request(orderNo, 'R7-1'))).toEqual({
      state: 'SUCCEEDED', providerState: 'REFUND_SUCCESS', amount: 1234, finishedAt: new Date('2024-05-02T02:00:00Z'),
    });
    const sent = received.at(-1)!;
    expect(sent).toMatchObject({ method: 'alipay.trade.refund', signatureOk: true });
    expect(JSON.parse(sent.params.biz_content)).toEqual({
      out_trade_no: orderNo, trade_no: `2024050122001${orderNo}`, out_request_no: 'R7-1', refund_amount: '12.34', refund_reason: 'paid twice',
    });
    // The same attempt again (a retry after a lost answer): fund_change N, the query confirms the one refund.
    expect(await provider().refund(request(orderNo, 'R7-1'))).toMatchObject({ state: 'SUCCEEDED', amount: 1234 });
    expect(received.at(-1)).toMatchObject({ method: 'alipay.trade.fastpay.refund.query', signatureOk: true });
    expect([...trades.get(orderNo)!.refunds!.values()]).toEqual(['12.34']);
    // A second attempt (a new out_request_no) of a trade refunded whole is refused: FAILED, nothing moves.
    expect(await provider().refund(request(orderNo, 'R7-2'))).toEqual({ state: 'FAILED', providerState: 'ACQ.REFUND_AMT_NOT_EQUAL_TOTAL', amount: null, finishedAt: null });
  });

  test('query: REFUND_SUCCESS is SUCCEEDED; no refund_status (never received) is NOT_FOUND, as is a trade that does not exist', async () => {
    const orderNo = trade('paid', { totalAmount: '0.50' });
    expect(await provider().queryRefund(request(orderNo, 'R8-1'))).toEqual({ state: 'NOT_FOUND', providerState: 'NO_REFUND_STATUS', amount: null, finishedAt: null });
    await provider().refund(request(orderNo, 'R8-1', 50));
    expect(await provider().queryRefund(request(orderNo, 'R8-1'))).toMatchObject({ state: 'SUCCEEDED', amount: 50 });
    expect(JSON.parse(received.at(-1)!.params.biz_content)).toMatchObject({ out_request_no: 'R8-1', query_options: ['gmt_refund_pay'] });
    expect(await provider().queryRefund(request(trade('not-exist'), 'R9-1'))).toMatchObject({ state: 'NOT_FOUND', providerState: 'ACQ.TRADE_NOT_EXIST' });
  });

  test('refused refunds are FAILED; system errors and unsigned answers say nothing (thrown, asked about again)', async () => {
    expect(await provider().refund(request(trade('not-exist'), 'R10-1'))).toMatchObject({ state: 'FAILED', providerState: 'ACQ.TRADE_NOT_EXIST' });
    expect(await provider().refund(request(trade('closed'), 'R11-1'))).toMatchObject({ state: 'FAILED', providerState: 'ACQ.TRADE_STATUS_ERROR' });
    await expect(provider().refund(request(trade('system-error'), 'R12-1'))).rejects.toThrow(ProviderUnavailable);
    await expect(provider().queryRefund(request(trade('unavailable'), 'R13-1'))).rejects.toThrow(ProviderUnavailable);
    await expect(provider().refund(request(trade('http-502'), 'R14-1'))).rejects.toThrow(ProviderUnavailable);
    await expect(provider().refund(request(trade('bad-sign'), 'R15-1'))).rejects.toMatchObject({ name: 'AlipayApiError', code: 'INVALID_RESPONSE' });
    await expect(provider().queryRefund(request(trade('invalid-parameter'), 'R16-1'))).rejects.toMatchObject({ name: 'AlipayApiError', subCode: 'ACQ.INVALID_PARAMETER' });
  });
});

// ---- create ----

describe('create', () => {
  test('builds a signed alipay.trade.wap.pay URL on the gateway without calling it', async () => {
    const clock = { now: () => new Date('2030-01-02T03:04:05.678Z') };
    const before = received.length;
    const intent = await provider({ clock, quitUrl: 'https://shop.example/orders' }).create({
      orderNo: 'D20300102000001',
      amount: 123456,
      description: 'VIP 月卡 a/b=c&d',
      expiresAt: new Date('2030-01-02T03:19:05.999Z'),
      notifyUrl: 'https://api.example/api/payments/alipay/notify',
      clientIp: '203.0.113.9',
    });
    expect(received.length).toBe(before);
    expect(intent).toMatchObject({
      provider: 'alipay', prepayId: null, codeUrl: null, expiresAt: new Date('2030-01-02T03:19:05Z'),
    });

    const url = new URL(intent.h5Url!);
    expect(`${url.origin}${url.pathname}`).toBe(gateway);
    const params = Object.fromEntries(url.searchParams);
    expect(params).toMatchObject({
      method: 'alipay.trade.wap.pay',
      app_id: APP_ID,
      charset: 'utf-8',
      version: '1.0',
      sign_type: 'RSA2',
      timestamp: '2030-01-02 11:04:05',
      notify_url: 'https://api.example/api/payments/alipay/notify',
    });
    expect(JSON.parse(params.biz_content)).toEqual({
      out_trade_no: 'D20300102000001',
      total_amount: '1234.56',
      subject: 'VIP 月卡 a b c d',
      product_code: 'QUICK_WAP_WAY',
      time_expire: '2030-01-02 11:19:05',
      quit_url: 'https://shop.example/orders',
    });
    // What the real gateway does with the URL: checks the app's signature over every other parameter.
    expect(requestSignatureOk(params)).toBe(true);
    expect(requestSignatureOk({ ...params, biz_content: params.biz_content.replace('1234.56', '0.01') })).toBe(false);
  });

  test('1 cent is "0.01"; a non-integer amount is refused', async () => {
    const base = { orderNo: 'D1', description: 'x', expiresAt: new Date(Date.now() + 60_000), notifyUrl: 'https://api.example/n' };
    const intent = await provider().create({ ...base, amount: 1 });
    expect(JSON.parse(new URL(intent.h5Url!).searchParams.get('biz_content')!).total_amount).toBe('0.01');
    await expect(provider().create({ ...base, amount: 12.5 })).rejects.toThrow(RangeError);
  });
});

// ---- notifications ----

describe('verifyCallback', () => {
  const FORM = { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' };

  function notifyFields(overrides: Record<string, string | undefined> = {}): Record<string, string> {
    const fields: Record<string, string | undefined> = {
      gmt_create: '2024-05-01 12:34:50',
      charset: 'utf-8',
      gmt_payment: '2024-05-01 12:34:56',
      notify_time: '2024-05-01 12:35:00',
      subject: 'VIP 月卡 100% off & more+',
      buyer_id: '2088102177846880',
      invoice_amount: '1234.56',
      version: '1.0',
      notify_id: '2024050100222123456001234567890',
      fund_bill_list: '[{"amount":"1234.56","fundChannel":"ALIPAYACCOUNT"}]',
      notify_type: 'trade_status_sync',
      out_trade_no: 'D20240501000001',
      total_amount: '1234.56',
      trade_status: 'TRADE_SUCCESS',
      trade_no: '2024050122001400001',
      auth_app_id: APP_ID,
      receipt_amount: '1234.56',
      point_amount: '0.00',
      app_id: APP_ID,
      buyer_pay_amount: '1234.56',
      sign_type: 'RSA2',
      seller_id: '2088102177000000',
      ...overrides,
    };
    return Object.fromEntries(Object.entries(fields).filter((e): e is [string, string] => e[1] !== undefined));
  }

  /** As Alipay signs a notification: every field but sign and sign_type, sorted, raw values, RSA2. */
  function signedBody(fields: Record<string, string>, key = pem.alipayPrivate): string {
    const content = Object.keys(fields)
      .filter((k) => k !== 'sign' && k !== 'sign_type')
      .sort()
      .map((k) => `${k}=${fields[k]}`)
      .join('&');
    const sign = createSign('RSA-SHA256').update(content, 'utf8').sign(key, 'base64');
    return new URLSearchParams({ ...fields, sign }).toString();
  }

  const post = (body: string, headers: Record<string, string> = FORM) =>
    provider().verifyCallback({ headers, body: Buffer.from(body, 'utf8') });

  async function rejection(body: string, headers?: Record<string, string>): Promise<CallbackRejected> {
    const err = await post(body, headers).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CallbackRejected);
    return err as CallbackRejected;
  }

  test('a form signed by Alipay is accepted and decoded', async () => {
    expect(await post(signedBody(notifyFields()))).toEqual({
      replayKey: null,
      notificationId: '2024050100222123456001234567890',
      orderNo: 'D20240501000001',
      transactionId: '2024050122001400001',
      state: 'PAID',
      amount: 123456,
      paidAt: new Date('2024-05-01T04:34:56Z'),
    });
  });

  test('TRADE_CLOSED is CLOSED, timed by notify_time when there is no gmt_payment', async () => {
    const body = signedBody(notifyFields({ trade_status: 'TRADE_CLOSED', gmt_payment: undefined, total_amount: '0.01' }));
    expect(await post(body)).toMatchObject({ state: 'CLOSED', amount: 1, paidAt: new Date('2024-05-01T04:35:00Z') });
  });

  test('a tampered field, a wrong key, a missing sign, RSA1 or another app is 401', async () => {
    const tampered = signedBody(notifyFields()).replace('total_amount=1234.56', 'total_amount=0.01');
    expect(tampered).toContain('total_amount=0.01');
    expect((await rejection(tampered)).status).toBe(401);
    expect((await rejection(signedBody(notifyFields(), pem.appPrivatePkcs8))).status).toBe(401);
    expect((await rejection(new URLSearchParams(notifyFields()).toString())).status).toBe(401);
    expect((await rejection(signedBody(notifyFields({ sign_type: 'RSA' })))).status).toBe(401);
    expect((await rejection(signedBody(notifyFields({ app_id: '2021000000000999' })))).status).toBe(401);
  });

  test('a malformed body is 400', async () => {
    expect((await rejection('')).status).toBe(400);
    expect((await rejection(signedBody(notifyFields({ out_trade_no: undefined })))).status).toBe(400);
    expect((await rejection(signedBody(notifyFields({ total_amount: '12.345' })))).status).toBe(400);
    expect((await rejection(signedBody(notifyFields({ gmt_payment: '2024-05-01T12:34:56Z' })))).status).toBe(400);
    expect((await rejection(signedBody(notifyFields()), { 'content-type': 'application/json' })).status).toBe(400);
    const twice = `${signedBody(notifyFields())}&trade_status=TRADE_SUCCESS`;
    expect((await rejection(twice)).status).toBe(400);
  });

  test('with ALIPAY_SELLER_ID set, a notification for another seller (or none named) is 400', async () => {
    const ours = provider({ sellerId: '2088102177000000' });
    const verify = (fields: Record<string, string>) => ours.verifyCallback({ headers: FORM, body: Buffer.from(signedBody(fields), 'utf8') });
    await expect(verify(notifyFields())).resolves.toMatchObject({ state: 'PAID' });
    for (const seller of ['2088102177000001', undefined]) {
      const err = await verify(notifyFields({ seller_id: seller })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CallbackRejected);
      expect(err).toMatchObject({ status: 400, message: expect.stringContaining('seller_id') });
    }
  });

  test('answers: the text success, or fail with the given status', () => {
    const alipay = provider();
    expect(alipay.accepted()).toEqual({ status: 200, contentType: 'text/plain; charset=utf-8', body: 'success' });
    expect(alipay.failed(500, 'database down')).toEqual({ status: 500, contentType: 'text/plain; charset=utf-8', body: 'fail' });
  });
});

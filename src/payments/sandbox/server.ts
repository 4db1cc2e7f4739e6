/**
 * The payment sandbox: a small HTTP service of our own that speaks WeChat Pay API v3's shapes, so the
 * real WechatPayProvider (../wechat/client.ts) runs against it in development and tests.
 *
 * It generates its keys at start: the "WeChat Pay public key" (RSA-2048, id PUB_KEY_ID_ + 32 hex),
 * a merchant key pair for a generated mchid, and a 32-character APIv3 key. It checks the merchant's
 * request signatures (401 SIGN_ERROR otherwise), keeps trades in memory, signs every v3 answer, and
 * encrypts + signs the callbacks it POSTs to a trade's notify_url. It never retries a callback on its
 * own (WeChat does, for about a day): `replay` / `duplicate` below play the retries.
 *
 * ── WeChat Pay v3 endpoints (signed, as WeChat answers them) ─────────────────────────────────────
 *   POST /v3/pay/transactions/native|h5|jsapi         → 200 {code_url} | {h5_url} | {prepay_id}
 *   GET  /v3/pay/transactions/out-trade-no/{no}?mchid → 200 transaction | 404 ORDERNOTEXIST
 *   POST /v3/pay/transactions/out-trade-no/{no}/close → 204 (also for unknown or closed trades,
 *                                                        as WeChat does) | 400 ORDERPAID
 *   POST /v3/refund/domestic/refunds, GET /v3/refund/domestic/refunds/{no}: refunds, ./refunds.ts
 *
 * ── Control API (JSON over HTTP, unsigned) ────────────────────────────────────────────────────────
 *   GET  /sandbox/credentials
 *        → { baseUrl, mchid, appid, serialNo, privateKey, apiV3Key, publicKeyId, publicKey }
 *          everything a WechatPayProvider needs (PEM texts); regenerated at every start.
 *   GET  /sandbox/trades                 → [trade, …]     GET /sandbox/trades/{orderNo} → trade
 *          trade = { orderNo, tradeType, state (NOTPAY|SUCCESS|CLOSED|PAYERROR), amount, paidAmount,
 *                    transactionId, successTime, timeExpire, notifyUrl, createdAt, lastNotificationId }
 *   POST /sandbox/trades/{orderNo}/pay    body (optional) { "callback": "send" | "lose",
 *                                                            "amount": cents, "late": true,
 *                                                            "appid": "wx…", "currency": "USD" }
 *        Marks the trade SUCCESS with a transaction id 4200…, `amount` (default: the trade's) as the
 *        paid total, then POSTs the callback to notify_url unless "lose" (it is kept for `replay`).
 *        `late` pays a trade past its time_expire (WeChat would not: for "paid after expiry" tests).
 *        `appid` / `currency` make the transaction (callback and query answer alike) name another
 *        app or currency than the trade was created with: what a client must refuse.
 *        → { trade, callback: { status, body } | null }   (status 0 + error when unreachable)
 *   POST /sandbox/trades/{orderNo}/fail   → PAYERROR        → { trade }
 *   POST /sandbox/trades/{orderNo}/close  → CLOSED          → { trade }
 *   POST /sandbox/trades/{orderNo}/callbacks/{kind}  (the trade must be paid) → { status, body }
 *        probe      the payment callback with a WECHATPAY/SIGNTEST/ signature     (expect 401)
 *        replay     the last callback's exact bytes and headers again             (expect 204 + dedupe)
 *        duplicate  the same body (same id, same transaction), fresh timestamp, nonce, signature
 *        stale      the same body signed correctly with a timestamp 10 minutes old (expect 401)
 *        forged     the same body signed with a key that is not the platform key   (expect 401)
 *   GET  /sandbox/faults   POST /sandbox/faults  body { "delayMs": n, "corruptSignatures": bool,
 *                                                      "systemError": bool }  → the faults now
 *        delayMs delays every v3 answer (benchmarks: "WeChat answering in 20 ms"); corruptSignatures
 *        signs v3 answers wrongly (the client must refuse them); systemError answers 500 SYSTEMERROR.
 *   Refunds' control routes (/sandbox/trades/{orderNo}/refund-plan, /sandbox/refunds/…): ./refunds.ts
 *   Errors: 404 { error } for an unknown trade, 409 { error } for a move its state forbids.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash, generateKeyPair, randomBytes, randomInt, randomUUID, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { request } from 'undici';
import {
  MAX_CLOCK_SKEW_SECONDS,
  SIGNTEST_PREFIX,
  encryptResource,
  makeNonce,
  parseAuthorization,
  requestMessage,
  signResponseHeaders,
  verifyMessage,
} from '../wechat/crypto.js';
import { rfc3339Beijing } from '../wechat/client.js';
import { HttpError, parseBody, readBody, sendJson, type Delivery, type SandboxCallback } from './http.js';
import { refundDesk, type SandboxRefund } from './refunds.js';

export type { SandboxCallback } from './http.js';
export type { SandboxRefund } from './refunds.js';

/** Printed by `npm run sandbox:pay`; the full text is the comment above. */
export const CONTROL_API_SUMMARY = [
  'GET  /sandbox/credentials',
  'GET  /sandbox/trades[/{orderNo}]',
  'POST /sandbox/trades/{orderNo}/pay      {"callback":"send"|"lose","amount":cents,"late":true,"appid":"wx…","currency":"CNY"}',
  'POST /sandbox/trades/{orderNo}/fail',
  'POST /sandbox/trades/{orderNo}/close',
  'POST /sandbox/trades/{orderNo}/callbacks/{probe|replay|duplicate|stale|forged}',
  'GET|POST /sandbox/faults                {"delayMs":n,"corruptSignatures":bool,"systemError":bool}',
  'POST /sandbox/trades/{orderNo}/refund-plan {"status":"SUCCESS"|"PROCESSING"|"ABNORMAL"|"CLOSED","callback":"send"|"lose"}',
  'GET  /sandbox/refunds[/{outRefundNo}]',
  'POST /sandbox/refunds/{outRefundNo}/finish {"status":"SUCCESS"|"ABNORMAL"|"CLOSED","callback":"send"|"lose"}',
  'POST /sandbox/refunds/{outRefundNo}/callbacks/{probe|replay|duplicate|stale|forged}',
].join('\n');

export interface SandboxOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  host?: string;
  /** Delay before every v3 answer, in ms. */
  delayMs?: number;
}

export interface SandboxCredentials {
  baseUrl: string;
  mchid: string;
  appid: string;
  serialNo: string;
  /** The merchant private key, PKCS#8 PEM. */
  privateKey: string;
  apiV3Key: string;
  publicKeyId: string;
  /** The "WeChat Pay public key", SPKI PEM. */
  publicKey: string;
}

export type SandboxTradeState = 'NOTPAY' | 'SUCCESS' | 'CLOSED' | 'PAYERROR';

export interface SandboxTrade {
  orderNo: string;
  tradeType: 'NATIVE' | 'MWEB' | 'JSAPI';
  appid: string;
  description: string;
  notifyUrl: string;
  amount: number;
  timeExpire: string | null;
  state: SandboxTradeState;
  /** CNY unless a payment said otherwise (`pay` with "currency"). */
  currency: string;
  paidAmount: number | null;
  transactionId: string | null;
  successTime: string | null;
  createdAt: string;
  /** What create answered, so an identical create is answered the same (WeChat is idempotent there). */
  prepay: Record<string, string>;
  lastCallback: SandboxCallback | null;
}

export interface SandboxFaults {
  delayMs: number;
  corruptSignatures: boolean;
  systemError: boolean;
}

export interface SandboxHandle {
  url: string;
  credentials: SandboxCredentials;
  trades: ReadonlyMap<string, SandboxTrade>;
  /** Refunds, by out_refund_no. */
  refunds: ReadonlyMap<string, SandboxRefund>;
  /** Mutable: tests may flip a fault directly instead of POSTing /sandbox/faults. */
  faults: SandboxFaults;
  close(): Promise<void>;
}

const generateRsa = promisify(generateKeyPair);
/** WeChat gives up on a callback answer after about 5 s. */
const CALLBACK_TIMEOUT_MS = 5_000;
const STALE_CALLBACK_MS = 10 * 60 * 1000;
const OUT_TRADE_NO = /^[0-9A-Za-z_\-*|]{6,32}$/;

export async function startSandbox(opts: SandboxOptions = {}): Promise<SandboxHandle> {
  const [platform, merchant] = await Promise.all([generateRsa('rsa', { modulusLength: 2048 }), generateRsa('rsa', { modulusLength: 2048 })]);
  let forgedKey: KeyObject | null = null; // made on first use: most runs never forge
  const publicKeyId = `PUB_KEY_ID_${randomBytes(16).toString('hex')}`;
  const mchid = `19${String(randomInt(0, 1e8)).padStart(8, '0')}`;
  const appid = `wx${randomBytes(8).toString('hex')}`;
  const serialNo = randomBytes(20).toString('hex').toUpperCase();
  const apiV3Key = makeNonce(32);
  const trades = new Map<string, SandboxTrade>();
  const faults: SandboxFaults = { delayMs: opts.delayMs ?? 0, corruptSignatures: false, systemError: false };
  const timers = new Set<NodeJS.Timeout>();

  // ── v3 answers ──────────────────────────────────────────────────────────────────────────────────
  function answerV3(res: ServerResponse, status: number, payload: object | null): void {
    const body = Buffer.from(payload === null ? '' : JSON.stringify(payload));
    const headers = signResponseHeaders(platform.privateKey, publicKeyId, body);
    // A signature that is well-formed but over other bytes: what a tampered answer looks like.
    if (faults.corruptSignatures) headers['Wechatpay-Signature'] = signResponseHeaders(platform.privateKey, publicKeyId, Buffer.concat([body, Buffer.from(' ')]))['Wechatpay-Signature']!;
    const send = (): void => {
      res.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Request-ID': randomUUID(), 'Content-Length': body.length });
      res.end(body);
    };
    if (faults.delayMs <= 0) return send();
    const t = setTimeout(() => {
      timers.delete(t);
      send();
    }, faults.delayMs);
    timers.add(t);
  }

  /** Why a v3 request is not signed by our merchant, or null when it is. */
  function signError(req: IncomingMessage, raw: Buffer): string | null {
    const auth = parseAuthorization(req.headers.authorization);
    if (!auth) return 'missing or malformed Authorization';
    if (auth.mchid !== mchid) return `unknown mchid ${auth.mchid}`;
    if (auth.serial_no !== serialNo) return `unknown merchant serial ${auth.serial_no}`;
    if (!(Math.abs(Date.now() / 1000 - Number(auth.timestamp)) <= MAX_CLOCK_SKEW_SECONDS)) return 'timestamp out of window';
    // What the merchant signed is the path and query exactly as they arrived.
    const message = requestMessage(req.method ?? 'GET', req.url ?? '/', auth.timestamp, auth.nonce_str, raw);
    return verifyMessage(merchant.publicKey, message, auth.signature) ? null : 'signature does not verify';
  }

  function transaction(t: SandboxTrade): Record<string, unknown> {
    const base = { appid: t.appid, mchid, out_trade_no: t.orderNo, trade_type: t.tradeType, trade_state: t.state, attach: '' };
    const descriptions: Record<SandboxTradeState, string> = { NOTPAY: '订单未支付', SUCCESS: '支付成功', CLOSED: '订单已关闭', PAYERROR: '支付失败' };
    if (t.state !== 'SUCCESS') return { ...base, trade_state_desc: descriptions[t.state], amount: { total: t.amount, currency: t.currency, payer_currency: t.currency } };
    return {
      ...base,
      trade_state_desc: descriptions.SUCCESS,
      transaction_id: t.transactionId,
      bank_type: 'OTHERS',
      success_time: t.successTime,
      payer: { openid: openid(t.orderNo) },
      amount: { total: t.paidAmount, payer_total: t.paidAmount, currency: t.currency, payer_currency: t.currency },
    };
  }

  function createTrade(kind: string, raw: Buffer): Record<string, string> {
    const b = parseBody(raw);
    const total = (b.amount as Record<string, unknown> | undefined)?.total;
    const param = (ok: boolean, what: string): void => {
      if (!ok) throw new HttpError(400, 'PARAM_ERROR', `参数错误: ${what}`);
    };
    param(b.mchid === mchid, 'mchid');
    if (b.appid !== appid) throw new HttpError(400, 'APPID_MCHID_NOT_MATCH', 'appid和mch_id不匹配');
    param(typeof b.description === 'string' && b.description.length > 0, 'description');
    param(typeof b.out_trade_no === 'string' && OUT_TRADE_NO.test(b.out_trade_no), 'out_trade_no');
    param(typeof b.notify_url === 'string' && /^https?:\/\//.test(b.notify_url), 'notify_url');
    param(Number.isInteger(total) && (total as number) > 0, 'amount.total');
    const expire = typeof b.time_expire === 'string' ? new Date(b.time_expire) : null;
    param(b.time_expire === undefined || (!!expire && !Number.isNaN(expire.getTime()) && expire.getTime() > Date.now()), 'time_expire');
    const scene = b.scene_info as Record<string, unknown> | undefined;
    if (kind === 'h5') param(typeof scene?.payer_client_ip === 'string' && !!(scene?.h5_info as Record<string, unknown> | undefined)?.type, 'scene_info');
    if (kind === 'jsapi') param(typeof (b.payer as Record<string, unknown> | undefined)?.openid === 'string', 'payer.openid');
    const orderNo = b.out_trade_no as string;
    const existing = trades.get(orderNo);
    if (existing) {
      if (existing.state === 'SUCCESS') throw new HttpError(400, 'ORDERPAID', '该订单已支付');
      if (existing.state === 'CLOSED') throw new HttpError(400, 'ORDER_CLOSED', '订单已关闭');
      if (existing.amount !== total || existing.description !== b.description) throw new HttpError(400, 'INVALID_REQUEST', '201 商户订单号重复');
      return existing.prepay;
    }
    const prepayId = `wx${Date.now()}${randomBytes(8).toString('hex')}`;
    const prepay: Record<string, string> =
      kind === 'native'
        ? { code_url: `weixin://wxpay/bizpayurl?pr=${makeNonce(7)}` }
        : kind === 'h5'
          ? { h5_url: `https://wx.tenpay.com/cgi-bin/mmpayweb-bin/checkmweb?prepay_id=${prepayId}&package=${randomInt(1e9)}` }
          : { prepay_id: prepayId };
    trades.set(orderNo, {
      orderNo,
      tradeType: kind === 'native' ? 'NATIVE' : kind === 'h5' ? 'MWEB' : 'JSAPI',
      appid,
      description: b.description as string,
      notifyUrl: b.notify_url as string,
      amount: total as number,
      timeExpire: (b.time_expire as string | undefined) ?? null,
      state: 'NOTPAY',
      currency: 'CNY',
      paidAmount: null,
      transactionId: null,
      successTime: null,
      createdAt: rfc3339Beijing(new Date()),
      prepay,
      lastCallback: null,
    });
    return prepay;
  }

  async function v3(req: IncomingMessage, res: ServerResponse, url: URL, raw: Buffer): Promise<void> {
    const why = signError(req, raw);
    if (why) throw new HttpError(401, 'SIGN_ERROR', `签名错误: ${why}`);
    if (faults.systemError) throw new HttpError(500, 'SYSTEMERROR', '系统错误');
    const refund = refunds.v3(req.method ?? 'GET', url, raw);
    if (refund) return answerV3(res, 200, refund);
    const create = /^\/v3\/pay\/transactions\/(native|h5|jsapi)$/.exec(url.pathname);
    if (create && req.method === 'POST') return answerV3(res, 200, createTrade(create[1]!, raw));
    const byNo = /^\/v3\/pay\/transactions\/out-trade-no\/([^/]+)(\/close)?$/.exec(url.pathname);
    if (!byNo) throw new HttpError(404, 'NOT_FOUND', '请求的资源不存在');
    const trade = trades.get(decodeURIComponent(byNo[1]!));
    if (!byNo[2] && req.method === 'GET') {
      if (url.searchParams.get('mchid') !== mchid) throw new HttpError(400, 'PARAM_ERROR', '参数错误: mchid');
      if (!trade) throw new HttpError(404, 'ORDERNOTEXIST', '订单不存在');
      return answerV3(res, 200, transaction(trade));
    }
    if (byNo[2] && req.method === 'POST') {
      if (parseBody(raw).mchid !== mchid) throw new HttpError(400, 'PARAM_ERROR', '参数错误: mchid');
      if (trade?.state === 'SUCCESS') throw new HttpError(400, 'ORDERPAID', '订单已支付');
      if (trade) trade.state = 'CLOSED';
      return answerV3(res, 204, null);
    }
    throw new HttpError(405, 'INVALID_REQUEST', 'method not allowed');
  }

  // ── callbacks ───────────────────────────────────────────────────────────────────────────────────
  /** A notification as WeChat sends it: `plaintext` AES-256-GCM encrypted with the APIv3 key, the body signed. */
  function notification(url: string, eventType: string, summary: string, originalType: string, plaintext: object): SandboxCallback {
    const notificationId = randomUUID();
    const resource = { original_type: originalType, ...encryptResource(apiV3Key, JSON.stringify(plaintext), originalType) };
    const event = { id: notificationId, create_time: rfc3339Beijing(new Date()), resource_type: 'encrypt-resource', event_type: eventType, summary, resource };
    const body = Buffer.from(JSON.stringify(event));
    return { url, notificationId, body, headers: signResponseHeaders(platform.privateKey, publicKeyId, body) };
  }

  function newCallback(t: SandboxTrade): SandboxCallback {
    return notification(t.notifyUrl, 'TRANSACTION.SUCCESS', '支付成功', 'transaction', transaction(t));
  }

  async function deliver(cb: SandboxCallback, headers: Record<string, string> = cb.headers): Promise<Delivery> {
    try {
      const res = await request(cb.url, {
        method: 'POST',
        headers: { ...headers, 'Content-Type': 'application/json', 'User-Agent': 'Mozilla/4.0 (deadline payment sandbox)' },
        body: cb.body, // the exact bytes that were signed
        signal: AbortSignal.timeout(CALLBACK_TIMEOUT_MS),
      });
      return { status: res.statusCode, body: await res.body.text() };
    } catch (e) {
      return { status: 0, body: '', error: (e as Error).message };
    }
  }

  /** A notification sent again as a retry, a replay or a forgery would arrive (`kind`). */
  async function resend(cb: SandboxCallback | null, what: string, kind: string): Promise<Delivery> {
    if (!cb) throw new HttpError(409, 'CONFLICT', `${what} has no notification yet`);
    const key = platform.privateKey;
    switch (kind) {
      case 'replay':
        return deliver(cb, cb.headers);
      case 'duplicate':
        return deliver(cb, signResponseHeaders(key, publicKeyId, cb.body));
      case 'stale':
        return deliver(cb, signResponseHeaders(key, publicKeyId, cb.body, new Date(Date.now() - STALE_CALLBACK_MS)));
      case 'probe': {
        const headers = signResponseHeaders(key, publicKeyId, cb.body);
        headers['Wechatpay-Signature'] = SIGNTEST_PREFIX + randomBytes(192).toString('base64');
        return deliver(cb, headers);
      }
      case 'forged': {
        forgedKey ??= (await generateRsa('rsa', { modulusLength: 2048 })).privateKey;
        return deliver(cb, signResponseHeaders(forgedKey, publicKeyId, cb.body));
      }
      default:
        throw new HttpError(400, 'BAD_REQUEST', `unknown callback kind ${kind}: probe, replay, duplicate, stale or forged`);
    }
  }

  const refunds = refundDesk({
    mchid,
    paidTrade: (orderNo) => {
      const t = trades.get(orderNo);
      return t?.state === 'SUCCESS' && t.transactionId && t.paidAmount !== null ? { transactionId: t.transactionId, paidAmount: t.paidAmount } : null;
    },
    notification,
    deliver: (cb) => deliver(cb),
    // After the answer's own delay: the notification of a refund follows its answer.
    later: (task) => {
      const t = setTimeout(() => {
        timers.delete(t);
        void task();
      }, faults.delayMs + 1);
      timers.add(t);
    },
    resend,
  });

  // ── control API ─────────────────────────────────────────────────────────────────────────────────
  function view(t: SandboxTrade): Record<string, unknown> {
    const { prepay: _prepay, lastCallback, ...rest } = t;
    return { ...rest, lastNotificationId: lastCallback?.notificationId ?? null };
  }

  function move(t: SandboxTrade, to: SandboxTradeState, from: SandboxTradeState[]): void {
    if (!from.includes(t.state)) throw new HttpError(409, 'CONFLICT', `trade ${t.orderNo} is ${t.state}; cannot become ${to}`);
    t.state = to;
  }

  async function control(req: IncomingMessage, url: URL, raw: Buffer): Promise<[number, unknown]> {
    const p = url.pathname;
    if (p === '/sandbox/credentials' && req.method === 'GET') return [200, credentials];
    if (p === '/sandbox/trades' && req.method === 'GET') return [200, [...trades.values()].map(view)];
    if (p === '/sandbox/faults') {
      if (req.method === 'POST') {
        const b = raw.length ? parseBody(raw) : {};
        if (typeof b.delayMs === 'number' && b.delayMs >= 0) faults.delayMs = b.delayMs;
        if (typeof b.corruptSignatures === 'boolean') faults.corruptSignatures = b.corruptSignatures;
        if (typeof b.systemError === 'boolean') faults.systemError = b.systemError;
      }
      return [200, faults];
    }
    const refundRoute = await refunds.control(req, url, raw);
    if (refundRoute) return refundRoute;
    const m = /^\/sandbox\/trades\/([^/]+)(?:\/(pay|fail|close)|\/callbacks\/([^/]+))?$/.exec(p);
    if (!m) throw new HttpError(404, 'NOT_FOUND', `no route ${req.method} ${p}`);
    const t = trades.get(decodeURIComponent(m[1]!));
    if (!t) throw new HttpError(404, 'NOT_FOUND', `no trade ${decodeURIComponent(m[1]!)}`);
    if (!m[2] && !m[3] && req.method === 'GET') return [200, view(t)];
    if (req.method !== 'POST') throw new HttpError(405, 'NOT_ALLOWED', `${req.method} ${p}`);
    if (m[3]) return [200, await resend(t.lastCallback, `trade ${t.orderNo} (pay it first)`, m[3])];
    if (m[2] === 'fail' || m[2] === 'close') {
      move(t, m[2] === 'fail' ? 'PAYERROR' : 'CLOSED', m[2] === 'fail' ? ['NOTPAY'] : ['NOTPAY', 'PAYERROR']);
      return [200, { trade: view(t) }];
    }
    const b = raw.length ? parseBody(raw) : {};
    if (b.amount !== undefined && !(Number.isInteger(b.amount) && (b.amount as number) > 0)) throw new HttpError(400, 'BAD_REQUEST', 'amount must be positive cents');
    for (const field of ['appid', 'currency'] as const) {
      if (b[field] !== undefined && !(typeof b[field] === 'string' && b[field])) throw new HttpError(400, 'BAD_REQUEST', `${field} must be a non-empty string`);
    }
    if (t.timeExpire && new Date(t.timeExpire).getTime() < Date.now() && b.late !== true) {
      throw new HttpError(409, 'CONFLICT', `trade ${t.orderNo} expired at ${t.timeExpire} (pass "late": true to pay it anyway)`);
    }
    move(t, 'SUCCESS', ['NOTPAY', 'PAYERROR']);
    t.paidAmount = (b.amount as number | undefined) ?? t.amount;
    if (b.appid !== undefined) t.appid = b.appid as string;
    if (b.currency !== undefined) t.currency = b.currency as string;
    t.transactionId = `4200${Array.from({ length: 24 }, () => randomInt(10)).join('')}`; // 28 digits, as WeChat's
    t.successTime = rfc3339Beijing(new Date());
    t.lastCallback = newCallback(t);
    const callback = b.callback === 'lose' ? null : await deliver(t.lastCallback, t.lastCallback.headers);
    return [200, { trade: view(t), callback }];
  }

  // ── the server ──────────────────────────────────────────────────────────────────────────────────
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sandbox');
    const isV3 = url.pathname.startsWith('/v3/');
    try {
      const raw = await readBody(req);
      if (isV3) return await v3(req, res, url, raw);
      const [status, payload] = await control(req, url, raw);
      sendJson(res, status, payload);
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(500, 'SYSTEMERROR', (e as Error).message);
      if (isV3) answerV3(res, err.status, { code: err.code, message: err.message });
      else sendJson(res, err.status, { error: err.message });
    }
  }

  const server: Server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const baseUrl = `http://${host}:${address.port}`;
  const credentials: SandboxCredentials = {
    baseUrl,
    mchid,
    appid,
    serialNo,
    privateKey: merchant.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    apiV3Key,
    publicKeyId,
    publicKey: platform.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };

  return {
    url: baseUrl,
    credentials,
    trades,
    refunds: refunds.refunds,
    faults,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close(() => resolve());
        server.closeAllConnections(); // keep-alive sockets from fetch would hold close() open
      }),
  };
}

/** A stable fake openid per order number, 28 characters like WeChat's. */
function openid(orderNo: string): string {
  return `o${createHash('sha256').update(orderNo).digest('base64url').slice(0, 27)}`;
}

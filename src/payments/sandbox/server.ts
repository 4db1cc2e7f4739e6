/**
 * The payment sandbox: a small HTTP service of our own that speaks WeChat Pay API v3's shapes, so the
 * real WechatPayProvider (../wechat/client.ts) runs against it in development and tests.
 *
 * It generates its keys at start: the "WeChat Pay public key" (RSA-2048, id PUB_KEY_ID_ + 32 hex),
 * a merchant key pair for a generated mchid, and a 32-character APIv3 key. It checks the merchant's
 * request signatures (401 SIGN_ERROR otherwise), keeps trades in memory (./trades.ts), signs every v3
 * answer (./v3.ts), and encrypts + signs the callbacks it POSTs to a trade's notify_url
 * (./callbacks.ts). It never retries a callback on its own (WeChat does, for about a day): `replay` /
 * `duplicate` below play the retries. The control API is ./control.ts; this file starts the server.
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
import { randomBytes, randomInt } from 'node:crypto';
import { makeNonce } from '../wechat/crypto.js';
import { callbacks as callbacksOf, generateRsa } from './callbacks.js';
import { controlApi } from './control.js';
import { HttpError, readBody, sendJson } from './http.js';
import { refundDesk, type SandboxRefund } from './refunds.js';
import { after, type SandboxFaults, type SandboxState, type SandboxTrade } from './trades.js';
import { v3Routes } from './v3.js';

export type { SandboxCallback } from './http.js';
export type { SandboxRefund } from './refunds.js';
export type { SandboxFaults, SandboxTrade, SandboxTradeState } from './trades.js';

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

export async function startSandbox(opts: SandboxOptions = {}): Promise<SandboxHandle> {
  const [platform, merchant] = await Promise.all([generateRsa('rsa', { modulusLength: 2048 }), generateRsa('rsa', { modulusLength: 2048 })]);
  const state: SandboxState = {
    publicKeyId: `PUB_KEY_ID_${randomBytes(16).toString('hex')}`,
    mchid: `19${String(randomInt(0, 1e8)).padStart(8, '0')}`,
    appid: `wx${randomBytes(8).toString('hex')}`,
    serialNo: randomBytes(20).toString('hex').toUpperCase(),
    apiV3Key: makeNonce(32),
    platform,
    merchant,
    trades: new Map(),
    faults: { delayMs: opts.delayMs ?? 0, corruptSignatures: false, systemError: false },
    timers: new Set(),
  };
  const callbacks = callbacksOf(state);
  const refunds = refundDesk({
    mchid: state.mchid,
    paidTrade: (orderNo) => {
      const t = state.trades.get(orderNo);
      return t?.state === 'SUCCESS' && t.transactionId && t.paidAmount !== null ? { transactionId: t.transactionId, paidAmount: t.paidAmount } : null;
    },
    notification: callbacks.notification,
    deliver: (cb) => callbacks.deliver(cb),
    // After the answer's own delay: the notification of a refund follows its answer.
    later: (task) => after(state, state.faults.delayMs + 1, () => void task()),
    resend: callbacks.resend,
  });
  const v3 = v3Routes(state, refunds);
  let credentials: SandboxCredentials | null = null; // known once the server listens
  const control = controlApi(state, { credentials: () => credentials!, refunds, callbacks });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://sandbox');
    const isV3 = url.pathname.startsWith('/v3/');
    try {
      const raw = await readBody(req);
      if (isV3) return v3.handle(req, res, url, raw);
      const [status, payload] = await control(req, url, raw);
      sendJson(res, status, payload);
    } catch (e) {
      const err = e instanceof HttpError ? e : new HttpError(500, 'SYSTEMERROR', (e as Error).message);
      if (isV3) v3.answer(res, err.status, { code: err.code, message: err.message });
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
  credentials = {
    baseUrl,
    mchid: state.mchid,
    appid: state.appid,
    serialNo: state.serialNo,
    privateKey: merchant.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    apiV3Key: state.apiV3Key,
    publicKeyId: state.publicKeyId,
    publicKey: platform.publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };

  return {
    url: baseUrl,
    credentials,
    trades: state.trades,
    refunds: refunds.refunds,
    faults: state.faults,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of state.timers) clearTimeout(t);
        state.timers.clear();
        server.close(() => resolve());
        server.closeAllConnections(); // keep-alive sockets from fetch would hold close() open
      }),
  };
}

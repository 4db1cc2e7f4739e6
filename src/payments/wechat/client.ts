/**
 * WeChat Pay API v3 behind `PaymentProvider` (Native or H5 payments). Every request is signed with
 * the merchant key; every answer is verified (signature over the raw body, key picked by
 * `Wechatpay-Serial`, 300 s window) before a byte of it is trusted. The same class, named 'sandbox',
 * talks to the project's sandbox (../sandbox/server.ts), which speaks the same wire format.
 */
import type { KeyObject } from 'node:crypto';
import { request } from 'undici';
import {
  CallbackRejected,
  ProviderUnavailable,
  type CallbackAnswer,
  type CreatePaymentRequest,
  type ProviderIntent,
  type ProviderNotification,
  type PaymentProvider,
  type RawCallback,
  type RefundNotification,
  type RefundRef,
  type RefundRequest,
  type RefundStatus,
  type TradeState,
  type TradeStatus,
  promised,
} from '../provider.js';
import { REFUND_EVENT_TYPES, REFUNDS_PATH, readRefund, readRefundNotification, refundBody } from './refunds.js';
import {
  SignatureRejected,
  buildAuthorization,
  decryptResource,
  loadPrivateKey,
  signedHeaders,
  unixSeconds,
  verifySigned,
  type Keyring,
  type Now,
} from './crypto.js';

export const WECHATPAY_BASE_URL = 'https://api.mch.weixin.qq.com';
/** A native `code_url` / H5 `h5_url` is valid for 2 hours (v3 docs), whatever time_expire says. */
const PREPAY_VALIDITY_MS = 2 * 60 * 60 * 1000;
/** `description` is string(127); cut by UTF-8 bytes so a Chinese title cannot overflow it. */
const DESCRIPTION_MAX_BYTES = 127;
/** Orders are priced in CNY cents; a payment in anything else does not pay one. */
const CURRENCY = 'CNY';

export type WechatTradeType = 'native' | 'h5';

export interface WechatPayOptions {
  name?: 'wechat' | 'sandbox';
  baseUrl?: string;
  mchid: string;
  appid: string;
  /** The merchant API certificate's serial (`WECHATPAY_SERIAL_NO`). */
  serialNo: string;
  /** The merchant private key: PEM text, a path to it, or a KeyObject. */
  privateKey: string | KeyObject;
  /** The 32-byte APIv3 key that decrypts callback resources. */
  apiV3Key: string;
  /** WeChat Pay public key and/or platform certificates, by serial. */
  keyring: Keyring;
  tradeType?: WechatTradeType;
  /** Per request, including reading the body. */
  timeoutMs?: number;
  clock?: Now;
}

/** A 4xx answer (or an answer that failed verification) from WeChat Pay: not retried as an outage. */
export class WechatPayError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(`WeChat Pay ${status} ${code}: ${message}`);
    this.name = 'WechatPayError';
  }
}

/** Error codes WeChat documents as "try again later": treated like an unreachable provider. */
const TRANSIENT_CODES = new Set(['SYSTEMERROR', 'SYSTEM_ERROR', 'FREQUENCY_LIMITED', 'BANKERROR']);

const STATES: Record<string, TradeState> = {
  SUCCESS: 'PAID',
  REFUND: 'PAID', // paid, then (partly) refunded: the money was taken
  NOTPAY: 'UNPAID',
  USERPAYING: 'UNPAID',
  ACCEPT: 'UNPAID', // accepted, deduction pending: not paid yet, may still become SUCCESS
  CLOSED: 'CLOSED',
  REVOKED: 'CLOSED',
  PAYERROR: 'CLOSED',
};

type Json = Record<string, unknown>;

export class WechatPayProvider implements PaymentProvider {
  readonly name: 'wechat' | 'sandbox';
  private readonly baseUrl: string;
  private readonly privateKey: KeyObject;
  private readonly tradeType: WechatTradeType;
  private readonly timeoutMs: number;
  private readonly now: Now;

  constructor(private readonly o: WechatPayOptions) {
    this.name = o.name ?? 'wechat';
    this.baseUrl = (o.baseUrl ?? WECHATPAY_BASE_URL).replace(/\/+$/, '');
    this.privateKey = loadPrivateKey(o.privateKey);
    this.tradeType = o.tradeType ?? 'native';
    this.timeoutMs = o.timeoutMs ?? 10_000;
    this.now = o.clock ?? (() => new Date());
    if (Buffer.byteLength(o.apiV3Key, 'utf8') !== 32) throw new Error('the WeChat Pay APIv3 key must be 32 bytes');
  }

  async create(req: CreatePaymentRequest): Promise<ProviderIntent> {
    if (!Number.isInteger(req.amount) || req.amount <= 0) throw new Error(`amount must be a positive number of cents, got ${req.amount}`);
    const now = this.now();
    if (req.expiresAt.getTime() <= now.getTime()) throw new Error(`order ${req.orderNo} expired at ${req.expiresAt.toISOString()}`);
    if (this.tradeType === 'h5' && !req.clientIp) throw new Error('an H5 payment needs the payer client IP');
    const body: Json = {
      appid: this.o.appid,
      mchid: this.o.mchid,
      description: truncateUtf8(req.description, DESCRIPTION_MAX_BYTES),
      out_trade_no: req.orderNo,
      time_expire: rfc3339Beijing(req.expiresAt),
      notify_url: req.notifyUrl,
      amount: { total: req.amount, currency: 'CNY' },
    };
    if (this.tradeType === 'h5') body.scene_info = { payer_client_ip: req.clientIp, h5_info: { type: 'Wap' } };
    const json = await this.call('POST', `/v3/pay/transactions/${this.tradeType}`, body);
    const url = json?.[this.tradeType === 'native' ? 'code_url' : 'h5_url'];
    if (typeof url !== 'string' || !url) throw new WechatPayError(200, 'BAD_RESPONSE', `no ${this.tradeType} payment URL in the answer`);
    return {
      provider: this.name,
      prepayId: null,
      codeUrl: this.tradeType === 'native' ? url : null,
      h5Url: this.tradeType === 'h5' ? url : null,
      expiresAt: new Date(Math.min(req.expiresAt.getTime(), now.getTime() + PREPAY_VALIDITY_MS)),
    };
  }

  async query(orderNo: string): Promise<TradeStatus> {
    let json: Json | null;
    try {
      json = await this.call('GET', `${tradePath(orderNo)}?mchid=${encodeURIComponent(this.o.mchid)}`);
    } catch (e) {
      // The buyer never opened the payment: WeChat does not know the trade yet.
      if (e instanceof WechatPayError && e.code === 'ORDERNOTEXIST') return unpaid('ORDERNOTEXIST');
      throw e;
    }
    if (!json || json.out_trade_no !== orderNo) throw new WechatPayError(200, 'BAD_RESPONSE', `answer is not about trade ${orderNo}`);
    // Signed by WeChat Pay, but about another merchant or app's trade: not ours to read (nor to expire on).
    const foreign = this.foreign(json);
    if (foreign) throw new WechatPayError(200, 'MISMATCH', `trade ${orderNo}: ${foreign}`);
    const word = String(json.trade_state);
    const state = STATES[word];
    if (!state) throw new WechatPayError(200, 'BAD_RESPONSE', `unknown trade_state ${word}`);
    if (state !== 'PAID') return { ...unpaid(word), state };
    const amount = json.amount as Json | undefined;
    // Only a paid answer must carry its currency (an unpaid one may leave `amount` out).
    if (amount?.currency !== CURRENCY) throw new WechatPayError(200, 'MISMATCH', `trade ${orderNo} was paid in ${String(amount?.currency)}, not ${CURRENCY}`);
    // `total`, as the callback reports it: a coupon lowers payer_total, not what the order was paid.
    const paid = amount?.total;
    const paidAt = new Date(String(json.success_time));
    if (typeof json.transaction_id !== 'string' || !Number.isInteger(paid) || Number.isNaN(paidAt.getTime())) {
      throw new WechatPayError(200, 'BAD_RESPONSE', `paid trade ${orderNo} lacks transaction_id, amount or success_time`);
    }
    return { state, providerState: word, transactionId: json.transaction_id, amount: paid as number, paidAt };
  }

  async close(orderNo: string): Promise<void> {
    try {
      await this.call('POST', `${tradePath(orderNo)}/close`, { mchid: this.o.mchid });
    } catch (e) {
      if (e instanceof WechatPayError && (e.code === 'ORDER_CLOSED' || e.code === 'ORDERNOTEXIST')) return;
      throw e;
    }
  }

  verifyCallback(callback: RawCallback): Promise<ProviderNotification> {
    return promised(() => this.readCallback(callback));
  }

  /** A refund notification (REFUND.SUCCESS / ABNORMAL / CLOSED), verified and decrypted as payment callbacks are. */
  verifyRefundCallback(callback: RawCallback): Promise<RefundNotification> {
    return promised(() => this.readRefundCallback(callback));
  }

  private readCallback(callback: RawCallback): ProviderNotification {
    const { id, resource: tx, replayKey } = this.openCallback(callback, ['TRANSACTION.SUCCESS']);
    const amount = tx.amount as Json | undefined;
    const paidAt = new Date(String(tx.success_time));
    const state = STATES[String(tx.trade_state)];
    const foreign = this.foreign(tx);
    if (foreign) throw new CallbackRejected(`callback ${foreign}`, 400);
    if (amount?.currency !== CURRENCY) throw new CallbackRejected(`callback is in ${String(amount?.currency)}, not ${CURRENCY}`, 400);
    if (typeof tx.out_trade_no !== 'string' || typeof tx.transaction_id !== 'string' || !state || !Number.isInteger(amount?.total) || Number.isNaN(paidAt.getTime())) {
      throw new CallbackRejected('callback transaction lacks out_trade_no, transaction_id, trade_state, amount or success_time', 400);
    }
    return { notificationId: id, orderNo: tx.out_trade_no, transactionId: tx.transaction_id, state, amount: amount.total as number, paidAt, replayKey };
  }

  private readRefundCallback(callback: RawCallback): RefundNotification {
    const { id, resource, replayKey } = this.openCallback(callback, REFUND_EVENT_TYPES);
    const refund = readRefundNotification(resource, this.o.mchid);
    if (typeof refund === 'string') throw new CallbackRejected(`refund notification ${refund}`, 400);
    return { notificationId: id, ...refund, replayKey };
  }

  /**
   * Verifies a notification's signature over its raw bytes (key by serial, 300 s window, probes
   * refused), checks its event type and decrypts its resource: the same steps for payments and refunds.
   */
  private openCallback(callback: RawCallback, eventTypes: readonly string[]): { id: string; resource: Json; replayKey: string } {
    try {
      verifySigned(this.o.keyring, signedHeaders(callback.headers), callback.body, this.now());
    } catch (e) {
      if (e instanceof SignatureRejected) throw new CallbackRejected(e.message, 401);
      throw e;
    }
    const event = parseJson(callback.body.toString('utf8'));
    const resource = event?.resource as Json | undefined;
    if (!event || typeof event.id !== 'string' || !event.id) throw new CallbackRejected('callback has no id', 400);
    if (!eventTypes.includes(String(event.event_type))) throw new CallbackRejected(`unexpected event_type ${String(event.event_type)}`, 400);
    if (!resource || resource.algorithm !== 'AEAD_AES_256_GCM' || typeof resource.ciphertext !== 'string' || typeof resource.nonce !== 'string') {
      throw new CallbackRejected('callback resource is not an AEAD_AES_256_GCM resource', 400);
    }
    let plaintext: string;
    try {
      plaintext = decryptResource(this.o.apiV3Key, {
        ciphertext: resource.ciphertext,
        nonce: resource.nonce,
        associated_data: typeof resource.associated_data === 'string' ? resource.associated_data : '',
      });
    } catch (e) {
      // Signed by WeChat but undecryptable: our APIv3 key is wrong. 400 keeps WeChat retrying meanwhile.
      throw new CallbackRejected(`callback resource does not decrypt: ${(e as Error).message}`, 400);
    }
    const decrypted = parseJson(plaintext);
    if (!decrypted) throw new CallbackRejected('callback resource is not a JSON object', 400);
    const signed = signedHeaders(callback.headers);
    return { id: event.id, resource: decrypted, replayKey: `${signed.timestamp}:${signed.nonce}` };
  }

  async refund(req: RefundRequest): Promise<RefundStatus> {
    let json: Json | null;
    try {
      json = await this.call('POST', REFUNDS_PATH, refundBody(req));
    } catch (e) {
      // WeChat refused the request (NOT_ENOUGH, RESOURCE_NOT_EXISTS, INVALID_REQUEST…): no refund exists
      // there. An answer we could not verify says nothing, whatever its status: asked about again later.
      if (e instanceof WechatPayError && e.status >= 400 && e.status < 500 && e.code !== 'RESPONSE_NOT_VERIFIED') {
        return { state: 'FAILED', providerState: e.code, amount: null, finishedAt: null };
      }
      throw e;
    }
    return this.refundIn(json, req.outRefundNo);
  }

  async queryRefund(ref: RefundRef): Promise<RefundStatus> {
    let json: Json | null;
    try {
      json = await this.call('GET', `${REFUNDS_PATH}/${encodeURIComponent(ref.outRefundNo)}`);
    } catch (e) {
      // Never received (a request lost on its way, or a crash before it was sent): asked for again.
      if (e instanceof WechatPayError && e.status === 404 && e.code === 'RESOURCE_NOT_EXISTS') {
        return { state: 'NOT_FOUND', providerState: e.code, amount: null, finishedAt: null };
      }
      throw e;
    }
    return this.refundIn(json, ref.outRefundNo);
  }

  private refundIn(json: Json | null, outRefundNo: string): RefundStatus {
    const refund = readRefund(json, outRefundNo);
    if (typeof refund === 'string') throw new WechatPayError(200, 'BAD_RESPONSE', refund);
    return refund;
  }

  /**
   * Why a transaction WeChat Pay signed is not one of ours, or null: another merchant (mchid) or
   * another app (appid) of a service provider, or the sandbox's trade shown to the real client.
   */
  private foreign(tx: Json): string | null {
    if (tx.mchid !== this.o.mchid) return `is for mchid ${String(tx.mchid)}, not this merchant`;
    if (tx.appid !== this.o.appid) return `is for appid ${String(tx.appid)}, not ${this.o.appid}`;
    return null;
  }

  accepted(): CallbackAnswer {
    return { status: 204, contentType: 'text/plain', body: '' };
  }

  failed(status: number, message: string): CallbackAnswer {
    return { status, contentType: 'application/json', body: JSON.stringify({ code: 'FAIL', message }) };
  }

  /** Signs, sends, verifies. Resolves with the JSON of a 2xx (null for 204); throws otherwise. */
  private async call(method: 'GET' | 'POST', pathAndQuery: string, body?: Json): Promise<Json | null> {
    const url = new URL(this.baseUrl + pathAndQuery);
    const text = body === undefined ? '' : JSON.stringify(body);
    const authorization = await buildAuthorization({
      mchid: this.o.mchid,
      serialNo: this.o.serialNo,
      privateKey: this.privateKey,
      method,
      pathAndQuery: url.pathname + url.search, // what is signed is what goes on the wire, base path included
      body: text,
      timestamp: unixSeconds(this.now()),
    });
    const what = `${method} ${url.pathname}`;
    let status: number;
    let headers: Record<string, string | string[] | undefined>;
    let raw: Buffer;
    try {
      // undici's request rather than fetch: the same keep-alive connections without the WHATWG
      // streams fetch builds around each answer (less CPU per call: docs/benchmarks.md, payments).
      const res = await request(url, {
        method,
        headers: { Authorization: authorization, Accept: 'application/json', 'Content-Type': 'application/json', 'User-Agent': 'deadline-wechatpay/1' },
        body: method === 'GET' ? undefined : text,
        signal: AbortSignal.timeout(this.timeoutMs), // covers reading the body too
      });
      raw = Buffer.from(await res.body.arrayBuffer());
      status = res.statusCode;
      headers = res.headers;
    } catch (e) {
      throw new ProviderUnavailable(`WeChat Pay ${what} failed: ${(e as Error).message}`, e);
    }
    // Nothing is decided on a 5xx, so it need not be verified (a proxy's 502 is not signed anyway).
    if (status >= 500) throw new ProviderUnavailable(`WeChat Pay ${what} answered ${status}: ${raw.toString('utf8').slice(0, 200)}`);
    try {
      verifySigned(this.o.keyring, signedHeaders(headers), raw, this.now());
    } catch (e) {
      if (e instanceof SignatureRejected) throw new WechatPayError(status, 'RESPONSE_NOT_VERIFIED', `${what}: ${e.message}`);
      throw e;
    }
    const json = raw.length ? parseJson(raw.toString('utf8')) : null;
    if (status >= 200 && status < 300) {
      if (raw.length && !json) throw new WechatPayError(status, 'BAD_RESPONSE', `${what}: the answer is not JSON`);
      return json;
    }
    const code = typeof json?.code === 'string' ? json.code : `HTTP_${status}`;
    const message = typeof json?.message === 'string' ? json.message : raw.toString('utf8').slice(0, 200);
    if (TRANSIENT_CODES.has(code) || status === 429) throw new ProviderUnavailable(`WeChat Pay ${what} answered ${status} ${code}: ${message}`);
    throw new WechatPayError(status, code, `${what}: ${message}`);
  }
}

function tradePath(orderNo: string): string {
  return `/v3/pay/transactions/out-trade-no/${encodeURIComponent(orderNo)}`;
}

function unpaid(word: string): TradeStatus {
  return { state: 'UNPAID', providerState: word, transactionId: null, amount: null, paidAt: null };
}

function parseJson(text: string): Json | null {
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : null;
  } catch {
    return null;
  }
}

/** RFC 3339 in Beijing time, whole seconds rounded down so the trade never outlives the order. */
export function rfc3339Beijing(date: Date): string {
  return new Date(date.getTime() + 8 * 3600_000).toISOString().slice(0, 19) + '+08:00';
}

function truncateUtf8(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, 'utf8') <= maxBytes) return text;
  let out = '';
  for (const ch of text) {
    if (Buffer.byteLength(out + ch, 'utf8') > maxBytes) break;
    out += ch;
  }
  return out;
}

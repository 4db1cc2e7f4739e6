/**
 * Alipay (OpenAPI v2 gateway, RSA2) behind `PaymentProvider`, on `alipay-sdk` 4.x: the SDK signs the
 * requests, verifies the responses (`validateSign`) and the notifications (`checkNotifySignV2`); this
 * file owns what the SDK leaves to its caller: key formats, Beijing-time timestamps, amounts in cents,
 * and which Alipay answers mean "unpaid", "try again later" or "error".
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { AlipaySdk, type AlipaySdkCommonResult, type IPageExecuteParams } from 'alipay-sdk';
import { systemClock, type Clock } from '../clock.js';
import {
  CallbackRejected,
  ProviderUnavailable,
  type CallbackAnswer,
  type CreatePaymentRequest,
  type ProviderIntent,
  type ProviderNotification,
  type PaymentProvider,
  type RawCallback,
  type RefundRef,
  type RefundRequest,
  type RefundStatus,
  type TradeState,
  type TradeStatus,
  promised,
} from './provider.js';
import { queryRefund, refund } from './alipay/refunds.js';
import {
  AlipayApiError,
  businessError,
  centsToYuan,
  describe,
  fromBeijingTime,
  SERVICE_UNAVAILABLE,
  SUCCESS,
  SYSTEM_ERRORS,
  toBeijingTime,
  TRADE_NOT_EXIST,
  transportError,
  yuanToCents,
} from './alipay/wire.js';

export { AlipayApiError, centsToYuan, fromBeijingTime, toBeijingTime, yuanToCents } from './alipay/wire.js';

export const ALIPAY_PRODUCTION_GATEWAY = 'https://openapi.alipay.com/gateway.do';

export interface AlipayOptions {
  appId: string;
  /** The app's RSA private key: PEM text (PKCS#1 or PKCS#8), the bare base64 body the Alipay key tool prints, or a path to either. */
  privateKey: string;
  /** Alipay's RSA public key ("支付宝公钥", not the app's): PEM text, bare base64 body, or a path. */
  alipayPublicKey: string;
  /** ALIPAY_GATEWAY; default the production gateway. */
  gateway?: string;
  /** Milliseconds before a gateway call fails as ProviderUnavailable; the SDK's default is 5000. */
  timeout?: number;
  /** Where the buyer lands when leaving the cashier (wap.pay `quit_url`) and after paying (`return_url`). */
  quitUrl?: string;
  returnUrl?: string;
  /** The request timestamp's clock. */
  clock?: Clock;
  /**
   * ALIPAY_SELLER_ID (the merchant's 2088… partner id): when set, a notification for another seller
   * is refused and a query answer naming another seller is not read, although Alipay signed both.
   * One app_id can be bound to several sellers (a service provider's app): app_id alone does not say
   * the money went to us.
   */
  sellerId?: string;
}

const QUERY = 'alipay.trade.query';
const CLOSE = 'alipay.trade.close';
const WAP_PAY = 'alipay.trade.wap.pay';
/** What trade.close answers for a trade not WAIT_BUYER_PAY: closed already, or paid. */
const CLOSE_STATUS_ERRORS = new Set(['ACQ.TRADE_STATUS_ERROR', 'ACQ.REASON_ILLEGAL_STATUS', 'ACQ.REASON_TRADE_STATUS_INVALID']);
/** Alipay's subject may not contain these ("不可使用特殊字符，如 /，=，&") and is at most 256 characters. */
const SUBJECT_FORBIDDEN = /[/=&]/g;
const SUBJECT_MAX = 256;

const TRADE_STATES: Record<string, TradeState> = {
  TRADE_SUCCESS: 'PAID',
  TRADE_FINISHED: 'PAID',
  WAIT_BUYER_PAY: 'UNPAID',
  TRADE_CLOSED: 'CLOSED',
};

export class AlipayProvider implements PaymentProvider {
  readonly name = 'alipay' as const;
  private readonly sdk: AlipaySdk;
  private readonly clock: Clock;

  constructor(private readonly options: AlipayOptions) {
    if (!options.appId) throw new Error('Alipay: appId is required');
    this.clock = options.clock ?? systemClock;
    this.sdk = new AlipaySdk({
      appId: options.appId,
      // Normalised to PKCS#8 PEM: the SDK re-wraps the key under the header `keyType` names, so a
      // PKCS#8 key given as PKCS1 (its default) or a PEM with a trailing newline would come out broken.
      privateKey: privateKeyPem(readKey(options.privateKey, 'privateKey')),
      keyType: 'PKCS8',
      alipayPublicKey: publicKeyPem(readKey(options.alipayPublicKey, 'alipayPublicKey')),
      gateway: options.gateway ?? ALIPAY_PRODUCTION_GATEWAY,
      // Given only when set: the SDK's Object.assign of defaults would take an undefined over its 5000.
      ...(options.timeout !== undefined ? { timeout: options.timeout } : {}),
      signType: 'RSA2',
      // Alipay's own field names (trade_status, sub_code), as in its documentation.
      camelcase: false,
    });
  }

  create(request: CreatePaymentRequest): Promise<ProviderIntent> {
    return promised(() => this.intentOf(request));
  }

  private intentOf(request: CreatePaymentRequest): ProviderIntent {
    // The payment must not outlive the order: time_expire has second precision, so round down.
    const expiresAt = new Date(Math.floor(request.expiresAt.getTime() / 1000) * 1000);
    const bizContent: Record<string, string> = {
      out_trade_no: request.orderNo,
      total_amount: centsToYuan(request.amount),
      subject: subject(request.description, request.orderNo),
      product_code: 'QUICK_WAP_WAY',
      time_expire: toBeijingTime(expiresAt),
    };
    if (this.options.quitUrl) bizContent.quit_url = this.options.quitUrl;
    const params: IPageExecuteParams = { bizContent, notifyUrl: request.notifyUrl, timestamp: this.timestamp() };
    if (this.options.returnUrl) params.returnUrl = this.options.returnUrl;
    // GET: a signed gateway URL the buyer's browser opens; the SDK builds it without a network call.
    const h5Url = this.sdk.pageExecute(WAP_PAY, 'GET', params);
    return { provider: 'alipay', prepayId: null, h5Url, codeUrl: null, expiresAt };
  }

  async query(orderNo: string): Promise<TradeStatus> {
    const res = await this.call(QUERY, { out_trade_no: orderNo });
    if (res.code !== SUCCESS) {
      // Until the buyer opens the cashier Alipay has no trade: unpaid, not an error.
      if (res.sub_code === TRADE_NOT_EXIST) {
        return { state: 'UNPAID', providerState: TRADE_NOT_EXIST, transactionId: null, amount: null, paidAt: null };
      }
      throw businessError(QUERY, res);
    }
    if (res.out_trade_no !== undefined && res.out_trade_no !== orderNo) {
      throw new AlipayApiError(QUERY, 'MISMATCH', null, `asked for ${orderNo}, answered for ${String(res.out_trade_no)}`);
    }
    // trade.query answers name the seller only in some integrations: checked when they do.
    if (this.options.sellerId && res.seller_id !== undefined && res.seller_id !== this.options.sellerId) {
      throw new AlipayApiError(QUERY, 'MISMATCH', null, `trade ${orderNo} was paid to seller ${String(res.seller_id)}, not ${this.options.sellerId}`);
    }
    const providerState = String(res.trade_status ?? '');
    const state = TRADE_STATES[providerState];
    if (!state) throw new AlipayApiError(QUERY, 'UNKNOWN_TRADE_STATUS', null, `unknown trade_status "${providerState}" for ${orderNo}`);
    if (state !== 'PAID') return { state, providerState, transactionId: null, amount: null, paidAt: null };

    const transactionId = typeof res.trade_no === 'string' && res.trade_no ? res.trade_no : null;
    if (!transactionId) throw new AlipayApiError(QUERY, 'INVALID_RESPONSE', null, `${providerState} without trade_no for ${orderNo}`);
    const amount = yuanToCents(res.total_amount);
    if (amount === null) throw new AlipayApiError(QUERY, 'INVALID_RESPONSE', null, `bad total_amount "${String(res.total_amount)}" for ${orderNo}`);
    // Text in Alipay's answers ("2026-01-02 03:04:05"); String() below still copes with anything else.
    const paidAtText = (res.send_pay_date ?? res.gmt_payment) as string | undefined;
    const paidAt = paidAtText === undefined ? null : fromBeijingTime(String(paidAtText));
    if (paidAtText !== undefined && !paidAt) {
      throw new AlipayApiError(QUERY, 'INVALID_RESPONSE', null, `bad send_pay_date "${String(paidAtText)}" for ${orderNo}`);
    }
    return { state, providerState, transactionId, amount, paidAt };
  }

  async close(orderNo: string): Promise<void> {
    const res = await this.call(CLOSE, { out_trade_no: orderNo });
    if (res.code === SUCCESS || res.sub_code === TRADE_NOT_EXIST) return;
    if (CLOSE_STATUS_ERRORS.has(String(res.sub_code))) {
      // Not waiting for payment: closed already (fine) or paid (must not be expired here).
      const status = await this.query(orderNo);
      if (status.state === 'CLOSED') return;
      throw new AlipayApiError(CLOSE, String(res.code), String(res.sub_code), `trade ${orderNo} is ${status.providerState}, not closable`);
    }
    throw businessError(CLOSE, res);
  }

  verifyCallback(callback: RawCallback): Promise<ProviderNotification> {
    return promised(() => this.readCallback(callback));
  }

  private readCallback(callback: RawCallback): ProviderNotification {
    const contentType = header(callback.headers, 'content-type');
    if (contentType && !/^application\/x-www-form-urlencoded\b/i.test(contentType)) {
      throw new CallbackRejected(`Alipay notify: unexpected content-type ${contentType}`, 400);
    }
    const fields = parseForm(callback.body);
    if (!fields.sign) throw new CallbackRejected('Alipay notify: no sign', 401);
    // RSA2 only: the SDK would otherwise verify with whatever sign_type the body names (RSA = SHA-1).
    if (fields.sign_type !== undefined && fields.sign_type !== 'RSA2') {
      throw new CallbackRejected(`Alipay notify: sign_type ${fields.sign_type} refused`, 401);
    }
    let signed: boolean;
    try {
      // V2: the values are already decoded (parseForm); V1 would decode them a second time.
      signed = this.sdk.checkNotifySignV2(fields);
    } catch {
      signed = false;
    }
    if (!signed) throw new CallbackRejected('Alipay notify: bad signature', 401);
    if (fields.app_id !== this.options.appId) {
      throw new CallbackRejected(`Alipay notify: for app_id ${fields.app_id ?? '(none)'}`, 401);
    }

    // Every trade notification names its seller: when ours is configured, it must be it.
    if (this.options.sellerId && fields.seller_id !== this.options.sellerId) {
      throw new CallbackRejected(`Alipay notify: for seller_id ${fields.seller_id ?? '(none)'}, not ours`, 400);
    }

    const malformed = (what: string) => new CallbackRejected(`Alipay notify: ${what}`, 400);
    for (const name of ['notify_id', 'out_trade_no', 'trade_no', 'trade_status', 'total_amount'] as const) {
      if (!fields[name]) throw malformed(`no ${name}`);
    }
    const state = TRADE_STATES[fields.trade_status];
    if (!state) throw malformed(`unknown trade_status ${fields.trade_status}`);
    const amount = yuanToCents(fields.total_amount);
    if (amount === null) throw malformed(`bad total_amount ${fields.total_amount}`);
    const when = fields.gmt_payment || fields.notify_time;
    if (!when) throw malformed('neither gmt_payment nor notify_time');
    const paidAt = fromBeijingTime(when);
    if (!paidAt) throw malformed(`bad time ${when}`);
    return {
      notificationId: fields.notify_id,
      orderNo: fields.out_trade_no,
      transactionId: fields.trade_no,
      state,
      amount,
      paidAt,
      // Alipay's retries of a notification are identical: recognised by notify_id, not refused.
      replayKey: null,
    };
  }

  /** `alipay.trade.refund` with `out_request_no` = our out_refund_no (./alipay/refunds.ts). */
  refund(request: RefundRequest): Promise<RefundStatus> {
    return refund((method, biz) => this.call(method, biz), request);
  }

  /** `alipay.trade.fastpay.refund.query` (./alipay/refunds.ts). */
  queryRefund(ref: RefundRef): Promise<RefundStatus> {
    return queryRefund((method, biz) => this.call(method, biz), ref);
  }

  /** Alipay stops retrying only on the exact text `success`. */
  accepted(): CallbackAnswer {
    return { status: 200, contentType: 'text/plain; charset=utf-8', body: 'success' };
  }

  /** Anything but `success` makes Alipay retry (8 times over 25 h); the message is for our logs only. */
  failed(status: number, _message: string): CallbackAnswer {
    return { status, contentType: 'text/plain; charset=utf-8', body: 'fail' };
  }

  /** One gateway call, response signature checked; transport and Alipay-side failures become ProviderUnavailable. */
  private async call(method: string, bizContent: Record<string, unknown>): Promise<AlipaySdkCommonResult> {
    let res: AlipaySdkCommonResult;
    try {
      res = await this.sdk.exec(method, { bizContent, timestamp: this.timestamp() }, { validateSign: true });
    } catch (err) {
      throw transportError(method, err);
    }
    if (res.code === SERVICE_UNAVAILABLE || SYSTEM_ERRORS.has(String(res.sub_code))) {
      throw new ProviderUnavailable(`${method}: ${describe(res)}`, res);
    }
    return res;
  }

  /** The SDK stamps requests in the process's local time zone; Alipay reads `timestamp` as Beijing time. */
  private timestamp(): string {
    return toBeijingTime(this.clock.now());
  }
}

// ---- helpers ----

function subject(description: string, orderNo: string): string {
  const clean = description.replace(SUBJECT_FORBIDDEN, ' ').trim();
  return [...(clean || orderNo)].slice(0, SUBJECT_MAX).join('');
}

function header(headers: RawCallback['headers'], name: string): string | undefined {
  const value = headers[name] ?? headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** The raw form body, decoded once (UTF-8: our requests say charset=utf-8, so the notify is sent in it). */
function parseForm(body: Buffer): Record<string, string> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new CallbackRejected('Alipay notify: body is not UTF-8', 400);
  }
  const fields = Object.create(null) as Record<string, string>;
  let count = 0;
  for (const [key, value] of new URLSearchParams(text)) {
    if (!key) continue;
    if (Object.hasOwn(fields, key)) throw new CallbackRejected(`Alipay notify: ${key} given twice`, 400);
    fields[key] = value;
    count++;
  }
  if (count === 0) throw new CallbackRejected('Alipay notify: empty body', 400);
  return fields;
}

/** PEM text as is; else an existing file; else the bare base64 body the Alipay key tool prints. */
function readKey(source: string, what: string): string | Buffer {
  const text = source?.trim();
  if (!text) throw new Error(`Alipay: ${what} is required`);
  if (text.includes('-----BEGIN')) return text;
  if (existsSync(text)) return readFileSync(text, 'utf8').trim();
  if (/^[A-Za-z0-9+/=\s]+$/.test(text)) return Buffer.from(text.replace(/\s+/g, ''), 'base64');
  throw new Error(`Alipay: ${what} is neither PEM text, base64 nor a readable file`);
}

function privateKeyPem(source: string | Buffer): string {
  let key: KeyObject;
  try {
    key = typeof source === 'string' && source.includes('-----BEGIN')
      ? createPrivateKey(source)
      : derKey(typeof source === 'string' ? Buffer.from(source.replace(/\s+/g, ''), 'base64') : source);
  } catch (err) {
    throw new Error(`Alipay: privateKey is not a readable RSA private key (${(err as Error).message})`, { cause: err });
  }
  if (key.asymmetricKeyType !== 'rsa') throw new Error(`Alipay: privateKey is ${key.asymmetricKeyType}, RSA2 needs RSA`);
  return String(key.export({ type: 'pkcs8', format: 'pem' })).trim();
}

function derKey(der: Buffer): KeyObject {
  try {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch {
    return createPrivateKey({ key: der, format: 'der', type: 'pkcs1' });
  }
}

function publicKeyPem(source: string | Buffer): string {
  let key: KeyObject;
  try {
    key = typeof source === 'string' && source.includes('-----BEGIN')
      ? createPublicKey(source)
      : createPublicKey({
          key: typeof source === 'string' ? Buffer.from(source.replace(/\s+/g, ''), 'base64') : source,
          format: 'der',
          type: 'spki',
        });
  } catch (err) {
    throw new Error(`Alipay: alipayPublicKey is not a readable RSA public key (${(err as Error).message})`, { cause: err });
  }
  if (key.asymmetricKeyType !== 'rsa') throw new Error(`Alipay: alipayPublicKey is ${key.asymmetricKeyType}, RSA2 needs RSA`);
  return String(key.export({ type: 'spki', format: 'pem' })).trim();
}

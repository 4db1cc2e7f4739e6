/**
 * What the server knows of a payment provider. Wire formats (WeChat Pay v3's signed JSON, Alipay's
 * signed forms) stop behind this interface: the rest of the server sees order numbers, cents and
 * these shapes. `out_trade_no` at the provider is always the order's `orderNo`.
 */
export type ProviderName = 'wechat' | 'alipay' | 'sandbox';

export interface CreatePaymentRequest {
  orderNo: string;
  /** Cents to pay online (a MIXED order's online part). */
  amount: number;
  description: string;
  /** When the order expires here: the provider's payment must not outlive it. */
  expiresAt: Date;
  /** Where the provider sends its callback: `${PUBLIC_BASE_URL}/api/payments/<provider>/notify`. */
  notifyUrl: string;
  /** The payer's IP (H5 payments ask for it). */
  clientIp?: string;
}

/** What a client needs to pay; fields a provider has no use for are null. */
export interface ProviderIntent {
  provider: ProviderName;
  prepayId: string | null;
  h5Url: string | null;
  codeUrl: string | null;
  expiresAt: Date | null;
}

/**
 * A trade as the provider sees it. PAID: money taken (WeChat SUCCESS/REFUND, Alipay TRADE_SUCCESS /
 * TRADE_FINISHED); UNPAID: not (yet) paid, including "no such trade" (Alipay ACQ.TRADE_NOT_EXIST,
 * WeChat ORDERNOTEXIST: the buyer never opened it); CLOSED: closed or revoked there, will never be paid.
 */
export type TradeState = 'PAID' | 'UNPAID' | 'CLOSED';

export interface TradeStatus {
  state: TradeState;
  /** The provider's raw state word, for logs (SUCCESS, NOTPAY, WAIT_BUYER_PAY, …). */
  providerState: string;
  /** Set when PAID. */
  transactionId: string | null;
  /** Cents actually paid, when PAID. */
  amount: number | null;
  paidAt: Date | null;
}

/** A verified, decrypted payment notification. */
export interface ProviderNotification {
  /** The provider's notification id (WeChat `id`, Alipay `notify_id`): a replay carries the same one. */
  notificationId: string;
  orderNo: string;
  transactionId: string;
  state: TradeState;
  amount: number;
  paidAt: Date;
  /**
   * What makes this delivery unique (WeChat: its signed timestamp and nonce), or null when the
   * provider's retries are byte-identical (Alipay). The same key twice is a replay, refused; a
   * provider's own retry carries a fresh one and is recognised by `notificationId` instead.
   */
  replayKey: string | null;
}

/** The raw HTTP request of a callback: verification needs the exact bytes. */
export interface RawCallback {
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** What to answer the provider, in its own shape. */
export interface CallbackAnswer {
  status: number;
  contentType: string;
  body: string;
}

/** Thrown by `verifyCallback` for a forged, stale, replayed-probe or malformed callback. */
export class CallbackRejected extends Error {
  constructor(
    message: string,
    /** 401 for a bad signature or a stale timestamp, 400 for a malformed body. */
    readonly status: 401 | 400,
  ) {
    super(message);
    this.name = 'CallbackRejected';
  }
}

/** Thrown when the provider could not be reached or answered with an error it calls a system error. */
export class ProviderUnavailable extends Error {
  constructor(message: string, readonly cause?: unknown) {
    super(message);
    this.name = 'ProviderUnavailable';
  }
}

/**
 * A refund of one payment, whole: `outRefundNo` is ours (the payment's reference plus the attempt
 * number), so asking again for the same attempt refunds once at the provider.
 */
export interface RefundRequest {
  outRefundNo: string;
  /** The trade's `out_trade_no` as the provider knows it (the payment's order number). */
  orderNo: string;
  /** The provider's transaction (WeChat `transaction_id`, Alipay `trade_no`). */
  transactionId: string;
  /** Cents to give back. */
  amount: number;
  /** Cents the payment took (WeChat asks for both). */
  total: number;
  reason: string;
  /** Where the provider announces the refund's end: `${PUBLIC_BASE_URL}/api/payments/<provider>/refund-notify`. */
  notifyUrl: string;
}

export type RefundRef = Pick<RefundRequest, 'outRefundNo' | 'orderNo' | 'transactionId'>;

/**
 * A refund as the provider sees it. SUCCEEDED: the money went back; FAILED: it will not (WeChat
 * ABNORMAL or CLOSED, or the request was refused outright: no refund exists there); PROCESSING:
 * accepted, not finished; NOT_FOUND (queries only): the provider has no such refund, so asking for it
 * again with the same `outRefundNo` is how a lost request is repaired (Alipay's documented retry).
 */
export type RefundState = 'SUCCEEDED' | 'FAILED' | 'PROCESSING' | 'NOT_FOUND';

export interface RefundStatus {
  state: RefundState;
  /** The provider's own word, for logs and `Refund.failureReason` (SUCCESS, ABNORMAL, NOT_ENOUGH, ACQ.TRADE_NOT_EXIST…). */
  providerState: string;
  /** Cents refunded, when the provider says. */
  amount: number | null;
  finishedAt: Date | null;
}

/** A verified, decrypted refund notification (WeChat's REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED). */
export interface RefundNotification {
  notificationId: string;
  outRefundNo: string;
  state: Extract<RefundState, 'SUCCEEDED' | 'FAILED'>;
  providerState: string;
  amount: number;
  finishedAt: Date | null;
  /** As for payment callbacks: what makes this delivery unique, or null. */
  replayKey: string | null;
}

export interface PaymentProvider {
  readonly name: ProviderName;
  create(request: CreatePaymentRequest): Promise<ProviderIntent>;
  /** By order number; a trade the provider does not know is UNPAID. */
  query(orderNo: string): Promise<TradeStatus>;
  /** Closes the trade there so it can no longer be paid; closing a closed or unknown trade is not an error. */
  close(orderNo: string): Promise<void>;
  /** Verifies (signature, timestamp, probes) and decodes a callback; throws CallbackRejected. */
  verifyCallback(callback: RawCallback): Promise<ProviderNotification>;
  /**
   * Asks for the refund (idempotent by `outRefundNo` at the provider). A refusal that leaves no refund
   * there (a business error) is FAILED; an answer that says nothing for sure (unreachable, a system
   * error, an unverified answer) is thrown, and the refund is asked about again later.
   */
  refund(request: RefundRequest): Promise<RefundStatus>;
  /** The refund's state there; NOT_FOUND when the provider never received it. */
  queryRefund(ref: RefundRef): Promise<RefundStatus>;
  /** Providers that announce refunds (WeChat Pay and the sandbox): verifies and decodes one; throws CallbackRejected. */
  verifyRefundCallback?(callback: RawCallback): Promise<RefundNotification>;
  /** The answer that tells the provider "received" … */
  accepted(): CallbackAnswer;
  /** … or "failed, send it again" (WeChat retries on 4xx/5xx with {"code":"FAIL","message"}). */
  failed(status: number, message: string): CallbackAnswer;
}

/**
 * `run`'s value as a promise and its throw as a rejection, as an `async` function with nothing to wait
 * for gives them: for the interface's methods that a provider answers without calling out.
 */
export function promised<T>(run: () => T): Promise<T> {
  return new Promise<T>((resolve) => resolve(run()));
}

/**
 * WeChat Pay v3 refunds' wire format (`/v3/refund/domestic/refunds`), read and written here so the
 * client (./client.ts) keeps only the calls. Sources: the v3 refund docs (申请退款, 查询单笔退款,
 * 退款结果通知) and wechatpay-apiv3/wechatpay-go `services/refunddomestic`.
 */
import type { RefundNotification, RefundRequest, RefundState, RefundStatus } from '../provider.js';

export const REFUNDS_PATH = '/v3/refund/domestic/refunds';

/**
 * `status` of an answer, `refund_status` of a notification. ABNORMAL (the money could not reach the
 * buyer's account, e.g. a closed card) and CLOSED both end with nothing refunded: FAILED here, and an
 * operator may try again (a new attempt, a new out_refund_no).
 */
const STATES: Record<string, Exclude<RefundState, 'NOT_FOUND'>> = {
  SUCCESS: 'SUCCEEDED',
  PROCESSING: 'PROCESSING',
  ABNORMAL: 'FAILED',
  CLOSED: 'FAILED',
};

/** The notifications of a refund's end; the plaintext's `refund_status` says the same. */
export const REFUND_EVENT_TYPES: readonly string[] = ['REFUND.SUCCESS', 'REFUND.ABNORMAL', 'REFUND.CLOSED'];

/** `reason` is string(80) in the v3 docs; cut by characters (WeChat counts characters there). */
const REASON_MAX = 80;
/** out_refund_no: string(64), "数字、大小写字母_-|*@". */
export const OUT_REFUND_NO = /^[0-9A-Za-z_\-|*@]{1,64}$/;

type Json = Record<string, unknown>;

/** The body of POST /v3/refund/domestic/refunds: the whole payment, in CNY cents. */
export function refundBody(req: RefundRequest): Json {
  if (!OUT_REFUND_NO.test(req.outRefundNo)) throw new Error(`out_refund_no ${req.outRefundNo} is not 1-64 of [0-9A-Za-z_-|*@]`);
  if (!Number.isInteger(req.amount) || req.amount <= 0 || !Number.isInteger(req.total) || req.amount > req.total) {
    throw new Error(`refund of ${req.amount} of ${req.total} cents is not a positive amount within the payment`);
  }
  return {
    out_trade_no: req.orderNo,
    out_refund_no: req.outRefundNo,
    reason: [...req.reason].slice(0, REASON_MAX).join(''),
    notify_url: req.notifyUrl,
    amount: { refund: req.amount, total: req.total, currency: 'CNY' },
  };
}

/** A refund in a v3 answer (create or query), or why the answer is not one about `outRefundNo`. */
export function readRefund(json: Json | null, outRefundNo: string): RefundStatus | string {
  if (!json || json.out_refund_no !== outRefundNo) return `the answer is not about refund ${outRefundNo}`;
  const word = String(json.status);
  const state = STATES[word];
  if (!state) return `unknown refund status ${word}`;
  const amount = json.amount as Json | undefined;
  // Text in v3 answers; String() below still copes with anything else.
  const currency = amount?.currency as string | undefined;
  if (currency !== undefined && currency !== 'CNY') return `refund ${outRefundNo} is in ${String(currency)}, not CNY`;
  const refunded = amount?.refund;
  if (!Number.isInteger(refunded)) return `refund ${outRefundNo} lacks amount.refund`;
  const finishedAt = state === 'SUCCEEDED' && typeof json.success_time === 'string' ? new Date(json.success_time) : null;
  if (finishedAt && Number.isNaN(finishedAt.getTime())) return `refund ${outRefundNo} has a bad success_time`;
  return { state, providerState: word, amount: refunded as number, finishedAt };
}

/** A decrypted refund notification's resource, or why it is not one for merchant `mchid`. */
export function readRefundNotification(
  tx: Json,
  mchid: string,
): Omit<RefundNotification, 'notificationId' | 'replayKey'> | string {
  // Refund notifications name the merchant only (no appid): a refund is the merchant's, whatever app paid.
  if (tx.mchid !== mchid) return `is for mchid ${String(tx.mchid)}, not this merchant`;
  const word = String(tx.refund_status);
  const state = STATES[word];
  const amount = tx.amount as Json | undefined;
  if (typeof tx.out_refund_no !== 'string' || (state !== 'SUCCEEDED' && state !== 'FAILED') || !Number.isInteger(amount?.refund)) {
    return 'lacks out_refund_no, a final refund_status or amount.refund';
  }
  const finishedAt = state === 'SUCCEEDED' ? new Date(String(tx.success_time)) : null;
  if (finishedAt && Number.isNaN(finishedAt.getTime())) return 'has a bad success_time';
  return { outRefundNo: tx.out_refund_no, state, providerState: word, amount: amount!.refund as number, finishedAt };
}

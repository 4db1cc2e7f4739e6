/**
 * Alipay refunds: `alipay.trade.refund` (synchronous: it answers once the money moved or was refused)
 * with `out_request_no` = our out_refund_no, so a request repeated for one attempt refunds once, and
 * `alipay.trade.fastpay.refund.query`. Alipay's docs for the query: code 10000 only means the query
 * worked; `refund_status: REFUND_SUCCESS` means refunded; no refund_status means not received or not
 * refunded (yet), and the documented repair is to ask for the refund again with the same
 * out_request_no (and amount).
 */
import { ProviderUnavailable, type RefundRef, type RefundRequest, type RefundStatus } from '../provider.js';
import { AlipayApiError, businessError, centsToYuan, describe, fromBeijingTime, SUCCESS, TRADE_NOT_EXIST, yuanToCents, type AlipayExec } from './wire.js';

const REFUND = 'alipay.trade.refund';
const REFUND_QUERY = 'alipay.trade.fastpay.refund.query';
const REFUND_SUCCESS = 'REFUND_SUCCESS';
/** refund_reason is string(256). */
const REASON_MAX = 256;
/** "退收费异常，请过一段时间后再重试": Alipay's own trouble, not a refusal. */
const RETRY_LATER = new Set(['ACQ.REFUND_CHARGE_ERROR']);

/** The trade, by both numbers: `trade_no` wins at Alipay, `out_trade_no` is what we checked it against. */
const tradeOf = (ref: RefundRef) => ({ out_trade_no: ref.orderNo, trade_no: ref.transactionId, out_request_no: ref.outRefundNo });

export async function refund(exec: AlipayExec, req: RefundRequest): Promise<RefundStatus> {
  const res = await exec(REFUND, {
    ...tradeOf(req),
    refund_amount: centsToYuan(req.amount),
    refund_reason: [...req.reason].slice(0, REASON_MAX).join(''),
  });
  if (res.code !== SUCCESS) {
    if (RETRY_LATER.has(String(res.sub_code))) throw new ProviderUnavailable(`${REFUND}: ${describe(res)}`, res);
    // Refused (ACQ.TRADE_NOT_EXIST, ACQ.SELLER_BALANCE_NOT_ENOUGH, ACQ.TRADE_STATUS_ERROR, …): no refund exists there.
    return { state: 'FAILED', providerState: String(res.sub_code ?? res.code), amount: null, finishedAt: null };
  }
  if (res.out_trade_no !== undefined && res.out_trade_no !== req.orderNo) {
    throw new AlipayApiError(REFUND, 'MISMATCH', null, `refund ${req.outRefundNo} of ${req.orderNo} answered for ${String(res.out_trade_no)}`);
  }
  // fund_change Y: this request moved the money. N: it moved none now, as for a repeat of a refund
  // already made with this out_request_no: the query says whether one was.
  if (res.fund_change === 'Y') {
    const at = typeof res.gmt_refund_pay === 'string' ? fromBeijingTime(res.gmt_refund_pay) : null;
    return { state: 'SUCCEEDED', providerState: REFUND_SUCCESS, amount: req.amount, finishedAt: at };
  }
  const status = await queryRefund(exec, req);
  return status.state === 'NOT_FOUND' ? { ...status, state: 'PROCESSING' } : status;
}

export async function queryRefund(exec: AlipayExec, ref: RefundRef): Promise<RefundStatus> {
  const res = await exec(REFUND_QUERY, { ...tradeOf(ref), query_options: ['gmt_refund_pay'] });
  if (res.code !== SUCCESS) {
    // No such trade: no refund of it either; asked for again, the refund is refused and ends FAILED.
    if (res.sub_code === TRADE_NOT_EXIST) return { state: 'NOT_FOUND', providerState: TRADE_NOT_EXIST, amount: null, finishedAt: null };
    throw businessError(REFUND_QUERY, res);
  }
  if (res.out_request_no !== undefined && res.out_request_no !== ref.outRefundNo) {
    throw new AlipayApiError(REFUND_QUERY, 'MISMATCH', null, `asked for refund ${ref.outRefundNo}, answered for ${String(res.out_request_no)}`);
  }
  if (res.refund_status !== REFUND_SUCCESS) {
    return { state: 'NOT_FOUND', providerState: String(res.refund_status ?? 'NO_REFUND_STATUS'), amount: null, finishedAt: null };
  }
  const amount = yuanToCents(res.refund_amount);
  if (amount === null) throw new AlipayApiError(REFUND_QUERY, 'INVALID_RESPONSE', null, `bad refund_amount "${String(res.refund_amount)}" for ${ref.outRefundNo}`);
  const at = typeof res.gmt_refund_pay === 'string' ? fromBeijingTime(res.gmt_refund_pay) : null;
  return { state: 'SUCCEEDED', providerState: REFUND_SUCCESS, amount, finishedAt: at };
}

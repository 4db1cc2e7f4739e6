/**
 * The sandbox's refunds: WeChat Pay v3's refund routes over its trades (./trades.ts), and control
 * routes that say how the next refund of a trade ends, so tests can play a refund confirmed at once,
 * one confirmed later by notification (or with its notification lost), and one that fails.
 *
 *   POST /v3/refund/domestic/refunds               → 200 refund | 404 RESOURCE_NOT_EXISTS | 400 …
 *        idempotent by out_refund_no (the same request answers the refund as it is now)
 *   GET  /v3/refund/domestic/refunds/{outRefundNo} → 200 refund | 404 RESOURCE_NOT_EXISTS
 *   refund = { refund_id, out_refund_no, transaction_id, out_trade_no, status (SUCCESS | PROCESSING |
 *              ABNORMAL | CLOSED), success_time, create_time, amount { total, refund, currency, … } }
 *   Notifications REFUND.SUCCESS / REFUND.ABNORMAL / REFUND.CLOSED are POSTed, signed and encrypted
 *   like payment callbacks (resource original_type "refund"), to the request's notify_url.
 *
 *   POST /sandbox/trades/{orderNo}/refund-plan  {"status":"SUCCESS"|"PROCESSING"|"ABNORMAL"|"CLOSED",
 *                                                "callback":"send"|"lose"}  → { orderNo, plan }
 *        How the trade's next refunds are answered (default SUCCESS, callback sent): a final status
 *        is answered at once and notified unless "lose"; PROCESSING waits for `finish`.
 *   GET  /sandbox/refunds   GET /sandbox/refunds/{outRefundNo}
 *   POST /sandbox/refunds/{outRefundNo}/finish  {"status":"SUCCESS"|"ABNORMAL"|"CLOSED","callback":"send"|"lose"}
 *        → { refund, callback: { status, body } | null }   a PROCESSING refund ends, notified unless "lose"
 *   POST /sandbox/refunds/{outRefundNo}/callbacks/{probe|replay|duplicate|stale|forged}
 *        the refund's last notification again, as for trades
 */
import { randomInt } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { rfc3339Beijing } from '../wechat/client.js';
import { OUT_REFUND_NO, REFUNDS_PATH } from '../wechat/refunds.js';
import { HttpError, parseBody, type Delivery, type SandboxCallback } from './http.js';

export type SandboxRefundStatus = 'SUCCESS' | 'PROCESSING' | 'ABNORMAL' | 'CLOSED';
type Final = Exclude<SandboxRefundStatus, 'PROCESSING'>;

export interface SandboxRefund {
  outRefundNo: string;
  refundId: string;
  orderNo: string;
  transactionId: string;
  amount: number;
  total: number;
  reason: string;
  notifyUrl: string;
  status: SandboxRefundStatus;
  successTime: string | null;
  createdAt: string;
  lastCallback: SandboxCallback | null;
}

export interface RefundPlan {
  status: SandboxRefundStatus;
  callback: 'send' | 'lose';
}

/** What the refunds need of the trades' server. */
export interface RefundDeskDeps {
  mchid: string;
  /** Paid trades, by order number: their transaction id and the cents paid. */
  paidTrade(orderNo: string): { transactionId: string; paidAmount: number } | null;
  /** A signed, encrypted notification of `eventType` carrying `plaintext` (resource original_type `originalType`). */
  notification(url: string, eventType: string, summary: string, originalType: string, plaintext: object): SandboxCallback;
  deliver(cb: SandboxCallback): Promise<Delivery>;
  /** Runs after the answer went out (a notification follows its refund's answer, as WeChat's does). */
  later(task: () => Promise<unknown>): void;
  resend(cb: SandboxCallback | null, what: string, kind: string): Promise<Delivery>;
}

const FINAL: readonly string[] = ['SUCCESS', 'ABNORMAL', 'CLOSED'];
const EVENTS: Record<Final, [string, string]> = {
  SUCCESS: ['REFUND.SUCCESS', '退款成功'],
  ABNORMAL: ['REFUND.ABNORMAL', '退款异常'],
  CLOSED: ['REFUND.CLOSED', '退款关闭'],
};
const DEFAULT_PLAN: RefundPlan = { status: 'SUCCESS', callback: 'send' };

export function refundDesk(deps: RefundDeskDeps) {
  const refunds = new Map<string, SandboxRefund>();
  const plans = new Map<string, RefundPlan>();

  function wire(r: SandboxRefund): Record<string, unknown> {
    return {
      refund_id: r.refundId,
      out_refund_no: r.outRefundNo,
      transaction_id: r.transactionId,
      out_trade_no: r.orderNo,
      channel: 'ORIGINAL',
      user_received_account: '支付用户零钱',
      ...(r.successTime ? { success_time: r.successTime } : {}),
      create_time: r.createdAt,
      status: r.status,
      funds_account: 'AVAILABLE',
      amount: {
        total: r.total,
        refund: r.amount,
        payer_total: r.total,
        payer_refund: r.amount,
        settlement_total: r.total,
        settlement_refund: r.amount,
        discount_refund: 0,
        currency: 'CNY',
        refund_fee: 0,
      },
    };
  }

  /** Moves a refund to its end and makes its notification (sent or kept by the caller). */
  function finish(r: SandboxRefund, status: Final): SandboxCallback {
    r.status = status;
    r.successTime = status === 'SUCCESS' ? rfc3339Beijing(new Date()) : null;
    const [eventType, summary] = EVENTS[status];
    const plaintext = {
      mchid: deps.mchid,
      out_trade_no: r.orderNo,
      transaction_id: r.transactionId,
      out_refund_no: r.outRefundNo,
      refund_id: r.refundId,
      refund_status: status,
      ...(r.successTime ? { success_time: r.successTime } : {}),
      user_received_account: '支付用户零钱',
      amount: { total: r.total, refund: r.amount, payer_total: r.total, payer_refund: r.amount },
    };
    r.lastCallback = deps.notification(r.notifyUrl, eventType, summary, 'refund', plaintext);
    return r.lastCallback;
  }

  function create(raw: Buffer): Record<string, unknown> {
    const b = parseBody(raw);
    const amount = b.amount as Record<string, unknown> | undefined;
    const param = (ok: boolean, what: string): void => {
      if (!ok) throw new HttpError(400, 'PARAM_ERROR', `参数错误: ${what}`);
    };
    param(typeof b.out_refund_no === 'string' && OUT_REFUND_NO.test(b.out_refund_no), 'out_refund_no');
    param(typeof b.out_trade_no === 'string', 'out_trade_no');
    param(Number.isInteger(amount?.refund) && (amount!.refund as number) > 0 && Number.isInteger(amount?.total), 'amount');
    param(amount?.currency === 'CNY', 'amount.currency');
    param(b.notify_url === undefined || (typeof b.notify_url === 'string' && /^https?:\/\//.test(b.notify_url)), 'notify_url');
    const outRefundNo = b.out_refund_no as string;
    const orderNo = b.out_trade_no as string;
    const existing = refunds.get(outRefundNo);
    if (existing) {
      // One out_refund_no refunds once: asked again, WeChat answers the refund as it is.
      if (existing.orderNo !== orderNo || existing.amount !== amount!.refund) throw new HttpError(400, 'INVALID_REQUEST', '退款单号重复，但参数不一致');
      return wire(existing);
    }
    const trade = deps.paidTrade(orderNo);
    if (!trade) throw new HttpError(404, 'RESOURCE_NOT_EXISTS', '订单不存在');
    if (amount!.total !== trade.paidAmount) throw new HttpError(400, 'INVALID_REQUEST', '订单金额与支付金额不一致');
    const refunded = [...refunds.values()].filter((r) => r.orderNo === orderNo && r.status !== 'ABNORMAL' && r.status !== 'CLOSED');
    if (refunded.reduce((n, r) => n + r.amount, 0) + (amount!.refund as number) > trade.paidAmount) {
      throw new HttpError(400, 'INVALID_REQUEST', '申请退款金额超过订单可退金额');
    }
    const plan = plans.get(orderNo) ?? DEFAULT_PLAN;
    const r: SandboxRefund = {
      outRefundNo,
      refundId: `50${Array.from({ length: 27 }, () => randomInt(10)).join('')}`, // 29 digits, as WeChat's
      orderNo,
      transactionId: trade.transactionId,
      amount: amount!.refund as number,
      total: amount!.total,
      reason: typeof b.reason === 'string' ? b.reason : '',
      notifyUrl: (b.notify_url as string | undefined) ?? '',
      status: 'PROCESSING',
      successTime: null,
      createdAt: rfc3339Beijing(new Date()),
      lastCallback: null,
    };
    refunds.set(outRefundNo, r);
    if (plan.status !== 'PROCESSING') {
      const cb = finish(r, plan.status);
      if (plan.callback === 'send' && r.notifyUrl) deps.later(() => deps.deliver(cb));
    }
    return wire(r);
  }

  function find(outRefundNo: string): SandboxRefund {
    const r = refunds.get(outRefundNo);
    if (!r) throw new HttpError(404, 'NOT_FOUND', `no refund ${outRefundNo}`);
    return r;
  }

  function view(r: SandboxRefund): Record<string, unknown> {
    const { lastCallback, ...rest } = r;
    return { ...rest, lastNotificationId: lastCallback?.notificationId ?? null };
  }

  return {
    refunds: refunds as ReadonlyMap<string, SandboxRefund>,

    /** A signed v3 request on a refund route: the JSON to answer, or null when the path is not one. */
    v3(method: string, url: URL, raw: Buffer): Record<string, unknown> | null {
      if (url.pathname === REFUNDS_PATH && method === 'POST') return create(raw);
      const one = /^\/v3\/refund\/domestic\/refunds\/([^/]+)$/.exec(url.pathname);
      if (!one || method !== 'GET') return null;
      const r = refunds.get(decodeURIComponent(one[1]));
      if (!r) throw new HttpError(404, 'RESOURCE_NOT_EXISTS', '退款单不存在');
      return wire(r);
    },

    /** A control request about refunds: [status, payload], or null when the path is not one. */
    async control(req: IncomingMessage, url: URL, raw: Buffer): Promise<[number, unknown] | null> {
      const p = url.pathname;
      const plan = /^\/sandbox\/trades\/([^/]+)\/refund-plan$/.exec(p);
      if (plan && req.method === 'POST') {
        const b = raw.length ? parseBody(raw) : {};
        const status = (b.status ?? 'SUCCESS') as SandboxRefundStatus;
        const callback = (b.callback ?? 'send') as RefundPlan['callback'];
        if (![...FINAL, 'PROCESSING'].includes(status)) throw new HttpError(400, 'BAD_REQUEST', 'status must be SUCCESS, PROCESSING, ABNORMAL or CLOSED');
        if (callback !== 'send' && callback !== 'lose') throw new HttpError(400, 'BAD_REQUEST', 'callback must be send or lose');
        const orderNo = decodeURIComponent(plan[1]);
        plans.set(orderNo, { status, callback });
        return [200, { orderNo, plan: plans.get(orderNo) }];
      }
      if (p === '/sandbox/refunds' && req.method === 'GET') return [200, [...refunds.values()].map(view)];
      const m = /^\/sandbox\/refunds\/([^/]+)(?:\/(finish)|\/callbacks\/([^/]+))?$/.exec(p);
      if (!m) return null;
      const r = find(decodeURIComponent(m[1]));
      if (!m[2] && !m[3] && req.method === 'GET') return [200, view(r)];
      if (req.method !== 'POST') throw new HttpError(405, 'NOT_ALLOWED', `${req.method} ${p}`);
      if (m[3]) return [200, await deps.resend(r.lastCallback, `refund ${r.outRefundNo}`, m[3])];
      const b = raw.length ? parseBody(raw) : {};
      const status = (b.status ?? 'SUCCESS') as Final;
      if (!FINAL.includes(status)) throw new HttpError(400, 'BAD_REQUEST', 'status must be SUCCESS, ABNORMAL or CLOSED');
      if (r.status !== 'PROCESSING') throw new HttpError(409, 'CONFLICT', `refund ${r.outRefundNo} is ${r.status}, not PROCESSING`);
      const cb = finish(r, status);
      const callback = b.callback === 'lose' || !r.notifyUrl ? null : await deps.deliver(cb);
      return [200, { refund: view(r), callback }];
    },
  };
}

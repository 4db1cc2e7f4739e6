/**
 * The sandbox's trades and what every part of it shares (./server.ts builds it): its generated
 * merchant identity and keys, its trades in memory, the faults it plays and the timers its close clears.
 */
import { createHash, randomBytes, randomInt, type KeyObject } from 'node:crypto';
import { makeNonce } from '../wechat/crypto.js';
import { rfc3339Beijing } from '../wechat/client.js';
import { HttpError, parseBody, type SandboxCallback } from './http.js';

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

interface KeyPair {
  publicKey: KeyObject;
  privateKey: KeyObject;
}

/** One running sandbox: generated at its start, forgotten at its close. */
export interface SandboxState {
  mchid: string;
  appid: string;
  /** The merchant certificate's serial number, which the merchant's requests name. */
  serialNo: string;
  apiV3Key: string;
  publicKeyId: string;
  /** The "WeChat Pay" key pair: signs answers and callbacks. */
  platform: KeyPair;
  /** The merchant's key pair: its requests are checked against the public half. */
  merchant: KeyPair;
  trades: Map<string, SandboxTrade>;
  faults: SandboxFaults;
  timers: Set<NodeJS.Timeout>;
}

/** Runs `task` after `ms`, on a timer the sandbox's close clears. */
export function after(state: SandboxState, ms: number, task: () => void): void {
  const t = setTimeout(() => {
    state.timers.delete(t);
    task();
  }, ms);
  state.timers.add(t);
}

const OUT_TRADE_NO = /^[0-9A-Za-z_\-*|]{6,32}$/;

/** A trade as WeChat's query answers it (and as the callback's plaintext carries it). */
export function transaction(state: SandboxState, t: SandboxTrade): Record<string, unknown> {
  const base = { appid: t.appid, mchid: state.mchid, out_trade_no: t.orderNo, trade_type: t.tradeType, trade_state: t.state, attach: '' };
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

/** POST /v3/pay/transactions/{kind}: a new trade, or what an identical create of it answered. */
export function createTrade(state: SandboxState, kind: string, raw: Buffer): Record<string, string> {
  const { mchid, appid, trades } = state;
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

/** A trade as the control API shows it. */
export function view(t: SandboxTrade): Record<string, unknown> {
  const { prepay: _prepay, lastCallback, ...rest } = t;
  return { ...rest, lastNotificationId: lastCallback?.notificationId ?? null };
}

/** Moves a trade to `to` when its state is one of `from` (409 otherwise). */
export function move(t: SandboxTrade, to: SandboxTradeState, from: SandboxTradeState[]): void {
  if (!from.includes(t.state)) throw new HttpError(409, 'CONFLICT', `trade ${t.orderNo} is ${t.state}; cannot become ${to}`);
  t.state = to;
}

/** A stable fake openid per order number, 28 characters like WeChat's. */
function openid(orderNo: string): string {
  return `o${createHash('sha256').update(orderNo).digest('base64url').slice(0, 27)}`;
}

/**
 * The sandbox's control API (JSON over HTTP, unsigned): what tests and `npm run sandbox:pay` use to
 * read the credentials and the trades, pay, fail or close a trade, play a callback's retries and set
 * the faults. The routes are listed in ./server.ts; refunds' own are in ./refunds.ts.
 */
import { randomInt } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { rfc3339Beijing } from '../wechat/client.js';
import type { Callbacks } from './callbacks.js';
import { HttpError, parseBody } from './http.js';
import type { refundDesk } from './refunds.js';
import { move, view, type SandboxState } from './trades.js';

export function controlApi(state: SandboxState, deps: { credentials: () => object; refunds: ReturnType<typeof refundDesk>; callbacks: Callbacks }) {
  const { trades, faults } = state;
  const { refunds, callbacks } = deps;

  /** A control request: [status, payload]. */
  return async function control(req: IncomingMessage, url: URL, raw: Buffer): Promise<[number, unknown]> {
    const p = url.pathname;
    if (p === '/sandbox/credentials' && req.method === 'GET') return [200, deps.credentials()];
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
    const t = trades.get(decodeURIComponent(m[1]));
    if (!t) throw new HttpError(404, 'NOT_FOUND', `no trade ${decodeURIComponent(m[1])}`);
    if (!m[2] && !m[3] && req.method === 'GET') return [200, view(t)];
    if (req.method !== 'POST') throw new HttpError(405, 'NOT_ALLOWED', `${req.method} ${p}`);
    if (m[3]) return [200, await callbacks.resend(t.lastCallback, `trade ${t.orderNo} (pay it first)`, m[3])];
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
    t.lastCallback = callbacks.paid(t);
    const callback = b.callback === 'lose' ? null : await callbacks.deliver(t.lastCallback, t.lastCallback.headers);
    return [200, { trade: view(t), callback }];
  };
}

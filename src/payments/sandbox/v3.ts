/**
 * The sandbox's WeChat Pay v3 routes, answered as WeChat answers them: the merchant's signature
 * checked (401 SIGN_ERROR otherwise), every answer signed with the platform key, and the faults
 * (delay, corrupt signatures, 500 SYSTEMERROR) played. The routes are listed in ./server.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { MAX_CLOCK_SKEW_SECONDS, parseAuthorization, requestMessage, signResponseHeaders, verifyMessage } from '../wechat/crypto.js';
import { HttpError, parseBody } from './http.js';
import type { refundDesk } from './refunds.js';
import { after, createTrade, transaction, type SandboxState } from './trades.js';

export function v3Routes(state: SandboxState, refunds: ReturnType<typeof refundDesk>) {
  const { platform, merchant, publicKeyId, mchid, trades, faults } = state;

  /** A v3 answer, signed (or signed wrongly, when that fault is on), after the configured delay. */
  function answer(res: ServerResponse, status: number, payload: object | null): void {
    const body = Buffer.from(payload === null ? '' : JSON.stringify(payload));
    const headers = signResponseHeaders(platform.privateKey, publicKeyId, body);
    // A signature that is well-formed but over other bytes: what a tampered answer looks like.
    if (faults.corruptSignatures) headers['Wechatpay-Signature'] = signResponseHeaders(platform.privateKey, publicKeyId, Buffer.concat([body, Buffer.from(' ')]))['Wechatpay-Signature']!;
    const send = (): void => {
      res.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Request-ID': randomUUID(), 'Content-Length': body.length });
      res.end(body);
    };
    if (faults.delayMs <= 0) return send();
    after(state, faults.delayMs, send);
  }

  /** Why a v3 request is not signed by our merchant, or null when it is. */
  function signError(req: IncomingMessage, raw: Buffer): string | null {
    const auth = parseAuthorization(req.headers.authorization);
    if (!auth) return 'missing or malformed Authorization';
    if (auth.mchid !== mchid) return `unknown mchid ${auth.mchid}`;
    if (auth.serial_no !== state.serialNo) return `unknown merchant serial ${auth.serial_no}`;
    if (!(Math.abs(Date.now() / 1000 - Number(auth.timestamp)) <= MAX_CLOCK_SKEW_SECONDS)) return 'timestamp out of window';
    // What the merchant signed is the path and query exactly as they arrived.
    const message = requestMessage(req.method ?? 'GET', req.url ?? '/', auth.timestamp, auth.nonce_str, raw);
    return verifyMessage(merchant.publicKey, message, auth.signature) ? null : 'signature does not verify';
  }

  function handle(req: IncomingMessage, res: ServerResponse, url: URL, raw: Buffer): void {
    const why = signError(req, raw);
    if (why) throw new HttpError(401, 'SIGN_ERROR', `签名错误: ${why}`);
    if (faults.systemError) throw new HttpError(500, 'SYSTEMERROR', '系统错误');
    const refund = refunds.v3(req.method ?? 'GET', url, raw);
    if (refund) return answer(res, 200, refund);
    const create = /^\/v3\/pay\/transactions\/(native|h5|jsapi)$/.exec(url.pathname);
    if (create && req.method === 'POST') return answer(res, 200, createTrade(state, create[1], raw));
    const byNo = /^\/v3\/pay\/transactions\/out-trade-no\/([^/]+)(\/close)?$/.exec(url.pathname);
    if (!byNo) throw new HttpError(404, 'NOT_FOUND', '请求的资源不存在');
    const trade = trades.get(decodeURIComponent(byNo[1]));
    if (!byNo[2] && req.method === 'GET') {
      if (url.searchParams.get('mchid') !== mchid) throw new HttpError(400, 'PARAM_ERROR', '参数错误: mchid');
      if (!trade) throw new HttpError(404, 'ORDERNOTEXIST', '订单不存在');
      return answer(res, 200, transaction(state, trade));
    }
    if (byNo[2] && req.method === 'POST') {
      if (parseBody(raw).mchid !== mchid) throw new HttpError(400, 'PARAM_ERROR', '参数错误: mchid');
      if (trade?.state === 'SUCCESS') throw new HttpError(400, 'ORDERPAID', '订单已支付');
      if (trade) trade.state = 'CLOSED';
      return answer(res, 204, null);
    }
    throw new HttpError(405, 'INVALID_REQUEST', 'method not allowed');
  }

  return { handle, answer };
}

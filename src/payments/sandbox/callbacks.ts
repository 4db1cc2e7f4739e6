/**
 * The sandbox's notifications: built as WeChat sends them (encrypted with the APIv3 key, signed with
 * the platform key), POSTed to a trade's or a refund's notify_url, and sent again as a retry, a
 * replay or a forgery would arrive. The sandbox never retries on its own (WeChat does, for about a
 * day): the control API's `callbacks/{kind}` routes play the retries.
 */
import { generateKeyPair, randomBytes, randomUUID, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { request } from 'undici';
import { SIGNTEST_PREFIX, encryptResource, signResponseHeaders } from '../wechat/crypto.js';
import { rfc3339Beijing } from '../wechat/client.js';
import { HttpError, type Delivery, type SandboxCallback } from './http.js';
import { transaction, type SandboxState, type SandboxTrade } from './trades.js';

export const generateRsa = promisify(generateKeyPair);
/** WeChat gives up on a callback answer after about 5 s. */
const CALLBACK_TIMEOUT_MS = 5_000;
const STALE_CALLBACK_MS = 10 * 60 * 1000;

export function callbacks(state: SandboxState) {
  const { platform, publicKeyId, apiV3Key } = state;
  let forgedKey: KeyObject | null = null; // made on first use: most runs never forge

  /** A notification as WeChat sends it: `plaintext` AES-256-GCM encrypted with the APIv3 key, the body signed. */
  function notification(url: string, eventType: string, summary: string, originalType: string, plaintext: object): SandboxCallback {
    const notificationId = randomUUID();
    const resource = { original_type: originalType, ...encryptResource(apiV3Key, JSON.stringify(plaintext), originalType) };
    const event = { id: notificationId, create_time: rfc3339Beijing(new Date()), resource_type: 'encrypt-resource', event_type: eventType, summary, resource };
    const body = Buffer.from(JSON.stringify(event));
    return { url, notificationId, body, headers: signResponseHeaders(platform.privateKey, publicKeyId, body) };
  }

  /** A paid trade's TRANSACTION.SUCCESS notification. */
  function paid(t: SandboxTrade): SandboxCallback {
    return notification(t.notifyUrl, 'TRANSACTION.SUCCESS', '支付成功', 'transaction', transaction(state, t));
  }

  async function deliver(cb: SandboxCallback, headers: Record<string, string> = cb.headers): Promise<Delivery> {
    try {
      const res = await request(cb.url, {
        method: 'POST',
        headers: { ...headers, 'Content-Type': 'application/json', 'User-Agent': 'Mozilla/4.0 (deadline payment sandbox)' },
        body: cb.body, // the exact bytes that were signed
        signal: AbortSignal.timeout(CALLBACK_TIMEOUT_MS),
      });
      return { status: res.statusCode, body: await res.body.text() };
    } catch (e) {
      return { status: 0, body: '', error: (e as Error).message };
    }
  }

  /** A notification sent again as a retry, a replay or a forgery would arrive (`kind`). */
  async function resend(cb: SandboxCallback | null, what: string, kind: string): Promise<Delivery> {
    if (!cb) throw new HttpError(409, 'CONFLICT', `${what} has no notification yet`);
    const key = platform.privateKey;
    switch (kind) {
      case 'replay':
        return deliver(cb, cb.headers);
      case 'duplicate':
        return deliver(cb, signResponseHeaders(key, publicKeyId, cb.body));
      case 'stale':
        return deliver(cb, signResponseHeaders(key, publicKeyId, cb.body, new Date(Date.now() - STALE_CALLBACK_MS)));
      case 'probe': {
        const headers = signResponseHeaders(key, publicKeyId, cb.body);
        headers['Wechatpay-Signature'] = SIGNTEST_PREFIX + randomBytes(192).toString('base64');
        return deliver(cb, headers);
      }
      case 'forged': {
        forgedKey ??= (await generateRsa('rsa', { modulusLength: 2048 })).privateKey;
        return deliver(cb, signResponseHeaders(forgedKey, publicKeyId, cb.body));
      }
      default:
        throw new HttpError(400, 'BAD_REQUEST', `unknown callback kind ${kind}: probe, replay, duplicate, stale or forged`);
    }
  }

  return { notification, paid, deliver, resend };
}

export type Callbacks = ReturnType<typeof callbacks>;

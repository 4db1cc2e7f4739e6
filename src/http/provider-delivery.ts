import type { Request, Response } from 'express';
import type { Redis } from 'ioredis';
import type { AppServices } from '../app-services.js';
import { CallbackRejected, type CallbackAnswer, type PaymentProvider, type RawCallback } from '../payments/provider.js';

export const answer = (res: Response, a: CallbackAnswer) => res.status(a.status).type(a.contentType).send(a.body);

/** What both kinds of provider delivery (payment callbacks, refund notifications) carry for the checks here. */
interface Delivery {
  notificationId: string;
  replayKey: string | null;
}

/**
 * The steps every provider delivery shares, before its own settling: find the provider by the path's
 * name, verify the delivery over its raw bytes, refuse a replay. Answers the provider itself and returns
 * undefined when the delivery goes no further.
 * - An unknown name (looked up in an allowlist, so `constructor` is a name like any other), the sandbox
 *   while PAYMENTS_SANDBOX is off, or a provider without this kind of delivery: 404, the name not echoed.
 * - A forged, stale or probe delivery: the provider's own refusal (401/400), logged.
 * - The same signed delivery seen before (its timestamp and nonce) is a replay, refused: remembered for
 *   15 minutes, well past the 300 s after which its timestamp alone refuses it. Redis away: not checked
 *   (the notification id still makes a second delivery change nothing).
 */
export async function readDelivery<N extends Delivery>(
  services: AppServices,
  redis: Redis,
  req: Request,
  res: Response,
  kind: { what: string; replaySpace: string; verify: (provider: PaymentProvider) => ((raw: RawCallback) => Promise<N>) | undefined },
): Promise<{ provider: PaymentProvider; notification: N } | undefined> {
  const name = String(req.params.provider);
  const provider = await services.providers.byName(name).catch((err) => {
    services.log.error({ err, provider: name }, `payment provider unavailable for a ${kind.what}`);
    return undefined;
  });
  const verify = provider ? kind.verify(provider) : undefined;
  if (provider === null || (provider && !verify)) {
    res.status(404).json({ code: 'FAIL', message: 'No such payment provider' });
    return undefined;
  }
  if (provider === undefined || !verify) {
    res.status(503).json({ code: 'FAIL', message: 'Payment provider not ready' });
    return undefined;
  }
  const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
  let notification: N;
  try {
    notification = await verify({ headers: req.headers, body });
  } catch (err) {
    if (err instanceof CallbackRejected) {
      services.log.warn({ provider: name, reason: err.message, ip: req.ip }, `${kind.what} refused`);
      answer(res, provider.failed(err.status, err.message));
    } else {
      services.log.error({ err, provider: name }, `${kind.what} could not be read`);
      answer(res, provider.failed(500, 'Internal error'));
    }
    return undefined;
  }
  if (notification.replayKey) {
    const fresh = await redis
      .set(`${services.config.redisPrefix}:${kind.replaySpace}:${name}:${notification.replayKey}`, '1', 'EX', 900, 'NX')
      .catch(() => 'OK');
    if (fresh === null) {
      services.log.warn({ provider: name, reason: 'replayed delivery', notificationId: notification.notificationId, ip: req.ip }, `${kind.what} refused`);
      answer(res, provider.failed(401, kind.replaySpace === 'callback' ? 'Replayed callback' : 'Replayed notification'));
      return undefined;
    }
  }
  return { provider, notification };
}

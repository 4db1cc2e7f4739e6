import type { Request, Response } from 'express';
import type { Redis } from 'ioredis';
import type { AppServices } from '../app-services.js';
import type { CallbackAnswer, PaymentProvider } from '../payments/provider.js';
import { checkDelivery, type Delivery, type DeliveryKind } from '../services/payments/callbacks.js';

export const answer = (res: Response, a: CallbackAnswer) => res.status(a.status).type(a.contentType).send(a.body);

/** A provider's delivery as the payments service reads it: the path's provider name, the headers and the raw bytes. */
export function deliveryOf(req: Request): Delivery {
  return { provider: String(req.params.provider), headers: req.headers, body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0), ip: req.ip };
}

/**
 * A delivery's shared checks (services/payments/callbacks.ts, `checkDelivery`) for a route that settles
 * it itself: answers the provider and returns undefined when the delivery goes no further.
 */
export async function readDelivery<N extends { notificationId: string; replayKey: string | null }>(
  services: AppServices,
  redis: Redis,
  req: Request,
  res: Response,
  kind: DeliveryKind<N>,
): Promise<{ provider: PaymentProvider; notification: N } | undefined> {
  const checks = { providers: services.providers, redis, redisPrefix: services.config.redisPrefix, log: services.log };
  const checked = await checkDelivery(checks, deliveryOf(req), kind);
  if ('answer' in checked) {
    answer(res, checked.answer);
    return undefined;
  }
  return checked;
}

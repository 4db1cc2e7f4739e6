import type { Request, Response } from 'express';
import type { CallbackAnswer } from '../payments/provider.js';
import type { Delivery } from '../services/payments/callbacks.js';

/** Writes the payments service's answer to a provider's delivery, in the provider's own shape. */
export const answer = (res: Response, a: CallbackAnswer) => res.status(a.status).type(a.contentType).send(a.body);

/** A provider's delivery as the payments service reads it: the path's provider name, the headers and the raw bytes. */
export function deliveryOf(req: Request): Delivery {
  return { provider: String(req.params.provider), headers: req.headers, body: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0), ip: req.ip };
}

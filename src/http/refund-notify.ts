import express, { Router, type Request, type Response } from 'express';
import type { Redis } from 'ioredis';
import type { AppServices } from '../app-services.js';
import { CallbackRejected, type CallbackAnswer } from '../payments/provider.js';

const answer = (res: Response, a: CallbackAnswer) => res.status(a.status).type(a.contentType).send(a.body);

/**
 * Refund notifications: `POST /api/payments/:provider/refund-notify` (WeChat Pay and the sandbox,
 * which announce a refund's end; Alipay answers its refunds at once and has none, so 404 there).
 * Verified and decrypted like payment callbacks (a forged, stale, probe or replayed delivery is
 * refused with 401/400 and logged), then settled once through RefundService (a notification for a
 * refund already settled, by the provider's answer or refund-reconciliation, changes nothing).
 */
export function refundNotifyRoutes(services: AppServices, redis: Redis): Router {
  const router = Router();
  router.post('/api/payments/:provider/refund-notify', express.raw({ type: () => true, limit: '64kb' }), async (req: Request, res: Response) => {
    const name = String(req.params.provider);
    const provider = await services.providers.byName(name).catch((err) => {
      services.log.error({ err, provider: name }, 'payment provider unavailable for a refund notification');
      return undefined;
    });
    // Unknown names, the sandbox while PAYMENTS_SANDBOX is off, and providers without refund notifications.
    if (provider === null || (provider && !provider.verifyRefundCallback)) {
      res.status(404).json({ code: 'FAIL', message: 'No such payment provider' });
      return;
    }
    if (provider === undefined) {
      res.status(503).json({ code: 'FAIL', message: 'Payment provider not ready' });
      return;
    }
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    let notification;
    try {
      notification = await provider.verifyRefundCallback!({ headers: req.headers, body });
    } catch (err) {
      if (err instanceof CallbackRejected) {
        services.log.warn({ provider: name, reason: err.message, ip: req.ip }, 'refund notification refused');
        answer(res, provider.failed(err.status, err.message));
      } else {
        services.log.error({ err, provider: name }, 'refund notification could not be read');
        answer(res, provider.failed(500, 'Internal error'));
      }
      return;
    }
    // As for payment callbacks: the same signed delivery twice is a replay, refused (15 minutes kept,
    // past the 300 s its timestamp is good for); Redis away, not checked (settling twice changes nothing).
    if (notification.replayKey) {
      const fresh = await redis
        .set(`${services.config.redisPrefix}:refund-notify:${name}:${notification.replayKey}`, '1', 'EX', 900, 'NX')
        .catch(() => 'OK');
      if (fresh === null) {
        services.log.warn({ provider: name, reason: 'replayed delivery', notificationId: notification.notificationId, ip: req.ip }, 'refund notification refused');
        answer(res, provider.failed(401, 'Replayed notification'));
        return;
      }
    }
    try {
      const outcome = await services.refunds.settleNotified(provider.name, notification);
      const fields = { provider: name, outRefundNo: notification.outRefundNo, state: notification.state, notificationId: notification.notificationId, outcome };
      if (outcome === 'UNKNOWN') services.log.warn(fields, 'refund notification for no refund of ours: nothing to do');
      else services.log.info(fields, 'refund notification applied');
      answer(res, provider.accepted());
    } catch (err) {
      // Not applied: the provider sends it again, and refund-reconciliation asks meanwhile.
      services.log.error({ err, provider: name, outRefundNo: notification.outRefundNo }, 'refund notification not applied; the provider will retry');
      answer(res, provider.failed(500, 'Internal error'));
    }
  });
  return router;
}

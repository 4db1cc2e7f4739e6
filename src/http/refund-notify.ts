import express, { Router, type Request, type Response } from 'express';
import type { Redis } from 'ioredis';
import type { AppServices } from '../app-services.js';
import { answer, readDelivery } from './provider-delivery.js';

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
    // Alipay answers its refunds at once and has no refund notifications: no verifier, so 404 there.
    const delivery = await readDelivery(services, redis, req, res, { what: 'refund notification', replaySpace: 'refund-notify', verify: (p) => p.verifyRefundCallback?.bind(p) });
    if (!delivery) return;
    const { provider, notification } = delivery;
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

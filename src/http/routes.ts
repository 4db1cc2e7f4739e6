import express, { Router, type Request, type Response } from 'express';
import { identityFromHeader } from '../auth.js';
import { AppError, httpStatus, unauthenticated } from '../errors.js';
import type { AppServices } from '../app-services.js';
import type { Redis } from 'ioredis';
import { playgroundHtml } from './playground.js';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import { answer, deliveryOf } from './provider-delivery.js';

function sendError(res: Response, err: unknown, services: AppServices): void {
  if (err instanceof AppError) {
    res.status(httpStatus[err.code]).json({ success: false, code: err.code, message: err.message });
    return;
  }
  if (isDatabaseUnavailable(err)) {
    res.status(503).json({ success: false, code: 'SERVICE_UNAVAILABLE', message: 'The database is unavailable; try again shortly' });
    return;
  }
  services.log.error({ err }, 'REST request failed');
  res.status(500).json({ success: false, code: 'INTERNAL_SERVER_ERROR', message: 'Internal server error' });
}

/**
 * A check that has not answered in 2 s counts as down: probes give up after a few seconds (Kubernetes'
 * default is 1 s), and a database that drops packets would otherwise hold the answer for the pool's
 * 5 s connect timeout.
 */
function withinHealthTimeout<T>(check: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('health check timed out')), 2_000)));
  return Promise.race([check, timeout]).finally(() => clearTimeout(timer));
}

export function restRoutes(services: AppServices, redis: Redis): Router {
  const router = Router();

  router.get('/health', async (_req: Request, res: Response) => {
    const checks: Record<string, 'ok' | 'down'> = {};
    // Redis: not a queued PING (it would wait out the reconnects): down at once while a connection is,
    // and while the subscriber is still catching up on what it missed.
    const redisUp = redis.status === 'ready' && services.bus.listening;
    await Promise.all([
      withinHealthTimeout(services.orm.em.fork().execute('select 1')).then(() => (checks.postgres = 'ok'), () => (checks.postgres = 'down')),
      redisUp ? withinHealthTimeout(redis.ping()).then(() => (checks.redis = 'ok'), () => (checks.redis = 'down')) : (checks.redis = 'down'),
    ]);
    const ok = Object.values(checks).every((v) => v === 'ok');
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'degraded', checks, serverTime: services.clock.now().toISOString() });
  });

  // 503 when a periodic job is overdue or its last run failed, with the reasons (src/scheduling/task-health.ts).
  // Real time, not the app clock: runs are stamped with it.
  router.get('/health/tasks', async (_req: Request, res: Response) => {
    try {
      const health = await services.jobs.health(new Date());
      res.status(health.ok ? 200 : 503).json({ status: health.ok ? 'ok' : 'failing', reasons: health.reasons });
    } catch (err) {
      services.log.warn({ err }, 'task health could not be read');
      res.status(503).json({ status: 'unknown', reasons: ['job states could not be read'] });
    }
  });

  // The seed's REST shape: cancel an auction's end task (the auction itself is cancelled).
  router.delete('/api/auction-tasks/:auctionId', async (req: Request, res: Response) => {
    try {
      const user = identityFromHeader(services.tokens, req.headers.authorization);
      if (!user) throw unauthenticated();
      await services.users.ensure(() => services.orm.em.fork(), user);
      const auctionId = String(req.params.auctionId);
      const auction = await services.tx.run((uow) => services.auctions.cancel(uow, user, auctionId));
      res.json({ success: true, message: `Auction end task for ${auction.id} cancelled`, data: { auctionId: auction.id, status: auction.status } });
    } catch (err) {
      sendError(res, err, services);
    }
  });

  // Payment callbacks and refund notifications: the protocol (verification over the raw bytes,
  // replays, applying once) is the payments service's; a route hands it the bytes and writes its answer.
  const delivered = express.raw({ type: () => true, limit: '64kb' });
  router.post('/api/payments/:provider/notify', delivered, async (req: Request, res: Response) => {
    answer(res, await services.paymentCallbacks.paid(deliveryOf(req)));
  });
  router.post('/api/payments/:provider/refund-notify', delivered, async (req: Request, res: Response) => {
    answer(res, await services.paymentCallbacks.refunded(deliveryOf(req)));
  });

  // A callback body the parser refused (too large, unreadable) still gets the provider's JSON shape.
  router.use('/api/payments', (err: unknown, _req: Request, res: Response, next: (err?: unknown) => void) => {
    const status = (err as { status?: number; statusCode?: number } | null)?.status ?? (err as { statusCode?: number } | null)?.statusCode;
    if (typeof status !== 'number' || status < 400 || status >= 500) return next(err);
    services.log.warn({ status, reason: (err as Error).message }, 'payment callback refused');
    res.status(status).json({ code: 'FAIL', message: (err as Error).message });
  });

  return router;
}

/** A browser asking for /graphql gets the playground; everything else goes to Apollo. */
export function wantsPlayground(req: Request): boolean {
  return req.method === 'GET' && (req.headers.accept ?? '').includes('text/html');
}

export { playgroundHtml };

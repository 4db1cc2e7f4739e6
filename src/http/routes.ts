import { Router, type Request, type Response } from 'express';
import { GraphQLError } from 'graphql';
import { identityFromHeader } from '../auth.js';
import { httpStatus, unauthenticated, type ErrorCode } from '../errors.js';
import type { AppServices } from '../app-services.js';
import type { Redis } from 'ioredis';
import { playgroundHtml } from './playground.js';

function sendError(res: Response, err: unknown, services: AppServices): void {
  if (err instanceof GraphQLError && typeof err.extensions.code === 'string' && err.extensions.code in httpStatus) {
    const code = err.extensions.code as ErrorCode;
    res.status(httpStatus[code]).json({ success: false, code, message: err.message });
    return;
  }
  services.log.error({ err }, 'REST request failed');
  res.status(500).json({ success: false, code: 'INTERNAL_SERVER_ERROR', message: 'Internal server error' });
}

export function restRoutes(services: AppServices, redis: Redis): Router {
  const router = Router();

  router.get('/health', async (_req: Request, res: Response) => {
    const checks: Record<string, 'ok' | 'down'> = {};
    await services.orm.em.fork().execute('select 1').then(() => (checks.postgres = 'ok'), () => (checks.postgres = 'down'));
    await redis.ping().then(() => (checks.redis = 'ok'), () => (checks.redis = 'down'));
    const ok = Object.values(checks).every((v) => v === 'ok');
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'degraded', checks, serverTime: services.clock.now().toISOString() });
  });

  // The seed's REST shape: cancel an auction's end task (the auction itself is cancelled).
  router.delete('/api/auction-tasks/:auctionId', async (req: Request, res: Response) => {
    try {
      const user = identityFromHeader(services.config.jwtSecret, req.headers.authorization);
      if (!user) throw unauthenticated();
      await services.users.ensure(services.orm.em.fork(), user);
      const auctionId = String(req.params.auctionId);
      const auction = await services.tx.run((uow) => services.auctions.cancel(uow, user, auctionId));
      res.json({ success: true, message: `Auction end task for ${auction.id} cancelled`, data: { auctionId: auction.id, status: auction.status } });
    } catch (err) {
      sendError(res, err, services);
    }
  });

  return router;
}

/** A browser asking for /graphql gets the playground; everything else goes to Apollo. */
export function wantsPlayground(req: Request): boolean {
  return req.method === 'GET' && (req.headers.accept ?? '').includes('text/html');
}

export { playgroundHtml };

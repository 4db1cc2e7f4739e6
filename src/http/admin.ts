import { Router, type NextFunction, type Request, type Response } from 'express';
import { createExpressMiddleware } from 'agendash';
import { identityFromHeader, verifyToken, type TokenKeys } from '../auth.js';
import type { Identity } from '../services/users.js';
import type { Scheduler } from '../scheduling/agenda.js';
import type { Logger } from '../logger.js';
import { AppError } from '../errors.js';

/** The cookie the playground's token bar sets (through `POST /admin/session`) so a browser can open Agendash. */
export const ADMIN_COOKIE = 'deadline_admin';

function cookieToken(req: Request): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [name, ...value] = part.trim().split('=');
    if (name === ADMIN_COOKIE) return decodeURIComponent(value.join('='));
  }
  return undefined;
}

/** Who is asking: the Bearer header first, else the admin cookie. null: nobody; throws on a bad token. */
function identity(keys: TokenKeys, req: Request): Identity | null {
  const header = req.headers.authorization;
  if (header) return identityFromHeader(keys, header);
  const token = cookieToken(req);
  return token ? verifyToken(keys, token) : null;
}

const refuse = (res: Response, status: 401 | 403, message: string) =>
  res.status(status).json({ success: false, code: status === 401 ? 'UNAUTHENTICATED' : 'FORBIDDEN', message });

/**
 * Admins only, by Bearer token or the admin cookie: Agendash has no authentication of its own
 * (FIELD-NOTES.md), so nothing under the mount is reached without this.
 */
export function requireAdmin(keys: TokenKeys) {
  return (req: Request, res: Response, next: NextFunction) => {
    let who: Identity | null;
    try {
      who = identity(keys, req);
    } catch (err) {
      return refuse(res, 401, err instanceof AppError ? err.message : 'Invalid token');
    }
    if (!who) return refuse(res, 401, 'An admin token is required (Authorization: Bearer, or POST /admin/session first)');
    if (who.role !== 'admin') return refuse(res, 403, 'Admins only');
    res.locals.admin = who;
    next();
  };
}

/**
 * `POST /admin/session` with an admin's `Authorization: Bearer <token>` sets an HttpOnly, SameSite=Strict
 * cookie for `/admin` lasting as long as the token (a browser cannot send the header when it opens a
 * page); `DELETE /admin/session` clears it. `/admin/jobs`: Agendash over this instance's Agenda.
 */
export function adminRoutes(keys: TokenKeys, scheduler: Scheduler, log: Logger): Router {
  const router = Router();
  router.post('/admin/session', (req: Request, res: Response) => {
    let who: Identity | null;
    let token: string;
    try {
      who = identityFromHeader(keys, req.headers.authorization);
      token = String(req.headers.authorization).trim().split(/\s+/)[1];
    } catch (err) {
      return refuse(res, 401, err instanceof AppError ? err.message : 'Invalid token');
    }
    if (!who) return refuse(res, 401, 'Authorization: Bearer <admin token> is required');
    if (who.role !== 'admin') return refuse(res, 403, 'Admins only');
    // Every accepted token expires (verifyToken refuses one without exp).
    const maxAge = Math.max(0, Math.floor(((who.expiresAt?.getTime() ?? Date.now()) - Date.now()) / 1000));
    const secure = req.secure ? '; Secure' : '';
    res.setHeader('Set-Cookie', `${ADMIN_COOKIE}=${encodeURIComponent(token)}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure}`);
    log.info({ userId: who.id }, 'admin session cookie set');
    res.status(204).end();
  });
  router.delete('/admin/session', (_req: Request, res: Response) => {
    res.setHeader('Set-Cookie', `${ADMIN_COOKIE}=; Path=/admin; HttpOnly; SameSite=Strict; Max-Age=0`);
    res.status(204).end();
  });
  router.use('/admin/jobs', requireAdmin(keys), agendashActions(log), createExpressMiddleware(scheduler));
  return router;
}

/**
 * Pausing, resuming, creating or deleting through Agendash would go around `job_states` (a pause every
 * instance obeys and a restart keeps) and the audit log: refused, pointing to the GraphQL admin API.
 * Requeue and retry (run again now) are let through and logged with the admin's id.
 */
function agendashActions(log: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    if (req.method !== 'POST') return next();
    const action = /^\/api\/jobs\/([a-z]+)$/.exec(req.path)?.[1];
    if (action === 'pause' || action === 'resume' || action === 'create' || action === 'delete') {
      res.status(409).json({ success: false, code: 'CONFLICT', message: `Use the GraphQL admin API (pauseJob, resumeJob, runJob) instead of Agendash's ${action}: it records job states and the audit log` });
      return;
    }
    log.info({ userId: (res.locals.admin as Identity).id, action, path: req.path }, 'agendash action');
    next();
  };
}

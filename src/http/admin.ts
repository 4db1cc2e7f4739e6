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
  router.use('/admin/jobs', requireAdmin(keys), agendashAllowlist(log), createExpressMiddleware(scheduler));
  return router;
}

/**
 * A path under the mount as Express's router may read it, reduced to one form: percent-encoding
 * decoded, lower case, repeated slashes and a trailing one collapsed. null: it does not decode
 * cleanly (malformed or double encoding), which no Agendash page or call sends.
 */
export function normalisedPath(rawUrl: string): string | null {
  const query = rawUrl.search(/[?#]/);
  let path: string;
  try {
    path = decodeURIComponent(query === -1 ? rawUrl : rawUrl.slice(0, query));
  } catch {
    return null;
  }
  if (/[%\\\0]/.test(path)) return null;
  return path.toLowerCase().replace(/\/{2,}/g, '/').replace(/\/$/, '') || '/';
}

/** Agendash's reads (its page, assets and GET api: the routes in agendash/dist/middlewares/express.js). */
const AGENDASH_READS = /^\/(index\.html|assets\/[\w-]+\.(js|css)|api|api\/(stats|logs|events))?$/;
/** Run again now: harmless to repeat, and logged with the admin's id. */
const AGENDASH_ACTIONS = new Set(['/api/jobs/requeue', '/api/jobs/retry']);
/** Refused with a pointer to the GraphQL admin API. */
const AGENDASH_REFUSED = /^\/api\/jobs\/(pause|resume|create|delete)$/;

/**
 * An allowlist in front of Agendash, on the normalised path: Express matches routes ignoring case and
 * a trailing slash, so a guard on the exact path (`/api/jobs/delete`) let `/api/jobs/DELETE/` through
 * to Agendash (FIELD-NOTES.md, "Hostile input"). Reads and requeue/retry pass; pausing, resuming,
 * creating or deleting would go around `job_states` (a pause every instance obeys and a restart keeps)
 * and the audit log: 409 with the GraphQL mutation to use instead. Anything else is 404, before Agendash.
 */
function agendashAllowlist(log: Logger) {
  return (req: Request, res: Response, next: NextFunction) => {
    const path = normalisedPath(req.url);
    if (path === null) return void res.status(400).json({ success: false, code: 'BAD_REQUEST', message: 'The path is not encoded correctly' });
    if ((req.method === 'GET' || req.method === 'HEAD') && AGENDASH_READS.test(path)) return next();
    if (req.method === 'POST' && AGENDASH_ACTIONS.has(path)) {
      log.info({ userId: (res.locals.admin as Identity).id, action: path.slice('/api/jobs/'.length), path }, 'agendash action');
      return next();
    }
    const refused = req.method === 'POST' ? AGENDASH_REFUSED.exec(path)?.[1] : undefined;
    if (refused) {
      res.status(409).json({ success: false, code: 'CONFLICT', message: `Use the GraphQL admin API (pauseJob, resumeJob, runJob) instead of Agendash's ${refused}: it records job states and the audit log` });
      return;
    }
    res.status(404).json({ success: false, code: 'NOT_FOUND', message: 'Not one of the Agendash pages or calls this server allows' });
  };
}

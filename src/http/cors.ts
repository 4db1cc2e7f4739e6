import type { IncomingMessage, ServerResponse } from 'node:http';

/** The request headers a browser client may send to /graphql. */
const ALLOWED_HEADERS = 'Authorization, Content-Type, x-request-id';
/** How long a browser may reuse a preflight's answer (Chromium caps it at 2 h, Firefox at 24 h). */
const PREFLIGHT_MAX_AGE_SECONDS = 600;

const isGraphqlPath = (url: string | undefined) => url === '/graphql' || !!url?.startsWith('/graphql?');

/**
 * CORS for /graphql, for browser clients on the CORS_ORIGINS origins. Runs on the HTTP server ahead
 * of both paths (the direct JSON path and Express), so they answer alike: a listed origin gets
 * `Access-Control-Allow-Origin` (its own, never `*`), an unlisted one no CORS header at all, and the
 * browser keeps the answer from its page. No credentials: the token travels in Authorization, never
 * in a cookie. Returns true when it answered the request itself (a preflight); undefined without origins
 * (no cross-origin access: nothing to add).
 */
export function graphqlCors(origins: readonly string[]): ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined {
  if (origins.length === 0) return undefined;
  const allowed = new Set(origins);
  return (req, res) => {
    if (!isGraphqlPath(req.url)) return false;
    // The answer depends on Origin: a cache in between must not give one origin's answer to another.
    res.setHeader('Vary', 'Origin');
    const origin = req.headers.origin;
    const listed = typeof origin === 'string' && allowed.has(origin);
    if (listed) res.setHeader('Access-Control-Allow-Origin', origin);
    if (req.method !== 'OPTIONS' || !req.headers['access-control-request-method']) return false;
    if (listed) {
      res.setHeader('Access-Control-Allow-Methods', 'GET, POST');
      res.setHeader('Access-Control-Allow-Headers', ALLOWED_HEADERS);
      res.setHeader('Access-Control-Max-Age', String(PREFLIGHT_MAX_AGE_SECONDS));
    }
    res.writeHead(204, { 'Content-Length': '0' });
    res.end();
    return true;
  };
}

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { requestScope } from '../request-scope.js';

/**
 * An `x-request-id` a client or proxy sends is kept when it is a plain token of at most 100 characters
 * (a UUID, a trace id); anything else (too long, spaces, control characters) is replaced, never echoed.
 */
const ACCEPTED = /^[\w.:@/+=-]{1,100}$/;

/**
 * Every HTTP answer carries `x-request-id` (the client's, or one made here), and everything the request
 * causes runs in its scope, so every log line it writes names it. Before any route: the GraphQL direct
 * path, Express, the REST routes and the CORS preflight all answer with it. The id is also left in
 * `req.headers`, where the GraphQL context takes it from.
 */
export function withRequestId(req: IncomingMessage, res: ServerResponse, handle: () => void): void {
  const given = req.headers['x-request-id'];
  const requestId = typeof given === 'string' && ACCEPTED.test(given) ? given : randomUUID();
  req.headers['x-request-id'] = requestId;
  res.setHeader('x-request-id', requestId);
  requestScope.run({ requestId }, handle);
}

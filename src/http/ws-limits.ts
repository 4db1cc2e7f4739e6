import type { IncomingMessage } from 'node:http';
import { GraphQLError } from 'graphql';
import type { WebSocket, WebSocketServer } from 'ws';

/**
 * The graphql-ws limits against hostile clients (PRODUCT.md "Limits"): which browser pages may open a
 * socket, how many sockets one user holds, a socket outliving its token, and sockets whose peer is gone.
 * The message size is ws's own `maxPayload`; the subscriptions per socket are counted in graphql-ws.ts.
 */

/** Close codes a client sees. 4403 is graphql-ws's Forbidden; its client retries it (a fresh token may do). */
export const TOKEN_EXPIRED_CLOSE = { code: 4403, reason: 'Token expired' } as const;
/** graphql-ws's client gives up on 4429 rather than retry: another socket would be refused as well. */
export const TOO_MANY_SOCKETS_CLOSE = { code: 4429, reason: 'Too many sockets for this user' } as const;

export function tooManySubscriptions(max: number): GraphQLError {
  return new GraphQLError(`At most ${max} subscriptions per socket (WS_MAX_SUBSCRIPTIONS); complete one first`, {
    extensions: { code: 'LIMIT_EXCEEDED', limit: max },
  });
}

/**
 * Whether a browser page may open a socket: a WebSocket upgrade is not subject to CORS, so without
 * this any page a signed-in user visits could subscribe with the token it finds in the page's storage
 * (or, behind cookies, the user's). No `Origin` header: not a browser (servers, the CLI), accepted.
 * Same origin is the host the request was sent to (the `Host` header); the scheme is not compared,
 * because TLS usually ends at a proxy and the server then sees `http` for an `https://` page.
 */
export function originAllowed(origin: string | undefined, host: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (origin === undefined) return true;
  let page: URL;
  try {
    page = new URL(origin);
  } catch {
    return false; // `null` (sandboxed frames, file: pages) and garbage
  }
  if (allowed.has(page.origin)) return true;
  if (!host) return false;
  try {
    // Through a URL of the page's scheme, so `example.com:443` and `example.com` compare equal for https.
    return new URL(`${page.protocol}//${host}`).host === page.host;
  } catch {
    return false;
  }
}

/** The `verifyClient` for ws: 403 for a page whose origin is not allowed (CORS_ORIGINS, or same origin). */
export function verifyOrigin(corsOrigins: readonly string[]) {
  const allowed = new Set(corsOrigins.map((o) => new URL(o).origin));
  return (info: { origin?: string; req: IncomingMessage }, done: (ok: boolean, code?: number, message?: string) => void) =>
    originAllowed(info.origin || undefined, info.req.headers.host, allowed) ? done(true) : done(false, 403, 'Origin not allowed');
}

/**
 * Sockets per user on this instance. A user's entry lives while they hold a socket, so the map is
 * bounded by the open sockets themselves.
 */
export class SocketsPerUser {
  private readonly open = new Map<string, number>();

  constructor(private readonly max: number) {}

  /** Counts `socket` for `userId` until it closes; false (not counted) when the user holds `max` already. */
  take(userId: string, socket: WebSocket): boolean {
    const n = this.open.get(userId) ?? 0;
    if (n >= this.max) return false;
    this.open.set(userId, n + 1);
    socket.once('close', () => {
      const left = (this.open.get(userId) ?? 1) - 1;
      if (left > 0) this.open.set(userId, left);
      else this.open.delete(userId);
    });
    return true;
  }
}

/** setTimeout's longest delay (2^31 − 1 ms, ~24.8 days): a longer one fires at once, with a warning. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Closes `socket` with 4403 when its token expires: a token is checked once, at `connection_init`, and a
 * socket would otherwise keep a revoked user's subscriptions for as long as it stays up. The timer goes
 * with the socket. Against `Date.now()`, the clock the token was verified with.
 */
export function closeAtExpiry(socket: WebSocket, expiresAt: Date | undefined): void {
  if (!expiresAt) return;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const left = expiresAt.getTime() - Date.now();
    if (left <= 0) return socket.close(TOKEN_EXPIRED_CLOSE.code, TOKEN_EXPIRED_CLOSE.reason);
    timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
  };
  socket.once('close', () => clearTimeout(timer));
  arm();
}

/**
 * Every `intervalMs` each socket is pinged, and one that has not answered the previous ping is
 * terminated (no closing handshake: its peer is gone, or so far behind that it does not read). A
 * socket is dead ~1–2 intervals after its peer stopped answering. One timer for all sockets, not one
 * per socket as graphql-ws's own keep-alive (which graphql-ws.ts turns off): 10,000 sockets are one
 * timer and a WeakSet, not 10,000 timers and a `pong` listener per ping.
 *
 * A tick that comes late by half an interval or more, or before the event loop has read its sockets
 * since the last one (this server was blocked), terminates nobody: the pongs that arrived meanwhile may
 * still be unread, behind this very timer.
 */
export function heartbeat(wsServer: WebSocketServer, intervalMs: number): () => void {
  const answered = new WeakSet<WebSocket>();
  wsServer.on('connection', (socket) => {
    answered.add(socket);
    socket.on('pong', () => answered.add(socket));
  });
  let lastTick = Date.now();
  // Set in the check phase, which comes after the poll phase that reads the sockets.
  let polled = true;
  const timer = setInterval(() => {
    const now = Date.now();
    const late = now - lastTick >= 1.5 * intervalMs || !polled;
    lastTick = now;
    polled = false;
    setImmediate(() => (polled = true));
    for (const socket of wsServer.clients) {
      if (socket.readyState !== socket.OPEN) continue;
      if (!answered.has(socket) && !late) {
        socket.terminate();
        continue;
      }
      answered.delete(socket);
      socket.ping();
    }
  }, intervalMs);
  // The HTTP server's own handle keeps the process up while it serves; this timer alone should not.
  timer.unref();
  return () => clearInterval(timer);
}

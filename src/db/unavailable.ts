import type pg from 'pg';
import type { Logger } from '../logger.js';

/**
 * How long getting a connection may take, whether connecting or waiting for a free one in the pool:
 * without it a request made while PostgreSQL drops packets waits for ever (with it: 5.02–5.15 s to
 * SERVICE_UNAVAILABLE, tests/e2e/pg-outage.test.ts). It also sheds load: a request that waits 5 s for
 * one of the 10 connections fails instead of queueing on (not yet measured under `npm run bench:*`).
 */
export const CONNECT_TIMEOUT_MS = 5_000;

/** Options every pool of ours gets: the bound above, and TCP keep-alive so a dead peer is noticed. */
export const poolSafety = { connectionTimeoutMillis: CONNECT_TIMEOUT_MS, keepAlive: true } as const;

/** Node's socket errors that mean "the database cannot be reached", not "the query was wrong". */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** What `pg` and `pg-pool` say when a connection broke or could not be made in time. */
const DRIVER_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
  'Connection ended unexpectedly',
];

/**
 * The MongoDB driver's errors (6.x, `lib/error.js`, `lib/cmap/errors.js`) that mean the job store
 * cannot be reached, by `name` so nothing here imports the driver: no server selectable within
 * serverSelectionTimeoutMS, a socket that failed or timed out, a pool cleared by such a failure, an
 * operation before the client connected. `MongoTopologyClosedError` is not one: that is our own stop.
 */
const MONGO_UNREACHABLE = new Set(['MongoServerSelectionError', 'MongoNetworkError', 'MongoNetworkTimeoutError', 'MongoPoolClearedError', 'MongoNotConnectedError']);

/**
 * MongoDB server codes that mean "not now" rather than "wrong", as SQLSTATE 57P01-57P03 are for
 * PostgreSQL: the node is shutting down, or a replica-set election is under way (no writable primary
 * for a few seconds). The driver's own retryable-read codes, those of an unreachable or changing node.
 */
const MONGO_NOT_NOW = new Set([6, 7, 89, 91, 189, 9001, 10107, 11600, 11602, 13435, 13436]);

/** Errors' own chain: an error's `cause`, and graphql-js's wrapper of a thrown value that is no `Error` of this realm (as a socket error is under Jest's VM modules). */
function* chain(err: unknown): Generator<{ name?: unknown; code?: unknown; sqlState?: unknown; message?: unknown }> {
  const inner = (e: object) => (e as { cause?: unknown }).cause ?? (e as { thrownValue?: unknown }).thrownValue;
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = inner(e), depth++) yield e;
}

/**
 * Whether an error (as thrown by the `mongodb` driver, possibly wrapped) means the MongoDB job store is
 * not reachable right now (AGENDA_MONGO_URL): the operation can be retried later as it was.
 */
export function isMongoUnavailable(err: unknown): boolean {
  for (const { name, code, message } of chain(err)) {
    if (typeof name === 'string' && MONGO_UNREACHABLE.has(name)) return true;
    if (typeof name === 'string' && name.startsWith('Mongo') && typeof code === 'number' && MONGO_NOT_NOW.has(code)) return true;
    // Re-wrapped as text ("MongoServerSelectionError: connect ECONNREFUSED …"), as Agenda does with
    // an error that is no `Error` of its realm.
    if (typeof message === 'string' && [...MONGO_UNREACHABLE].some((n) => message.startsWith(`${n}: `))) return true;
  }
  return false;
}

/**
 * Whether an error (as thrown by `pg`, or wrapped by MikroORM or Kysely) means PostgreSQL is not
 * reachable right now: a socket error, SQLSTATE class 08 (connection exception), or 57P01–57P03
 * (the server is shutting down or starting). Such a request can be retried later as it was.
 * A MongoDB driver's error is not PostgreSQL's, though it may carry the same socket error as its cause.
 */
export function isPostgresUnavailable(err: unknown): boolean {
  if (isMongoUnavailable(err)) return false;
  for (const { code, sqlState, message } of chain(err)) {
    const state = typeof sqlState === 'string' ? sqlState : typeof code === 'string' ? code : '';
    if (SOCKET_CODES.has(state) || /^08[0-9A-Z]{3}$/.test(state) || /^57P0[123]$/.test(state)) return true;
    if (typeof message === 'string' && DRIVER_MESSAGES.some((m) => message.includes(m))) return true;
    // Re-wrapped as text ("Error: connect ECONNREFUSED 127.0.0.1:5432"), as Agenda does with a
    // job's error that is no `Error` of its realm.
    if (typeof message === 'string' && /\b(connect|read|write) (ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE)\b/.test(message)) return true;
  }
  return false;
}

/**
 * Whether a database this server needs is unreachable right now, PostgreSQL or (AGENDA_MONGO_URL) the
 * MongoDB job store: the request may be sent again later as it was (SERVICE_UNAVAILABLE).
 */
export function isDatabaseUnavailable(err: unknown): boolean {
  return isPostgresUnavailable(err) || isMongoUnavailable(err);
}

/**
 * Whether a service (PostgreSQL unless named otherwise) is reachable, as this process sees it: one
 * warning when it goes away and one line when it is back, however many connections, scans and retries
 * fail in between (Agenda alone tries every job name at every scan), and then what must happen once
 * it is back.
 */
export class OutageLog {
  private down = false;
  private readonly onBack: Array<() => void> = [];

  constructor(
    private readonly log: Logger,
    private readonly what = 'PostgreSQL',
  ) {}

  /** Runs `task` each time the service is reachable again after an outage. */
  whenBack(task: () => void): void {
    this.onBack.push(task);
  }

  failed(err: unknown): void {
    if (this.down) return;
    this.down = true;
    this.log.warn({ err: (err as Error)?.message ?? String(err) }, `${this.what} unreachable; retrying until it is back`);
  }

  back(): void {
    if (!this.down) return;
    this.down = false;
    this.log.info(`${this.what} reachable again`);
    for (const task of this.onBack) task();
  }
}

/**
 * Keeps a pool's broken connections from taking the process down or its slots away.
 *
 * - `pg` reports a dropped connection as an 'error' event: on the pool for an idle client, on the
 *   client itself while it is checked out; an 'error' event nobody listens to is an uncaught
 *   exception. The query in flight rejects on its own: telling `outage` is all that is left.
 * - A connection that breaks while checked out is given back to the pool at once, marked broken (so
 *   the pool drops it), and the holder's own `release()` later does nothing. Kysely 0.29.6, under
 *   MikroORM, never releases a transaction's connection when its BEGIN, COMMIT or ROLLBACK fails
 *   (kysely-org/kysely#1990), which is what a broken connection does: every transaction cut by an
 *   outage kept a slot for good (two per 10 s outage in tests/e2e/pg-outage.test.ts; ten wedge the
 *   pool, and `pool.end()` at shutdown waited for them for ever).
 * - A new connection made means the database is back.
 */
export function guardPool(pool: pg.Pool, outage: OutageLog): void {
  pool.on('error', (err) => outage.failed(err));
  pool.on('connect', (client) => {
    // pg-pool sets `release` at every checkout; keep it, and hand out one that runs it once.
    let checkout: ((err?: Error | boolean) => void) | undefined;
    const release = (err?: Error | boolean) => {
      const give = checkout;
      checkout = undefined;
      give?.(err);
    };
    Object.defineProperty(client, 'release', { configurable: true, get: () => release, set: (fn: typeof checkout) => void (checkout = fn) });
    client.on('error', (err) => {
      outage.failed(err);
      release(err);
    });
    outage.back();
  });
}

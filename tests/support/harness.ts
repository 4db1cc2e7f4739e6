import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import pg from 'pg';
import { pino } from 'pino';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { loadConfig, type Config } from '../../src/config.js';
import { startApp, type App } from '../../src/app.js';
import type { Clock } from '../../src/clock.js';
import type { Logger } from '../../src/logger.js';
import { signToken, type TokenKeys } from '../../src/auth.js';
import { startSandbox, type SandboxHandle } from '../../src/payments/sandbox/server.js';
import { sleep, waitUntil } from './wait.js';

export { sleep, waitUntil };

export const JWT_SECRET = 'test-secret-0123456789abcdef';
const ADMIN_URL = process.env.TEST_ADMIN_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  /** Drops it (again: nothing). */
  drop: () => Promise<void>;
}

/** A database of this test file's own, dropped at the end: files run in parallel. */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const name = `deadline_t_${label.replace(/[^a-z0-9]/gi, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`create database "${name}"`);
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      // pg-pool's end() resolves before its clients' sockets close: a forced drop could terminate one
      // still closing, and its pool, ended, has no error listener left (an unhandled error fails the
      // file). Give them up to 2 s to go.
      for (let i = 0; i < 100; i++) {
        const { rows } = await c.query('select count(*)::int as n from pg_stat_activity where datname = $1', [name]);
        if (rows[0].n === 0) break;
        await sleep(20);
      }
      await c.query(`drop database if exists "${name}" with (force)`);
      await c.end();
    },
  };
}

export function testConfig(databaseUrl: string, env: Record<string, string> = {}): Config {
  const prefix = `test:${randomBytes(4).toString('hex')}`;
  return loadConfig({
    NODE_ENV: 'test',
    JWT_SECRET,
    DATABASE_URL: databaseUrl,
    PORT: '0',
    REDIS_PREFIX: prefix,
    // Flash-sale keys too: product ids repeat across test files' databases, one Redis serves them all.
    SECKILL_KEY_PREFIX: `${prefix}:`,
    JOB_PROCESS_EVERY_SECONDS: '1',
    JOB_LOCK_LIFETIME_SECONDS: '4',
    LOG_LEVEL: 'warn',
    ...env,
  });
}

/** Where an app started here logs: a LogCapture, or `{ logger }` for a logger of the test's own. */
export interface LogSink {
  readonly logger: Logger;
}

/** Log lines an app wrote, for assertions on what an operator would read. */
export class LogCapture {
  readonly lines: Array<Record<string, unknown>> = [];
  readonly logger = pino(
    { level: 'info' },
    new Writable({
      write: (chunk, _enc, done) => {
        for (const line of String(chunk).split('\n').filter(Boolean)) this.lines.push(JSON.parse(line));
        done();
      },
    }),
  );
  messages(): string[] {
    return this.lines.map((l) => String(l.msg));
  }
}

let sandbox: Promise<SandboxHandle> | undefined;

/**
 * The payment sandbox (WeChat Pay v3's shapes, its own keys) of this test file (each file has its own
 * modules), started on first use on a free port: online orders are paid there unless a test
 * configures a provider itself.
 */
export function paymentSandbox(): Promise<SandboxHandle> {
  return (sandbox ??= startSandbox({ port: 0 }));
}

const DEFAULT_SANDBOX_URL = loadConfig({ NODE_ENV: 'development' }).sandboxPayUrl;

/** Apps started here (stopping one again is free: `stop()` returns the first stop's promise). */
const started: Array<{ app: App; agendaTimersFired: () => Promise<unknown> }> = [];

/** `instanceName`: PORT=0 gives every instance of a test process the same name unless one is set. */
export async function start(config: Config, log?: LogSink, opts: { clock?: Clock; instanceName?: string } = {}): Promise<App> {
  const sandboxPayUrl = config.sandboxPayUrl === DEFAULT_SANDBOX_URL ? (await paymentSandbox()).url : config.sandboxPayUrl;
  const app = await startApp({ ...config, sandboxPayUrl }, { log: log?.logger ?? pino({ level: 'warn' }), clock: opts.clock, instanceName: opts.instanceName });
  // Agenda 6.2.6 races each job run against a liveness check that sleeps max(processEvery,
  // lockLifetime) / 2 at a time, and keeps no handle on that timer: after the run it is left to fire
  // (then sees the job done), at most that long after the run's end. Nothing can clear it early.
  const checkMs = Math.max(config.jobProcessEverySeconds, config.jobLockLifetimeSeconds) * 500;
  let lastRunEnded = 0;
  app.scheduler.on('complete', () => void (lastRunEnded = Date.now()));
  started.push({ app, agendaTimersFired: () => sleep(lastRunEnded + checkMs + 50 - Date.now()) });
  return app;
}

/** Databases of `setUp`, dropped by the harness once its apps are stopped. */
const databases: TestDatabase[] = [];

/**
 * The usual file's set-up, called in its `beforeAll`: a database of its own and one app on it
 * (`testConfig` with `env`). Both are the harness's to end: its `afterAll` stops the app and then drops
 * the database, so the file needs no `afterAll` for them.
 */
export async function setUp(
  label: string,
  env: Record<string, string> = {},
  opts: { log?: LogSink; clock?: Clock; instanceName?: string } = {},
): Promise<{ db: TestDatabase; app: App; config: Config }> {
  const db = await createTestDatabase(label);
  databases.push(db);
  const config = testConfig(db.url, env);
  const app = await start(config, opts.log, opts);
  return { db, app, config };
}

/**
 * A stop that takes longer than this says what it is waiting for (its database's sessions and what
 * holds this process open), so a stop that never ends can be told apart from a slow one in CI's output.
 */
const SLOW_STOP_MS = 20_000;

async function stopReporting(app: App): Promise<void> {
  const report = setTimeout(() => {
    void describeStop(app).then((text) => process.stderr.write(`${text}\n`));
  }, SLOW_STOP_MS);
  try {
    await app.stop();
  } finally {
    clearTimeout(report);
  }
}

async function describeStop(app: App): Promise<string> {
  const head = `app.stop() of ${app.url} (${app.instanceName}) still running after ${SLOW_STOP_MS / 1000} s`;
  const handles = process.getActiveResourcesInfo();
  const counts = Object.entries(handles.reduce<Record<string, number>>((n, h) => ({ ...n, [h]: (n[h] ?? 0) + 1 }), {}));
  const client = new pg.Client({ connectionString: app.services.config.databaseUrl });
  try {
    await client.connect();
    const { rows } = await client.query<{ pid: number; application_name: string; state: string; wait: string | null; seconds: number; query: string }>(
      `select pid, application_name, state, wait_event_type || ':' || wait_event as wait, extract(epoch from now() - state_change)::int as seconds, left(query, 160) as query
         from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()`,
    );
    return [head, `resources: ${counts.map(([k, v]) => `${k}×${v}`).join(' ')}`, ...rows.map((r) => `pg ${r.pid} ${r.state} ${r.wait ?? ''} ${r.seconds}s: ${r.query}`)].join('\n');
  } catch (err) {
    return `${head}\nresources: ${counts.map(([k, v]) => `${k}×${v}`).join(' ')}\n(database not readable: ${(err as Error).message})`;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * When the file is done nothing of it may be left running, or the Jest worker cannot exit. Hooks run
 * in the order they were added, so this one runs before the file's own: the apps still running
 * (which may be calling the sandbox) are stopped, the sandbox is closed, Agenda's last timers
 * are waited for (rarely: only after a job that ended in the last 2 s; 15 s in rolling-stop), and the
 * databases of `setUp` are dropped.
 */
afterAll(async () => {
  const apps = started.splice(0);
  await Promise.allSettled(apps.map(({ app }) => stopReporting(app)));
  const closing = sandbox;
  sandbox = undefined;
  if (closing) await (await closing).close();
  await Promise.all(apps.map(({ agendaTimersFired }) => agendaTimersFired()));
  for (const db of databases.splice(0)) await db.drop();
  // Up to 60 s of that wait with JOB_LOCK_LIFETIME_SECONDS at its production 120 (pg-outage), after
  // the stops: a bound of 60 s for the whole hook failed that file when a run had just ended.
}, 90_000);

/** A clock the test moves forward (time-driven rules: 15 minutes take no time). */
export class MovableClock implements Clock {
  offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
  advance(minutes: number): void {
    this.offsetMs += minutes * 60_000;
  }
}

/** A token for `testConfig`'s secret; `keys` for a server configured with JWT_ISSUER or JWT_AUDIENCE. */
export const token = (userId: string, admin = false, keys: TokenKeys = { secret: JWT_SECRET }) => signToken(keys, userId, admin ? 'admin' : 'user');

export interface GqlResult<T = Record<string, any>> {
  data?: T | null;
  errors?: Array<{ message: string; extensions?: { code?: string } & Record<string, unknown> }>;
}

export async function gql<T = Record<string, any>>(
  app: App,
  query: string,
  variables: Record<string, unknown> = {},
  bearer?: string,
): Promise<GqlResult<T> & { status: number }> {
  const res = await fetch(app.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, ...((await res.json()) as GqlResult<T>) };
}

export function wsClient(app: App, bearer?: string): Client {
  return createClient({
    url: app.url.replace('http', 'ws'),
    webSocketImpl: WebSocket,
    connectionParams: bearer ? { authorization: `Bearer ${bearer}` } : {},
    retryAttempts: 0,
    lazy: true,
  });
}

/** A running subscription whose events are collected; `waitFor` resolves when a predicate holds. */
export class Subscription<T = any> {
  readonly events: T[] = [];
  readonly errors: unknown[] = [];
  completed = false;
  private waiters: Array<() => void> = [];
  readonly dispose: () => void;

  constructor(client: Client, query: string, variables: Record<string, unknown> = {}) {
    this.dispose = client.subscribe<T>(
      { query, variables },
      {
        next: (v) => {
          if (v.errors) this.errors.push(v.errors);
          else this.events.push(v.data as T);
          this.notify();
        },
        error: (e) => {
          this.errors.push(e);
          this.notify();
        },
        complete: () => {
          this.completed = true;
          this.notify();
        },
      },
    );
  }

  private notify() {
    for (const w of this.waiters) w();
  }

  async waitFor(predicate: (s: this) => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    if (predicate(this)) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== check);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${JSON.stringify(this.events).slice(0, 500)} errors ${JSON.stringify(this.errors).slice(0, 500)}`));
      }, timeoutMs);
      const check = () => {
        if (predicate(this)) {
          clearTimeout(timer);
          this.waiters = this.waiters.filter((w) => w !== check);
          resolve();
        }
      };
      this.waiters.push(check);
    });
  }
}

/**
 * Subscribes, then waits until `app` listens on `channel` as many times as expected: from then on
 * no event can be missed. (graphql-ws sends no acknowledgement for a subscription.)
 */
export async function subscribed<T = any>(
  app: App,
  client: Client,
  query: string,
  variables: Record<string, unknown>,
  channel: string,
  listeners = 1,
): Promise<Subscription<T>> {
  const sub = new Subscription<T>(client, query, variables);
  await waitUntil(() => app.services.bus.listenerCount(channel) >= listeners, 5_000, `a listener on ${channel}`);
  return sub;
}

export const inSeconds = (s: number) => new Date(Date.now() + s * 1000).toISOString();

export const AUCTION_FIELDS = 'id status endTime endedAt winnerId highestBid highestBidderId sellerId';

export async function createAuction(app: App, bearer: string, endTime: string, extra: Record<string, unknown> = {}) {
  const res = await gql(
    app,
    `mutation($input: CreateAuctionInput!) { createAuction(input: $input) { ${AUCTION_FIELDS} } }`,
    { input: { nftId: 'nft-1', title: 'Lot', startingPrice: 100, minIncrement: 10, endTime, softCloseSeconds: 0, ...extra } },
    bearer,
  );
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data!.createAuction as { id: string; status: string; endTime: string };
}

import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { loadConfig, type Config } from '../src/config.js';

export { freePort } from './ports.js';

const ADMIN_URL = process.env.BENCH_ADMIN_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * The V8 flags `npm start` gives the server (`config.serverNodeFlags` in package.json), for the benchmarks
 * that start it as a process of its own; those that run it in their own process get them from their npm script.
 */
export const SERVER_NODE_FLAGS: string[] = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { config: { serverNodeFlags: string } }
).config.serverNodeFlags
  .split(/\s+/)
  .filter(Boolean);

/**
 * Waits `ms` (a time already past waits nothing: Node warns on a negative delay). The benchmarks' one
 * sleep, as tests/support/wait.ts is the tests': the production image compiles bench/ without tests/.
 */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** The p-th percentile of ascending values (NaN for none). */
export const pct = (sorted: number[], p: number) =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];

/** Databases a benchmark made and has not dropped yet. */
const liveDatabases = new Set<string>();

/** A database of the benchmark's own for `fn` (with a client on it), dropped afterwards whatever happens. */
export async function withDatabase<T>(fn: (url: string, db: pg.Client) => Promise<T>): Promise<T> {
  const name = `deadline_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`create database "${name}"`);
  liveDatabases.add(name);
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const db = new pg.Client({ connectionString: url.toString() });
  try {
    await db.connect();
    await db.query(`set statement_timeout = '300s'`);
    return await fn(url.toString(), db);
  } finally {
    await db.end().catch(() => undefined);
    await admin.query(`drop database if exists "${name}" with (force)`);
    liveDatabases.delete(name);
    await admin.end();
  }
}

/** Drops what `withDatabase` left when the process is interrupted; never throws. */
export async function dropLiveDatabases(): Promise<void> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect().catch(() => undefined);
  for (const name of liveDatabases) await admin.query(`drop database if exists "${name}" with (force)`).catch(() => undefined);
  await admin.end().catch(() => undefined);
}

/** The server's configuration for a benchmark run: production mode, its own Redis prefix, quiet logs. */
export function benchConfig(databaseUrl: string, env: Record<string, string> = {}): Config {
  return loadConfig({
    NODE_ENV: 'production',
    JWT_SECRET: 'bench-secret-0123456789abcdef',
    DATABASE_URL: databaseUrl,
    PORT: '0',
    REDIS_PREFIX: `bench:${randomBytes(4).toString('hex')}`,
    LOG_LEVEL: 'warn',
    ...env,
  });
}

/**
 * Bounds a benchmark: past `maxMs`, or on Ctrl-C / SIGTERM, the databases it made are dropped and the
 * process exits 2. Dropping with (force) cuts the server's connections, whose clients then throw: let
 * them. `on`, not `once`: a library's signal-exit handler re-raises the signal when it is the last
 * listener left.
 */
export function stopAfter(maxMs: number): void {
  let aborting = false;
  const abort = async (why: string) => {
    if (aborting) return;
    aborting = true;
    console.error(`!! ${why}: stopping`);
    process.on('uncaughtException', () => undefined);
    await dropLiveDatabases();
    process.exit(2);
  };
  setTimeout(() => void abort(`the benchmark ran longer than ${maxMs / 60_000} minutes`), maxMs).unref();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void abort(signal));
}

/** `limit` workers over `items`, in order. */
export async function pool<T>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i], i);
      }
    }),
  );
}

/**
 * What createAuction does after its commit, through a server's API: one auction more, ending at
 * `endTime`, arms the deadline engine there (a no-op for all but the earliest end). The benchmarks seed
 * their auctions with SQL and arm them with this.
 */
export async function armThroughApi(base: string, token: string, endTime: Date): Promise<void> {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({
      query: 'mutation($i: CreateAuctionInput!) { createAuction(input: $i) { id } }',
      variables: { i: { nftId: 'nft', title: 'Arming lot', startingPrice: 100, minIncrement: 10, endTime: endTime.toISOString(), softCloseSeconds: 0 } },
    }),
  });
  const body = (await res.json()) as { errors?: unknown };
  if (body.errors) throw new Error(`createAuction: ${JSON.stringify(body.errors)}`);
}

/**
 * The systems bench:peers compares: Deadline as users run it, the floor, and the peers with the settings
 * the issue names. Each has a database and a Redis prefix of its own for the whole invocation; a
 * session starts its processes (one, or two for the SIGKILL workloads), and ends them.
 */
import type { ChildProcess } from 'node:child_process';
import { Redis } from 'ioredis';
import pg from 'pg';
import { signToken } from '../../src/auth.js';
import { SERVER_NODE_FLAGS, armThroughApi, freePort, pool } from '../support.js';
import { PEER_TABLE_DDL, endedChannel, killChild, nextMessage, sleep, startChild } from './common.js';
import { graphqlWsWatcher, rawWsWatcher, redisWatcher, type Watcher } from './watchers.js';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
export const JWT_SECRET = 'bench-secret-0123456789abcdef';
const SELLER = 'bench-seller';

export type PeerSpec = {
  kind: 'bullmq' | 'graphile' | 'pgboss' | 'agenda';
  databaseUrl: string;
  redisUrl: string;
  prefix: string;
  queue: string;
  concurrency: number;
  /** graphile-worker's pollInterval, pg-boss's pollingIntervalSeconds × 1000, Agenda's processEvery. */
  pollMs: number;
  batchSize: number;
};

export interface SystemDef {
  key: string;
  label: string;
  /** Its settings, as the table's notes give them. */
  settings: string;
  type: 'deadline' | 'floor' | 'peer';
  peer?: Pick<PeerSpec, 'kind' | 'concurrency' | 'pollMs' | 'batchSize'>;
}

export const SYSTEMS: SystemDef[] = [
  { key: 'deadline', label: 'Deadline', type: 'deadline', settings: 'the built server (`node dist/src/main.js`, NODE_ENV=production, default settings), one graphql-ws watcher' },
  { key: 'floor', label: 'floor', type: 'floor', settings: 'no scheduler: a timer at each due time, one batched UPDATE … RETURNING, one PUBLISH, one raw WebSocket frame per event' },
  { key: 'bullmq-100', label: 'BullMQ c=100', type: 'peer', peer: { kind: 'bullmq', concurrency: 100, pollMs: 0, batchSize: 1 }, settings: 'one delayed job per auction, worker concurrency 100' },
  { key: 'bullmq-1', label: 'BullMQ c=1', type: 'peer', peer: { kind: 'bullmq', concurrency: 1, pollMs: 0, batchSize: 1 }, settings: 'one delayed job per auction, worker concurrency 1 (its default)' },
  { key: 'graphile-2000', label: 'graphile-worker 2 s', type: 'peer', peer: { kind: 'graphile', concurrency: 10, pollMs: 2000, batchSize: 1 }, settings: 'one job per auction with run_at, pollInterval 2,000 ms (its default), concurrency 10 (its pool size)' },
  { key: 'graphile-100', label: 'graphile-worker 100 ms', type: 'peer', peer: { kind: 'graphile', concurrency: 10, pollMs: 100, batchSize: 1 }, settings: 'one job per auction with run_at, pollInterval 100 ms, concurrency 10' },
  { key: 'pgboss-2000', label: 'pg-boss 2 s', type: 'peer', peer: { kind: 'pgboss', concurrency: 1, pollMs: 2000, batchSize: 100 }, settings: 'one job per auction with startAfter, polling every 2 s (its default), batchSize 100 with burstWhenBatchFull (at its default batchSize of 1 it takes one job per poll)' },
  { key: 'pgboss-500', label: 'pg-boss 0.5 s', type: 'peer', peer: { kind: 'pgboss', concurrency: 1, pollMs: 500, batchSize: 100 }, settings: 'one job per auction with startAfter, polling every 0.5 s (its lowest), batchSize 100 with burstWhenBatchFull' },
  { key: 'agenda-5000', label: 'Agenda 5 s', type: 'peer', peer: { kind: 'agenda', concurrency: 5, pollMs: 5000, batchSize: 1 }, settings: 'one job per auction (PostgreSQL backend), processEvery 5 s and every other setting its default' },
  { key: 'agenda-1000', label: 'Agenda 1 s', type: 'peer', peer: { kind: 'agenda', concurrency: 5, pollMs: 1000, batchSize: 1 }, settings: 'one job per auction (PostgreSQL backend), processEvery 1 s and every other setting its default' },
];

export interface Row {
  id: string;
  due: number;
}

export interface Session {
  /** The client that hears the ends (Deadline: on its last instance, the one a SIGKILL spares). */
  readonly watcher: Watcher;
  /** Arms or schedules the deadlines of these rows (already in the table), as the system's user would. */
  schedule(rows: Row[]): Promise<void>;
  /**
   * Starts one more process beside the running ones, for the SIGKILL workloads: the warm one keeps
   * arming (Deadline) and is the one killed, the new one is the survivor, and Deadline's watcher moves
   * to it. The floor has none.
   */
  addOne(): Promise<void>;
  /** SIGKILLs the first process (Deadline: the instance that armed the deadlines); the others go on. */
  killOne(): Promise<void>;
  stop(): Promise<void>;
  /** The processes of the system under test, first to last. */
  pids(): number[];
  /** Deadline: the first instance's HTTP address. */
  base(): string;
}

/** Milliseconds per deadline the system took to insert and schedule, learnt from its last round (for the lead). */
const guessMsPerRow: Record<string, number> = { deadline: 0.05, floor: 0.05, bullmq: 0.15, graphile: 0.15, pgboss: 0.2, agenda: 1.5 };

/** One system for the whole invocation: its database (made and dropped by the caller), its Redis prefix, its sessions. */
export class SystemRun {
  /** Per deadline, what inserting and scheduling took in the largest round so far (a warm-up's fixed costs would inflate it). */
  msPerRow: number;
  msPerRowAt = 0;
  private client: pg.Pool;

  constructor(
    readonly def: SystemDef,
    readonly databaseUrl: string,
    db: pg.Pool,
    readonly prefix: string,
  ) {
    this.client = db;
    this.msPerRow = guessMsPerRow[def.peer?.kind ?? def.type]!;
  }

  /** The benchmark's own connections to the system's database. */
  db(): pg.Pool {
    return this.client;
  }

  private peerSpec(): PeerSpec {
    return { ...this.def.peer!, databaseUrl: this.databaseUrl, redisUrl: REDIS_URL, prefix: this.prefix, queue: 'end-auction' };
  }

  /** Tables, schemas and queues, once; Deadline's are made by its first start (its migrations). */
  async prepare(): Promise<void> {
    if (this.def.type === 'deadline') return;
    for (const ddl of PEER_TABLE_DDL) await this.client.query(ddl);
    const spec = this.def.peer && this.peerSpec();
    if (spec?.kind === 'graphile') {
      const { runMigrations } = await import('graphile-worker');
      await runMigrations({ connectionString: this.databaseUrl, logger: quietGraphileLogger() });
    } else if (spec?.kind === 'pgboss') {
      await withPgBoss(this.databaseUrl, (boss) => boss.createQueue(spec.queue));
    } else if (spec?.kind === 'agenda') {
      await withAgenda(this.databaseUrl, () => Promise.resolve());
    }
  }

  /** N auctions as `createAuction` leaves them, ending at `ends` (ms); their ids and due times. */
  async insert(ends: number[]): Promise<Row[]> {
    const { rows } = await this.client.query<{ id: string; due: string }>(
      `insert into auctions (seller_id, nft_id, title, starting_price, min_increment, end_time, soft_close_seconds)
       select '${SELLER}', 'nft', 'Peers lot', 100, 10, e, 0 from unnest($1::timestamptz[]) as e
       returning id::text, (extract(epoch from end_time) * 1000)::bigint::text as due`,
      [ends.map((ms) => new Date(ms))],
    );
    return rows.map((r) => ({ id: r.id, due: Number(r.due) }));
  }

  async start(instances: 1 | 2, env: Record<string, string> = {}): Promise<Session> {
    if (this.def.type === 'deadline') return this.startDeadline(instances, env);
    if (this.def.type === 'floor') return this.startFloor();
    return this.startPeer(instances);
  }

  /** Removes what the system left in Redis (its prefix); its database is dropped by the caller. */
  async cleanup(redis: Redis): Promise<void> {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.unlink(...keys);
    } while (cursor !== '0');
  }

  private async startDeadline(count: 1 | 2, extraEnv: Record<string, string>): Promise<Session> {
    const env = {
      ...process.env,
      NODE_ENV: 'production',
      DATABASE_URL: this.databaseUrl,
      REDIS_URL,
      JWT_SECRET,
      REDIS_PREFIX: this.prefix,
      LOG_LEVEL: 'warn',
      ...extraEnv,
    };
    const servers: Array<{ proc: ChildProcess; base: string }> = [];
    const token = signToken({ secret: JWT_SECRET }, SELLER, 'user');
    let watcher: Watcher | undefined;
    const startOne = async () => {
      const port = await freePort();
      const proc = startChild(process.execPath, [...SERVER_NODE_FLAGS, 'dist/src/main.js'], {
        env: { ...env, PORT: String(port) },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      const base = `http://127.0.0.1:${port}`;
      servers.push({ proc, base });
      await waitForHealth(base, proc);
    };
    // The watcher on the instance started last: the one a SIGKILL spares.
    const watchLast = async () => {
      const next = await graphqlWsWatcher(`${servers[servers.length - 1].base.replace('http', 'ws')}/graphql`, token);
      await watcher?.close();
      watcher = next;
      await sleep(300);
    };
    try {
      // One after the other: the first migrates.
      for (let i = 0; i < count; i++) await startOne();
      await this.client.query(`insert into users (id, role) values ('${SELLER}', 'user') on conflict do nothing`);
      await watchLast();
      return {
        get watcher() {
          return watcher!;
        },
        // What createAuction does after its commit, through the API of the first instance: arming is a
        // no-op for all but the earliest, so one auction more (ending with the first) arms them all.
        schedule: async (rows) => {
          const first = Math.min(...rows.map((r) => r.due));
          await armThroughApi(servers[0].base, token, new Date(first));
        },
        addOne: async () => {
          await startOne();
          await watchLast();
        },
        killOne: async () => {
          const first = servers.shift();
          await killChild(first?.proc);
        },
        pids: () => servers.map((s) => s.proc.pid!),
        base: () => servers[0].base,
        stop: async () => {
          await watcher?.close();
          await Promise.all(servers.map((s) => stopGracefully(s.proc)));
        },
      };
    } catch (e) {
      await watcher?.close().catch(() => undefined);
      await Promise.all(servers.map((s) => killChild(s.proc)));
      throw e;
    }
  }

  private async startFloor(): Promise<Session> {
    const proc = startChild(process.execPath, [new URL('./floor.js', import.meta.url).pathname, JSON.stringify({ databaseUrl: this.databaseUrl, redisUrl: REDIS_URL, prefix: this.prefix })], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    try {
      const { port } = await nextMessage<{ type: string; port: number }>(proc, 'ready');
      const watcher = await rawWsWatcher(`ws://127.0.0.1:${port}`);
      return {
        watcher,
        schedule: (rows) => {
          proc.send({ type: 'dues', dues: [...new Set(rows.map((r) => r.due))].sort((a, b) => a - b) });
          return Promise.resolve();
        },
        addOne: () => Promise.reject(new Error('the floor has no second process')),
        killOne: () => Promise.reject(new Error('the floor has no second process')),
        pids: () => [proc.pid!],
        base: () => '',
        stop: async () => {
          await watcher.close();
          await killChild(proc);
        },
      };
    } catch (e) {
      await killChild(proc);
      throw e;
    }
  }

  private async startPeer(count: 1 | 2): Promise<Session> {
    const spec = this.peerSpec();
    const workers: ChildProcess[] = [];
    let scheduler: PeerScheduler | undefined;
    let watcher: Watcher | undefined;
    const startWorkers = async (k: number) => {
      const started = Array.from({ length: k }, () =>
        startChild(process.execPath, [new URL('./worker.js', import.meta.url).pathname, JSON.stringify(spec)], {
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        }),
      );
      workers.push(...started);
      await Promise.all(started.map((w) => nextMessage(w, 'ready')));
    };
    try {
      await startWorkers(count);
      watcher = await redisWatcher(REDIS_URL, endedChannel(spec.prefix));
      scheduler = await peerScheduler(spec);
      const s = scheduler;
      const w = watcher;
      return {
        watcher: w,
        schedule: (rows) => s.schedule(rows),
        addOne: () => startWorkers(1),
        killOne: () => killChild(workers.shift()),
        pids: () => workers.map((p) => p.pid!),
        base: () => '',
        stop: async () => {
          await w.close();
          await s.close();
          // Peers' workers have nothing to finish between workloads: SIGTERM ends them at once.
          await Promise.all(workers.map((p) => stopGracefully(p)));
        },
      };
    } catch (e) {
      await watcher?.close();
      await scheduler?.close();
      await Promise.all(workers.map((p) => killChild(p)));
      throw e;
    }
  }

  /**
   * After a round that reached its cap, with the system's processes stopped: every deadline it still
   * owed is dropped, so that no later round starts behind a backlog that is not its own. Auctions still
   * ACTIVE are cancelled (a job that survives ends nothing and publishes nothing) and the queue's pending
   * jobs are removed through the peer's own API (graphile-worker's straight from its jobs table: its
   * API removes jobs by id).
   */
  async purge(): Promise<void> {
    await this.client.query(`update auctions set status = 'CANCELLED' where status = 'ACTIVE'`);
    const spec = this.def.peer && this.peerSpec();
    if (spec?.kind === 'bullmq') {
      const { Queue } = await import('bullmq');
      const queue = new Queue(spec.queue, { connection: { host: '127.0.0.1', port: Number(new URL(spec.redisUrl).port || 6379) }, prefix: spec.prefix });
      // Waiting and delayed jobs; the few a stopped worker held run again later and end nothing.
      await queue.drain(true);
      await queue.close();
    } else if (spec?.kind === 'graphile') {
      await this.client.query('delete from graphile_worker._private_jobs');
    } else if (spec?.kind === 'pgboss') {
      await withPgBoss(this.databaseUrl, (boss) => boss.deleteAllJobs(spec.queue));
    } else if (spec?.kind === 'agenda') {
      await withAgenda(this.databaseUrl, (agenda) => agenda.cancel({ name: spec.queue }));
    }
  }
}

interface PeerScheduler {
  schedule(rows: Row[]): Promise<void>;
  close(): Promise<void>;
}

const chunks = <T>(xs: T[], size: number) => Array.from({ length: Math.ceil(xs.length / size) }, (_, i) => xs.slice(i * size, (i + 1) * size));

/** The peer's own client API, as the application creating the auctions would schedule their ends. */
async function peerScheduler(spec: PeerSpec): Promise<PeerScheduler> {
  switch (spec.kind) {
    case 'bullmq': {
      const { Queue } = await import('bullmq');
      const queue = new Queue(spec.queue, { connection: { host: '127.0.0.1', port: Number(new URL(spec.redisUrl).port || 6379) }, prefix: spec.prefix });
      return {
        schedule: async (rows) => {
          for (const chunk of chunks(rows, 1000)) {
            const now = Date.now();
            await queue.addBulk(chunk.map((r) => ({ name: 'end', data: { id: r.id }, opts: { delay: Math.max(0, r.due - now), timestamp: now, removeOnComplete: true, removeOnFail: true } })));
          }
        },
        close: () => queue.close(),
      };
    }
    case 'graphile': {
      const { makeWorkerUtils } = await import('graphile-worker');
      const utils = await makeWorkerUtils({ connectionString: spec.databaseUrl, logger: quietGraphileLogger() });
      return {
        schedule: async (rows) => {
          for (const chunk of chunks(rows, 1000)) await utils.addJobs(chunk.map((r) => ({ identifier: spec.queue, payload: { id: r.id }, runAt: new Date(r.due) })));
        },
        close: async () => await utils.release(),
      };
    }
    case 'pgboss': {
      const { PgBoss } = await import('pg-boss');
      const boss = new PgBoss({ connectionString: spec.databaseUrl, supervise: false, schedule: false });
      boss.on('error', () => undefined);
      await boss.start();
      return {
        schedule: async (rows) => {
          for (const chunk of chunks(rows, 1000)) await boss.insert(spec.queue, chunk.map((r) => ({ data: { id: r.id }, startAfter: new Date(r.due) })));
        },
        close: () => boss.stop({ graceful: false }),
      };
    }
    case 'agenda': {
      const { Agenda } = await import('agenda');
      const { PostgresBackend } = await import('@agendajs/postgres-backend');
      const backend = new PostgresBackend({ connectionString: spec.databaseUrl });
      const agenda = new Agenda({ backend });
      await agenda.ready;
      return {
        // One schedule() per auction (Agenda saves one job per call), 50 in flight: a new one as soon as
        // one is saved, rather than 50 at a time waiting for the slowest of each 50.
        schedule: (rows) =>
          pool(rows, 50, async (r) => {
            await agenda.schedule(new Date(r.due), spec.queue, { id: r.id });
          }),
        // Never started: stop() would leave the backend's pool open.
        close: () => backend.disconnect(),
      };
    }
  }
}

/** A pg-boss client on `databaseUrl` for one call (a queue made, jobs removed), stopped after it. */
async function withPgBoss(databaseUrl: string, call: (boss: InstanceType<typeof import('pg-boss').PgBoss>) => Promise<unknown>): Promise<void> {
  const { PgBoss } = await import('pg-boss');
  const boss = new PgBoss({ connectionString: databaseUrl, supervise: false, schedule: false });
  boss.on('error', () => undefined);
  await boss.start();
  await call(boss);
  await boss.stop({ graceful: false });
}

/** An Agenda on `databaseUrl`'s PostgreSQL backend for one call (its tables made, jobs cancelled), never started. */
async function withAgenda(databaseUrl: string, call: (agenda: InstanceType<typeof import('agenda').Agenda>) => Promise<unknown>): Promise<void> {
  const { Agenda } = await import('agenda');
  const { PostgresBackend } = await import('@agendajs/postgres-backend');
  const backend = new PostgresBackend({ connectionString: databaseUrl });
  const agenda = new Agenda({ backend });
  await agenda.ready;
  await call(agenda);
  // An Agenda never started returns from stop() at once, its backend's pool left open.
  await backend.disconnect();
}

function quietGraphileLogger() {
  // Loaded lazily with the rest of graphile-worker; its Logger takes a factory of log functions.
  return new GraphileLogger(() => (level: string, message: string) => {
    if (level === 'error') console.error(`graphile-worker: ${message}`);
  });
}
const { Logger: GraphileLogger } = await import('graphile-worker');

async function waitForHealth(base: string, proc: ChildProcess): Promise<void> {
  const end = Date.now() + 60_000;
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`the server on ${base} exited (${proc.exitCode ?? proc.signalCode}) while starting`);
    const ok = await fetch(`${base}/health`).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > end) throw new Error(`the server on ${base} did not start in 60 s`);
    await sleep(100);
  }
}

/** SIGTERM, then SIGKILL after 10 s. */
export async function stopGracefully(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    proc.kill('SIGTERM');
  });
}

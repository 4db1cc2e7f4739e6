import { Agenda, type AgendaOptions } from 'agenda';
import { PostgresBackend, type PostgresJobRepository } from '@agendajs/postgres-backend';
import { MongoBackend } from '@agendajs/mongo-backend';
import { RedisNotificationChannel } from '@agendajs/redis-backend';
import { Redis, type RedisOptions } from 'ioredis';
import { MongoClient, type Collection, type MongoClientOptions, type ObjectId } from 'mongodb';
import type { Config } from '../config.js';
import { CONNECT_TIMEOUT_MS, guardPool, isDatabaseUnavailable, isMongoUnavailable, poolSafety, OutageLog } from '../db/unavailable.js';
import type { Logger } from '../logger.js';

export type Scheduler = Agenda;

/** The jobs' collection (MongoDB) or table (PostgreSQL, from a migration). */
const JOBS = 'agenda_jobs';

/**
 * Agenda saving the end of a job whose row was removed while it ran: a deadline's wake-up replaced or
 * cancelled by an arm (an earlier deadline moved the armed time while it ran). Expected
 * in the deadline engine's design, and nothing is lost (the row's removal was the point), so it is
 * logged at info, not as a scheduler error.
 */
const REMOVED_WHILE_RUNNING = /cannot be updated in the database, maybe it does not exist anymore/;

function schedulerError(log: Logger, err: Error): void {
  if (REMOVED_WHILE_RUNNING.test(err?.message ?? '')) log.info({ reason: err.message }, 'a job ended after its row was removed; nothing to save');
  else log.error({ err }, 'scheduler error');
}

/** Agenda and what it was built on. */
export interface JobStore {
  scheduler: Scheduler;
  /** The job store's outage log: PostgreSQL's own (the one given), or MongoDB's. */
  outage: OutageLog;
  /** Closes what was opened for the store, once Agenda has stopped (`trackRunning`). */
  close(): Promise<void>;
}

/**
 * Agenda, the only scheduler. Its job store is MongoDB when AGENDA_MONGO_URL is set (with Redis
 * pub/sub telling every instance at once that a job was saved), otherwise PostgreSQL on the app's
 * database with LISTEN/NOTIFY. The PostgreSQL tables come from a migration (ensureSchema: false);
 * MongoDB's indexes are made here, before any job is saved.
 */
export async function createScheduler(config: Config, instanceName: string, log: Logger, outage: OutageLog): Promise<JobStore> {
  const common: Omit<AgendaOptions, 'backend'> = {
    name: instanceName,
    processEvery: config.jobProcessEverySeconds * 1000,
    defaultLockLifetime: config.jobLockLifetimeSeconds * 1000,
    defaultConcurrency: config.jobConcurrency,
    maxConcurrency: Math.max(20, config.jobConcurrency * 4),
  };
  if (config.agendaMongoUrl) return mongoJobStore(config, config.agendaMongoUrl, common, log);
  // JOB_STORE_POOL_SIZE, 5 by default (what this pool always had); its LISTEN connection is one more.
  const backend = new PostgresBackend({
    poolConfig: { connectionString: config.databaseUrl, max: config.jobStorePoolSize ?? 5, ...poolSafety },
    ensureSchema: false,
  });
  const scheduler = new Agenda({ ...common, backend });
  // The backend's pool and its LISTEN connection listen to no 'error' event of their own: without
  // these, PostgreSQL going away is an uncaught exception. While it is away every scan fails for
  // every job name (Agenda says 'error' each time) and the LISTEN connection retries every 100 ms
  // (its attempt count is reset by each try, so it never gives up): one warning for all of it.
  guardPool((backend.repository as PostgresJobRepository).getPool(), outage);
  backend.notificationChannel?.on('error', (err: Error) => outage.failed(err));
  scheduler.on('error', (err: Error) => (isDatabaseUnavailable(err) ? outage.failed(err) : schedulerError(log, err)));
  return { scheduler, outage, close: () => backend.disconnect() };
}

/**
 * The MongoDB client's bounds. The driver's defaults wait 30 s for a server and for ever for an
 * answer: every job-store call (a deadline's arm after its commit, an admin's pause, Agenda's scans)
 * would then wait that long while MongoDB is away. Options named in AGENDA_MONGO_URL itself
 * (`?serverSelectionTimeoutMS=…`) win over these defaults; JOB_STORE_POOL_SIZE, when set, wins over
 * the URL's maxPoolSize (unset: the driver's own 100).
 */
export function mongoClientOptions(url: string, poolSize: number | undefined): MongoClientOptions {
  const defaults: MongoClientOptions = {
    // As for PostgreSQL (CONNECT_TIMEOUT_MS): an operation waits this long for a reachable server,
    // then fails with MongoServerSelectionError (an outage: src/db/unavailable.ts).
    serverSelectionTimeoutMS: CONNECT_TIMEOUT_MS,
    connectTimeoutMS: CONNECT_TIMEOUT_MS,
    // An answer that never comes (a peer gone without a reset) fails after this. Agenda's calls are
    // single-document updates and small reads, answered in milliseconds; 30 s leaves room for the
    // start-up's index builds on a large collection.
    socketTimeoutMS: 30_000,
  };
  // Parsed by hand: a multi-host URL (`mongodb://a:27017,b:27017/…`) is no WHATWG URL.
  const named = new Set([...new URLSearchParams(url.split('?')[1] ?? '').keys()].map((k) => k.toLowerCase()));
  const options = Object.fromEntries(Object.entries(defaults).filter(([key]) => !named.has(key.toLowerCase()))) as MongoClientOptions;
  return poolSize ? { ...options, maxPoolSize: poolSize } : options;
}

/**
 * The unique index for periodic jobs. Agenda's `every()` saves a periodic job with `type: 'single'`
 * by an upsert on `{ name, type: 'single' }`, and an upsert with no unique index behind it can insert
 * twice when two instances start together (as `unique()` did: 20 concurrent saves left 18 rows,
 * FIELD-NOTES.md). PostgreSQL has its index from our migration (agenda_jobs_single_job_idx on
 * (name) where type = 'single'); this is MongoDB's. Its key is `{ name, type }`, not `{ name }`: the
 * same uniqueness (every entry's type is 'single'), but MongoDB (4.2+) retries the upsert that lost the
 * race as an update only when the upsert's equality fields are exactly the index's key fields
 * (`shouldRetryDuplicateKeyException` in the server's update stage). With `{ name }` alone the second
 * instance's `every()` would fail with E11000, and its start-up with it.
 */
export const SINGLE_JOB_INDEX = {
  key: { name: 1, type: 1 },
  options: { name: 'agenda_jobs_single_job_idx', unique: true, partialFilterExpression: { type: 'single' } },
} as const;

type JobDocument = { _id: ObjectId; name: string; type?: string };

/**
 * Creates SINGLE_JOB_INDEX (a no-op when it exists). Duplicates left by races before it existed
 * would fail the build: all but the oldest of each name are removed (the survivor is the schedule
 * `every()` updates at each start), and the build is tried again.
 */
async function ensureSingleJobIndex(jobs: Collection<JobDocument>, log: Logger): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await jobs.createIndex(SINGLE_JOB_INDEX.key, SINGLE_JOB_INDEX.options);
      return;
    } catch (err) {
      // 11000: DuplicateKey. Another instance may be doing the same: removing by id is idempotent.
      if ((err as { code?: unknown }).code !== 11000 || attempt >= 3) throw err;
      const groups = await jobs
        .aggregate<{ _id: string; ids: ObjectId[] }>([
          { $match: { type: 'single' } },
          { $sort: { _id: 1 } },
          { $group: { _id: '$name', ids: { $push: '$_id' } } },
          { $match: { 'ids.1': { $exists: true } } },
        ])
        .toArray();
      const extra = groups.flatMap((g) => g.ids.slice(1));
      const { deletedCount } = await jobs.deleteMany({ _id: { $in: extra } });
      log.warn({ jobs: groups.map((g) => g._id), removed: deletedCount }, 'MongoDB job store: removed duplicate periodic jobs before making them unique');
    }
  }
}

/**
 * The client the Redis notification channel publishes on. The channel subscribes on `duplicate()` of
 * it, makes a new one each time it connects (at start, and after a lost or failed subscription), and
 * leaves the one whose SUBSCRIBE failed open: an ioredis client reconnecting for ever. Measured here
 * with the channel's own client (20 retries), Redis down for 60 s: 5 such clients left behind, each
 * holding a connection once Redis was back; none with this class.
 * The channel only asks for a new subscriber to replace the last one, so the last one is closed here.
 * Public API only: ioredis's `duplicate()` and `options`; the copy is made as ioredis makes it.
 */
class NotificationRedis extends Redis {
  private subscriber: Redis | undefined;

  override duplicate(override?: Partial<RedisOptions>): Redis {
    this.subscriber?.disconnect();
    this.subscriber = new Redis({ ...this.options, ...override });
    return this.subscriber;
  }

  close(): void {
    this.subscriber?.disconnect();
    this.disconnect();
  }
}

/** ioredis's errors for a command that could not be sent: Redis is away (no socket error of its own). */
const isRedisUnavailable = (err: unknown) => {
  const { name, message } = (err ?? {}) as { name?: unknown; message?: unknown };
  return name === 'MaxRetriesPerRequestError' || message === 'Connection is closed.';
};

/**
 * MongoDB mode's notification channel: @agendajs/redis-backend's, on a Redis client of ours. Redis
 * down, the channel's subscriber reports each failed reconnect as an 'error' on the channel (an
 * uncaught exception with no listener), and the client it publishes on reports its own (ioredis
 * prints "[ioredis] Unhandled error event" for each with no listener). One warning per outage for all
 * of them, and one line when the channel is subscribed again (it reconnects by itself). Publishes fail
 * within ~1.3 s meanwhile (3 retries, as our other publishing client; measured) instead of ~10 s.
 * `close` after the channel was disconnected (Agenda's stop does that).
 */
export function redisNotifications(redisUrl: string, channelName: string, log: Logger): { channel: RedisNotificationChannel; outage: OutageLog; close: () => void } {
  const outage = new OutageLog(log, 'Redis (job notifications)');
  const publisher = new NotificationRedis(redisUrl, { maxRetriesPerRequest: 3 });
  publisher.on('error', (err: Error) => outage.failed(err));
  const channel = new RedisNotificationChannel({ redis: publisher, channelName });
  channel.on('error', (err: Error) => outage.failed(err));
  channel.on('stateChange', (state) => void (state === 'connected' && outage.back()));
  return { channel, outage, close: () => publisher.close() };
}

async function mongoJobStore(config: Config, url: string, common: Omit<AgendaOptions, 'backend'>, log: Logger): Promise<JobStore> {
  const store = new OutageLog(log, 'MongoDB (the job store)');
  const client = new MongoClient(url, mongoClientOptions(url, config.jobStorePoolSize));
  // As for PostgreSQL's pools (guardPool): a new connection made means the store is back.
  client.on('connectionReady', () => store.back());
  // The driver relays its topology's 'error' (a server of an unsupported version): never uncaught.
  client.on('error', (err) => log.error({ err }, 'MongoDB job store error'));
  const backend = new MongoBackend({ mongo: client.db(), collection: JOBS });
  try {
    // Unreachable: start-up fails here after serverSelectionTimeoutMS, naming the error (in Agenda's
    // constructor, which connects a backend built from an address, it is an unhandled rejection).
    await client.connect();
    // Agenda's own indexes (and its log collection's), awaited here so a failure stops the start-up;
    // Agenda connects the backend again in its constructor, finding them made. Then ours, before
    // `every()` saves a periodic job.
    await backend.connect();
    await ensureSingleJobIndex(client.db().collection<JobDocument>(JOBS), log);
  } catch (err) {
    await client.close();
    throw err;
  }

  const { channel, outage: notifications, close: closeChannel } = redisNotifications(config.redisUrl, `${config.redisPrefix}:agenda`, log);
  const scheduler = new Agenda({ ...common, backend, notificationChannel: channel });
  scheduler.on('error', (err: Error) => {
    if (isRedisUnavailable(err)) notifications.failed(err);
    else if (isMongoUnavailable(err)) store.failed(err);
    else schedulerError(log, err);
  });
  return {
    scheduler,
    outage: store,
    async close() {
      await backend.disconnect(); // a no-op for a backend given its database: the client is ours
      await client.close();
      closeChannel();
    },
  };
}

/**
 * Graceful stop: take no new jobs, let running ones finish for up to `graceMs`, then close the store (`close`).
 * (Agenda 6.2.6's own `drain()` misses the end of a job whose row was removed while it ran and then
 * waits its full timeout, so running jobs are counted here from Agenda's start/complete events.)
 */
export function trackRunning(scheduler: Scheduler, close: () => Promise<void>): { takeNoMore(): Promise<void>; stop(graceMs: number): Promise<number> } {
  let running = 0;
  let stopped: Promise<void> | undefined;
  // Stops scanning and unlocks the jobs locked here but not started; running ones go on.
  const takeNoMore = () => (stopped ??= scheduler.stop(false));
  const idle: Array<() => void> = [];
  // Only this instance's runs: Agenda re-emits other instances' starts and completions (remote = true),
  // and a remote start whose completion never came here (its instance killed, or the completion sent
  // after this one stopped listening) kept a stop waiting its whole grace (10 s of a 10 s grace, measured).
  scheduler.on('start', (_job: unknown, remote?: boolean) => {
    if (remote !== true) running++;
  });
  scheduler.on('complete', (_job: unknown, remote?: boolean) => {
    if (remote === true) return;
    running = Math.max(0, running - 1);
    if (running === 0) idle.splice(0).forEach((wake) => wake());
  });
  return {
    takeNoMore,
    async stop(graceMs: number): Promise<number> {
      await takeNoMore();
      if (running > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => idle.push(resolve)),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs))),
        ]);
        clearTimeout(timer);
      }
      const left = running;
      await close();
      return left;
    },
  };
}

export function storeName(config: Config): 'mongodb' | 'postgresql' {
  return config.agendaMongoUrl ? 'mongodb' : 'postgresql';
}

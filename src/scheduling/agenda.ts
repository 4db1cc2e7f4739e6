import { Agenda, toJobId, type AgendaBackend, type NotificationChannel } from 'agenda';
import { PostgresBackend, type PostgresJobRepository } from '@agendajs/postgres-backend';
import { MongoBackend } from '@agendajs/mongo-backend';
import { RedisNotificationChannel } from '@agendajs/redis-backend';
import type { Config } from '../config.js';
import { guardPool, isDatabaseUnavailable, poolSafety, type OutageLog } from '../db/unavailable.js';
import type { Logger } from '../logger.js';

export type Scheduler = Agenda;

/**
 * Agenda saving the end of a job whose row was removed while it ran: a deadline's wake-up replaced or
 * cancelled by `arm` (the deadline watch settled it first, or an earlier deadline moved it). Expected
 * in the deadline engine's design, and nothing is lost (the row's removal was the point), so it is
 * logged at info, not as a scheduler error.
 */
const REMOVED_WHILE_RUNNING = /cannot be updated in the database, maybe it does not exist anymore/;

function schedulerError(log: Logger, err: Error): void {
  if (REMOVED_WHILE_RUNNING.test(err?.message ?? '')) log.info({ reason: err.message }, 'a job ended after its row was removed; nothing to save');
  else log.error({ err }, 'scheduler error');
}

/**
 * Tells every instance's Agenda, through its notification channel, that a job of this name is due now:
 * each fills its queue for that name and processes it at once, as for a job just saved. A job one of
 * them holds locked, waiting for a timer that fired before its time, then runs (see Deadlines' backstop).
 */
export type NudgeJobs = (jobName: string) => Promise<void>;

function nudger(channel: NotificationChannel | undefined, source: string): NudgeJobs {
  return async (jobName) => {
    if (!channel) return;
    const now = new Date();
    await channel.publish({ jobId: toJobId(`nudge-${jobName}`), jobName, nextRunAt: now, priority: 0, timestamp: now, source });
  };
}

/**
 * Agenda, the only scheduler. Its job store is MongoDB when AGENDA_MONGO_URL is set (with Redis
 * pub/sub telling every instance at once that a job was saved), otherwise PostgreSQL on the app's
 * database with LISTEN/NOTIFY. Its tables come from a migration (ensureSchema: false).
 */
export function createScheduler(
  config: Config,
  instanceName: string,
  log: Logger,
  outage: OutageLog,
): { scheduler: Scheduler; backend: AgendaBackend; nudge: NudgeJobs } {
  const common = {
    name: instanceName,
    processEvery: config.jobProcessEverySeconds * 1000,
    defaultLockLifetime: config.jobLockLifetimeSeconds * 1000,
    defaultConcurrency: config.jobConcurrency,
    maxConcurrency: Math.max(20, config.jobConcurrency * 4),
  };
  if (config.agendaMongoUrl) {
    const backend = new MongoBackend({
      address: config.agendaMongoUrl,
      collection: 'agenda_jobs',
      // JOB_STORE_POOL_SIZE unset: the driver's own pool (maxPoolSize 100), as before the variable existed.
      ...(config.jobStorePoolSize ? { options: { maxPoolSize: config.jobStorePoolSize } } : {}),
    });
    const notificationChannel = new RedisNotificationChannel({
      connectionString: config.redisUrl,
      channelName: `${config.redisPrefix}:agenda`,
    });
    const scheduler = new Agenda({ ...common, backend, notificationChannel });
    scheduler.on('error', (err: Error) => schedulerError(log, err));
    return { scheduler, backend, nudge: nudger(notificationChannel, instanceName) };
  }
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
  return { scheduler, backend, nudge: nudger(backend.notificationChannel, instanceName) };
}

/**
 * Graceful stop: take no new jobs, let running ones finish for up to `graceMs`, then close the store.
 * (Agenda 6.2.6's own `drain()` misses the end of a job whose row was removed while it ran and then
 * waits its full timeout, so running jobs are counted here from Agenda's start/complete events.)
 */
export function trackRunning(scheduler: Scheduler, backend: AgendaBackend): { takeNoMore(): Promise<void>; stop(graceMs: number): Promise<number> } {
  let running = 0;
  let stopped: Promise<void> | undefined;
  // Stops scanning and unlocks the jobs locked here but not started; running ones go on.
  const takeNoMore = () => (stopped ??= scheduler.stop(false));
  const idle: Array<() => void> = [];
  scheduler.on('start', () => void running++);
  scheduler.on('complete', () => {
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
      await backend.disconnect();
      return left;
    },
  };
}

export function storeName(config: Config): 'mongodb' | 'postgresql' {
  return config.agendaMongoUrl ? 'mongodb' : 'postgresql';
}

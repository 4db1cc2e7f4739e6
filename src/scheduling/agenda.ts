import { Agenda, type AgendaBackend } from 'agenda';
import { PostgresBackend } from '@agendajs/postgres-backend';
import { MongoBackend } from '@agendajs/mongo-backend';
import { RedisNotificationChannel } from '@agendajs/redis-backend';
import type { Config } from '../config.js';

export type Scheduler = Agenda;

/**
 * Agenda, the only scheduler. Its job store is MongoDB when AGENDA_MONGO_URL is set (with Redis
 * pub/sub telling every instance at once that a job was saved), otherwise PostgreSQL on the app's
 * database with LISTEN/NOTIFY. Its tables come from a migration (ensureSchema: false).
 */
export function createScheduler(config: Config, instanceName: string): { scheduler: Scheduler; backend: AgendaBackend } {
  const common = {
    name: instanceName,
    processEvery: config.jobProcessEverySeconds * 1000,
    defaultLockLifetime: config.jobLockLifetimeSeconds * 1000,
    defaultConcurrency: config.jobConcurrency,
    maxConcurrency: Math.max(20, config.jobConcurrency * 4),
  };
  if (config.agendaMongoUrl) {
    const backend = new MongoBackend({ address: config.agendaMongoUrl, collection: 'agenda_jobs' });
    const notificationChannel = new RedisNotificationChannel({
      connectionString: config.redisUrl,
      channelName: `${config.redisPrefix}:agenda`,
    });
    return { scheduler: new Agenda({ ...common, backend, notificationChannel }), backend };
  }
  const backend = new PostgresBackend({ poolConfig: { connectionString: config.databaseUrl, max: 5 }, ensureSchema: false });
  return { scheduler: new Agenda({ ...common, backend }), backend };
}

/**
 * Graceful stop: take no new jobs, let running ones finish for up to `graceMs`, then close the store.
 * (Agenda 6.2.6's own `drain()` misses the end of a job whose row was removed while it ran and then
 * waits its full timeout, so running jobs are counted here from Agenda's start/complete events.)
 */
export function trackRunning(scheduler: Scheduler, backend: AgendaBackend): { stop(graceMs: number): Promise<number> } {
  let running = 0;
  const idle: Array<() => void> = [];
  scheduler.on('start', () => void running++);
  scheduler.on('complete', () => {
    running = Math.max(0, running - 1);
    if (running === 0) idle.splice(0).forEach((wake) => wake());
  });
  return {
    async stop(graceMs: number): Promise<number> {
      await scheduler.stop(false); // stops scanning, unlocks jobs locked here but not started
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

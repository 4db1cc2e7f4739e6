import { Agenda } from 'agenda';
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
export function createScheduler(config: Config, instanceName: string): Scheduler {
  const common = {
    name: instanceName,
    processEvery: config.jobProcessEverySeconds * 1000,
    defaultLockLifetime: config.jobLockLifetimeSeconds * 1000,
    defaultConcurrency: config.jobConcurrency,
    maxConcurrency: Math.max(20, config.jobConcurrency * 4),
  };
  if (config.agendaMongoUrl) {
    return new Agenda({
      ...common,
      backend: new MongoBackend({ address: config.agendaMongoUrl, collection: 'agenda_jobs' }),
      notificationChannel: new RedisNotificationChannel({
        connectionString: config.redisUrl,
        channelName: `${config.redisPrefix}:agenda`,
      }),
    });
  }
  return new Agenda({
    ...common,
    backend: new PostgresBackend({ poolConfig: { connectionString: config.databaseUrl, max: 5 }, ensureSchema: false }),
  });
}

export function storeName(config: Config): 'mongodb' | 'postgresql' {
  return config.agendaMongoUrl ? 'mongodb' : 'postgresql';
}

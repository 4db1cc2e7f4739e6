/**
 * One peer's worker, a process of its own (bench:peers starts one, or two for the SIGKILL workloads).
 * Every job does exactly Deadline's work for one deadline: the conditional update of its auction, then
 * one event published on Redis (common.ts, endOne). argv[2]: the PeerSpec as JSON. Says
 * { type: 'ready' } once it takes jobs; exits when the benchmark goes (IPC closed).
 */
import { Redis } from 'ioredis';
import pg from 'pg';
import { endedChannel, endOne } from './common.js';
import type { PeerSpec } from './peers.js';

const spec = JSON.parse(process.argv[2]) as PeerSpec;
process.on('disconnect', () => process.exit(0));

// The handler's own pool, as an application beside its queue would have: DB_POOL_SIZE's default, 10.
const pool = new pg.Pool({ connectionString: spec.databaseUrl, max: 10 });
pool.on('error', () => undefined);
const redis = new Redis(spec.redisUrl, { lazyConnect: false });
const channel = endedChannel(spec.prefix);
const end = (id: string | number) => endOne(pool, redis, channel, String(id));

switch (spec.kind) {
  case 'bullmq': {
    const { Worker } = await import('bullmq');
    const worker = new Worker<{ id: string }>(spec.queue, async (job) => end(job.data.id), {
      connection: { host: '127.0.0.1', port: Number(new URL(spec.redisUrl).port || 6379), maxRetriesPerRequest: null },
      prefix: spec.prefix,
      concurrency: spec.concurrency,
    });
    worker.on('error', (e) => console.error(`bullmq worker: ${e.message}`));
    await worker.waitUntilReady();
    break;
  }
  case 'graphile': {
    const { run } = await import('graphile-worker');
    await run({
      connectionString: spec.databaseUrl,
      concurrency: spec.concurrency,
      pollInterval: spec.pollMs,
      noHandleSignals: true,
      taskList: { 'end-auction': async (payload) => end((payload as { id: string }).id) },
      logger: new (await import('graphile-worker')).Logger(() => (level: string, message: string) => {
        if (level === 'error') console.error(`graphile-worker: ${message}`);
      }),
    });
    break;
  }
  case 'pgboss': {
    const { PgBoss } = await import('pg-boss');
    const boss = new PgBoss({ connectionString: spec.databaseUrl });
    boss.on('error', (e: Error) => console.error(`pg-boss: ${e.message}`));
    await boss.start();
    await boss.work<{ id: string }>(
      spec.queue,
      { batchSize: spec.batchSize, pollingIntervalSeconds: spec.pollMs / 1000, burstWhenBatchFull: true },
      async (jobs) => {
        await Promise.all(jobs.map((job) => end(job.data.id)));
      },
    );
    break;
  }
  case 'agenda': {
    const { Agenda } = await import('agenda');
    const { PostgresBackend } = await import('@agendajs/postgres-backend');
    const agenda = new Agenda({ backend: new PostgresBackend({ connectionString: spec.databaseUrl }), processEvery: spec.pollMs });
    agenda.on('error', (e: Error) => console.error(`agenda: ${e.message}`));
    agenda.define<{ id: string }>(spec.queue, async (job) => end(job.attrs.data.id));
    await agenda.start();
    break;
  }
}
process.send!({ type: 'ready' });

import type { MikroORM } from '@mikro-orm/postgresql';
import { sql } from 'kysely';
import { pgArray } from '../db/sql.js';
import type { EventBatches } from '../events/outbox.js';
import { afterMajorGc } from '../http/gc-watch.js';
import type { Metrics } from '../http/metrics.js';
import type { Deadlines } from '../scheduling/deadlines.js';
import type { JobControl } from '../scheduling/job-control.js';
import type { RefundService } from '../services/refunds/service.js';
import type { DeadLetters } from '../services/seckill/dead-letters.js';
import type { WsServer } from './http-server.js';

export interface GaugeSources {
  orm: MikroORM;
  deadlines: Deadlines;
  batches: EventBatches;
  ws: WsServer;
  jobs: JobControl;
  seckillDeadLetters: DeadLetters;
  refunds: RefundService;
}

/** The gauges GET /metrics reports, each read on scrape: what is waiting now, not what happened. */
export function registerGauges(metrics: Metrics, { orm, deadlines, batches, ws, jobs, seckillDeadLetters, refunds }: GaugeSources): void {
  metrics.gauge('deadline_deadlines_pending', 'Deadlines not yet settled, by kind', ['kind'], async (g) => {
    for (const { kind, count } of await deadlines.pending()) g.set({ kind }, count);
  });
  metrics.gauge('deadline_deadline_oldest_overdue_seconds', 'How long each kind\'s oldest pending deadline is past due (0 when none is): growing means nothing settles it', ['kind'], async (g) => {
    for (const { kind, seconds } of await deadlines.oldestOverdue()) g.set({ kind }, seconds);
  });
  metrics.gauge('deadline_deadline_next_wakeup_timestamp_seconds', 'When each kind\'s wake-up is armed (Unix seconds); absent when none is', ['kind'], async (g) => {
    for (const { kind, wakeAt } of await deadlines.armed()) if (wakeAt) g.set({ kind }, wakeAt.getTime() / 1000);
  });
  metrics.gauge('deadline_outbox_backlog', 'Outbox changes not yet published to Redis (an event batch counts each entity it holds)', [], async (g) => {
    const {
      rows: [{ n }],
    } = await sql<{ n: number }>`
      select coalesce(sum(case when topic = any(${pgArray(batches.topics())}::text[]) then jsonb_array_length(payload -> 'entries') else 1 end), 0)::int as n
        from outbox_events where published_at is null`.execute(orm.em.fork().getKysely());
    g.set(n);
  });
  afterMajorGc(); // starts watching
  metrics.gauge('deadline_heap_used_after_major_gc_bytes', 'V8 heap used right after the last major collection: what the heap keeps alive (0 before the first)', [], (g) => {
    const m = afterMajorGc();
    if (m) g.set(m.heapUsedBytes);
  });
  metrics.gauge('deadline_resident_memory_after_major_gc_bytes', 'Resident memory right after the last major collection (0 before the first)', [], (g) => {
    const m = afterMajorGc();
    if (m) g.set(m.rssBytes);
  });
  metrics.gauge('deadline_websocket_connections', 'Open GraphQL WebSocket connections', [], (g) => g.set(ws.counts().sockets));
  metrics.gauge('deadline_subscriptions_active', 'GraphQL subscriptions running on this instance', [], (g) => g.set(ws.counts().subscriptions));
  // Real time, as GET /health/tasks reads it: runs are stamped with it.
  metrics.gauge('deadline_periodic_job_problems', 'Problems GET /health/tasks reports: periodic jobs overdue or whose last run failed, one each (paused jobs aside)', [], async (g) =>
    g.set((await jobs.health(new Date())).reasons.length),
  );
  metrics.gauge('deadline_seckill_dead_letters', 'Flash-sale entries in the dead-letter streams, every sale together (flashSaleDeadLetters lists them)', [], async (g) =>
    g.set(await seckillDeadLetters.total(orm.em.fork())),
  );
  metrics.gauge('deadline_payments_needing_refund', 'Payments kept for a refund (needsRefund) that no PENDING or SUCCEEDED refund covers: refundPayment them', [], async (g) =>
    g.set(await refunds.paymentsNeedingRefund(orm.em.fork())),
  );
  metrics.gauge('deadline_refunds_pending', 'Refunds their provider has not confirmed yet (refund-reconciliation asks)', [], async (g) => g.set(await refunds.pendingCount(orm.em.fork())));
}

import type { Config } from '../config.js';
import type { OutboxRelay } from '../events/relay.js';
import type { Deadlines } from '../scheduling/deadlines.js';
import { deadlineJob, noRetry, periodicJob, type JobDefinition, type RetryPolicy } from '../scheduling/jobs.js';
import type { JobStates } from '../scheduling/job-states.js';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { AuctionService } from '../services/auctions.js';
import type { Reconciliation } from '../services/reconciliation.js';
import type { RefundReconciliation } from '../services/refunds/reconciliation.js';
import type { VipService } from '../services/vip.js';
import type { VipReminders } from '../services/vip-reminders.js';
import { vipExpiryKind } from './vip-expiry.js';
import type { OrderQueries } from '../services/orders/queries.js';
import type { OrderSettlement } from '../services/orders/settle.js';
import { auctionEndKind } from './auction-end.js';
import { orderExpiryKind } from './order-expiry.js';
import { refundReconciliationJob } from './refund-reconciliation.js';

/** Every job's name, and what its runs carry (ids, never entities). */
export interface JobPayloads {
  'deadline:auction-end': { kind: string; armId?: string };
  'deadline:order-expiry': { kind: string; armId?: string };
  'deadline-sweep': Record<string, never>;
  'outbox-sweep': Record<string, never>;
  'payment-reconciliation': Record<string, never>;
  'refund-reconciliation': Record<string, never>;
  'deadline:vip-expiry': { kind: string; armId?: string };
  'vip-reminders': Record<string, never>;
}

/** A failed wake-up (database away) retries after 1, 2, 3, 4, 5 s; after that the sweep takes over. */
const wakeupRetry: RetryPolicy = { attempts: 5, delayMs: (attempt) => attempt * 1000 };

/**
 * The typed catalogue: every job the server runs, deadline wake-ups and periodic work alike. The
 * README's job table is this list in prose; the jobs API lists exactly these.
 */
export function jobCatalogue(deps: {
  config: Config;
  deadlines: Deadlines;
  states: JobStates;
  relay: OutboxRelay;
  auctions: AuctionService;
  orderSettlement: OrderSettlement;
  orderQueries: OrderQueries;
  reconciliation: Reconciliation;
  refundReconciliation: RefundReconciliation;
  orm: MikroORM;
  vip: VipService;
  reminders: VipReminders;
}): JobDefinition[] {
  const { config } = deps;
  return [
    deadlineJob(auctionEndKind(deps.auctions, config.auctionEndBatchSize, config.auctionEndLanes), wakeupRetry),
    deadlineJob(orderExpiryKind(deps.orderSettlement, deps.orderQueries, config.orderExpiryBatchSize, config.orderExpiryLanes), wakeupRetry),
    deadlineJob(vipExpiryKind(deps.vip, config.vip.expiryBatchSize), wakeupRetry),
    // The backstop's net: every kind (paused ones aside) settles what is overdue and re-arms, when the
    // timers and the wake-up job both missed it (the job lost, a settle that failed mid-batch).
    periodicJob<JobPayloads['deadline-sweep']>({
      name: 'deadline-sweep',
      schedule: { every: config.deadlineSweepSeconds * 1000 },
      payload: {},
      handler: async () => deps.deadlines.sweep(await pausedKinds(deps.states)),
      retry: noRetry,
    }),
    // Publishes what a crash or a Redis outage left in the outbox, then deletes what is past keeping.
    periodicJob<JobPayloads['outbox-sweep']>({
      name: 'outbox-sweep',
      schedule: { every: config.outboxSweepSeconds * 1000 },
      payload: {},
      handler: async () => {
        await deps.relay.sweep();
        await deps.relay.trim();
      },
      retry: noRetry,
    }),
    // Lost callbacks: PENDING online orders past RECONCILE_THRESHOLD_MINUTES asked about at their
    // provider. A run that fails as a whole (provider unreachable) is retried RECONCILE_MAX_RETRIES
    // times, RECONCILE_RETRY_SECONDS apart; one order's failure only counts in its summary.
    periodicJob<JobPayloads['payment-reconciliation']>({
      name: 'payment-reconciliation',
      schedule: { every: config.reconcile.intervalMinutes * 60_000 },
      payload: {},
      handler: () => deps.reconciliation.run(deps.orm.em.fork()),
      retry: { attempts: config.reconcile.maxRetries, delayMs: () => config.reconcile.retrySeconds * 1000 },
    }),
    // Lost refund notifications: PENDING refunds asked about at their provider (src/jobs/refund-reconciliation.ts).
    refundReconciliationJob(deps.refundReconciliation, deps.orm, config),
    // Daily at VIP_REMINDER_TIME in APP_TIMEZONE (a cron read in that zone: 09:00 local on both sides
    // of a DST change). Each milestone is written once by a unique key, so a retry is harmless.
    periodicJob<JobPayloads['vip-reminders']>({
      name: 'vip-reminders',
      schedule: { cron: dailyCron(config.vip.reminderTime), timezone: config.appTimezone },
      payload: {},
      handler: () => deps.reminders.run(),
      retry: { attempts: 3, delayMs: (attempt) => attempt * 60_000 },
    }),
  ];
}

/** Deadline kinds whose wake-up an admin paused: the sweep leaves them alone too. */
export async function pausedKinds(states: JobStates): Promise<string[]> {
  return (await states.paused()).filter((name) => name.startsWith('deadline:')).map((name) => name.slice('deadline:'.length));
}

/** "09:00" → "0 9 * * *". */
export function dailyCron(time: string): string {
  const [h, m] = time.split(':').map(Number);
  return `${m} ${h} * * *`;
}

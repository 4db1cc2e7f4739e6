import type { MikroORM } from '@mikro-orm/postgresql';
import type { Config } from '../config.js';
import { noRetry, periodicJob, type PeriodicJob } from '../scheduling/jobs.js';
import type { RefundReconciliation } from '../services/refunds/reconciliation.js';

export const REFUND_RECONCILIATION = 'refund-reconciliation';

/**
 * Lost refund notifications: every REFUND_RECONCILE_INTERVAL_MINUTES, PENDING refunds asked about at
 * their provider (RefundReconciliation.run). A run that fails as a whole (provider unreachable) is
 * not retried: the refunds stay PENDING, nothing is lost by waiting, and the next run asks again.
 */
export const refundReconciliationJob = (reconciliation: RefundReconciliation, orm: MikroORM, config: Config): PeriodicJob<Record<string, never>> =>
  periodicJob<Record<string, never>>({
    name: REFUND_RECONCILIATION,
    schedule: { every: config.refunds.reconcileIntervalMinutes * 60_000 },
    payload: {},
    handler: () => reconciliation.run(orm.em.fork()),
    retry: noRetry,
  });

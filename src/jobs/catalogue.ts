import type { Config } from '../config.js';
import type { OutboxRelay } from '../events/relay.js';
import type { Logger } from '../logger.js';
import type { Deadlines } from './deadlines.js';
import { wakeJobName } from './deadlines.js';
import type { Scheduler } from './scheduler.js';
import { auctionEndKind } from './auction-end.js';
import { AUCTION_END } from '../services/auctions.js';
import { orderExpiryKind } from './order-expiry.js';
import { ORDER_EXPIRY, type OrderService } from '../services/orders.js';

/** Every Agenda job the server defines. The README's job catalogue is this list in prose. */
export const JOBS = {
  auctionEnd: wakeJobName(AUCTION_END),
  orderExpiry: wakeJobName(ORDER_EXPIRY),
  deadlineSweep: 'deadline-sweep',
  outboxSweep: 'outbox-sweep',
} as const;

export const PERIODIC_JOBS = [JOBS.deadlineSweep, JOBS.outboxSweep];

/**
 * Registers the deadline kinds (their wake-up jobs) and, unless ENABLE_CRON=false, the periodic
 * safety nets. Periodic jobs are Agenda `every` jobs: one row per name (a unique index), so any
 * number of instances share one schedule.
 */
export async function registerJobs(deps: {
  config: Config;
  scheduler: Scheduler;
  deadlines: Deadlines;
  relay: OutboxRelay;
  orders: OrderService;
  log: Logger;
}): Promise<void> {
  const { config, scheduler, deadlines, relay, log } = deps;
  deadlines.register(auctionEndKind(config.auctionEndBatchSize));
  deadlines.register(orderExpiryKind(deps.orders, config.orderExpiryBatchSize));
  if (!config.enableCron) {
    log.info('ENABLE_CRON=false: periodic jobs are off on this instance');
    return;
  }
  const lockLifetime = config.jobLockLifetimeSeconds * 1000;
  scheduler.define(JOBS.deadlineSweep, async () => void (await deadlines.sweep()), { lockLifetime });
  scheduler.define(JOBS.outboxSweep, async () => void (await relay.sweep()), { lockLifetime });
  await scheduler.every(config.deadlineSweepSeconds * 1000, JOBS.deadlineSweep, {});
  await scheduler.every(config.outboxSweepSeconds * 1000, JOBS.outboxSweep, {});
}

import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import { Redis } from 'ioredis';
import { tokenKeys } from './auth.js';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config.js';
import { registerGauges } from './app/gauges.js';
import { createHttpServer } from './app/http-server.js';
import { lifecycle } from './app/lifecycle.js';
import { ensureDatabase, initOrm, migrate, pendingMigrations, PendingMigrations } from './db/orm.js';
import { isMongoUnavailable, isPostgresUnavailable, OutageLog } from './db/unavailable.js';
import { Transactions } from './db/transactions.js';
import { EventBus } from './events/bus.js';
import { EventBatches } from './events/outbox.js';
import { committedSince, OutboxRelay } from './events/relay.js';
import { Metrics } from './http/metrics.js';
import { AUCTION_END } from './jobs/auction-end.js';
import { jobCatalogue } from './jobs/catalogue.js';
import { ORDER_EXPIRY } from './jobs/order-expiry.js';
import { VIP_EXPIRY } from './jobs/vip-expiry.js';
import { createLogger, type Logger } from './logger.js';
import { redactor } from './redact.js';
import { createScheduler, storeName, trackRunning, type Scheduler } from './scheduling/agenda.js';
import { Deadlines } from './scheduling/deadlines.js';
import { AgendaJobControl } from './scheduling/job-control.js';
import { JobStates } from './scheduling/job-states.js';
import { JobRuns } from './scheduling/job-runs.js';
import { JOB_EVENTS_CHANNEL, type JobEventMessage } from './events/types.js';
import { registerJobs } from './scheduling/jobs.js';
import { auctionEnds, AuctionService } from './services/auctions.js';
import { AuditLog } from './services/audit.js';
import { MessageService } from './services/messages.js';
import { VipService } from './services/vip.js';
import { VipReminders } from './services/vip-reminders.js';
import { OrderCreation } from './services/orders/create.js';
import { OrderQueries } from './services/orders/queries.js';
import { orderCloses } from './services/orders/settle-close.js';
import { OrderSettlement } from './services/orders/settle.js';
import { PaymentRecorder } from './services/payments/record.js';
import { PaymentCallbacks } from './services/payments/callbacks.js';
import { PaymentService } from './services/payments.js';
import { Reconciliation } from './services/reconciliation.js';
import { RefundReconciliation } from './services/refunds/reconciliation.js';
import { RefundService } from './services/refunds/service.js';
import { createProviders } from './payments/setup.js';
import { ProductService } from './services/products.js';
import { WalletService } from './services/wallets.js';
import type { AppServices } from './app-services.js';
import { UserService } from './services/users.js';
import { SeckillBatches } from './services/seckill/batch.js';
import { SeckillConsumer } from './services/seckill/consumer.js';
import { FlashSales } from './services/seckill/sales.js';
import { SaleStore } from './services/seckill/store.js';
import { DeadLetters } from './services/seckill/dead-letters.js';

export interface App {
  url: string;
  /** This instance's name in job runs and job events. */
  instanceName: string;
  port: number;
  services: AppServices;
  deadlines: Deadlines;
  scheduler: Scheduler;
  relay: OutboxRelay;
  httpServer: Server;
  /** Graceful stop: no new requests or jobs, running jobs finish (or are unlocked), then everything closes. */
  stop(): Promise<void>;
}

export interface AppOptions {
  clock?: Clock;
  log?: Logger;
  instanceName?: string;
}

/** Start-up in order: config -> database (created and migrated) -> Redis -> scheduler -> HTTP + WebSocket. */
export async function startApp(config: Config, opts: AppOptions = {}): Promise<App> {
  const log = opts.log ?? createLogger({ level: config.logLevel, redact: redactor(config), instance: config.instanceName });
  // Before anything starts: without a secret no token could be checked (src/main.ts resolves a development one).
  const tokens = tokenKeys(config);
  const clock = opts.clock ?? systemClock;
  const instanceName = opts.instanceName ?? config.instanceName;
  // Still starts: an operator's old environment is no reason to stay down (config.ts, REMOVED).
  for (const warning of config.removedVariables) log.warn(warning);

  // MIGRATE_ON_START=false: migrations are the release step (`npm run migrate`), and a database behind
  // this build's migrations stops the start-up, naming them, before anything runs on the wrong schema.
  if (config.migrateOnStart) await ensureDatabase(config.databaseUrl, log);
  const outage = new OutageLog(log);
  const orm = await initOrm(config.databaseUrl, outage, config.dbPoolSize);
  if (config.migrateOnStart) await migrate(orm, config.databaseUrl, log);
  else {
    const pending = await pendingMigrations(orm);
    if (pending.length > 0) {
      await orm.close();
      throw new PendingMigrations(pending);
    }
  }

  // Publishing and subscribing need their own connections (a subscriber can do nothing else).
  // Auto-pipelined: the commands of one event-loop turn (a burst of callbacks' replay checks, flash-sale
  // requests, publishes) go out in one write. A socket write costs ~0.06 ms on this machine, and one per
  // callback held bench:payments' callbacks ~7% lower (docs/benchmarks.md, "Payments").
  const redisPub = new Redis(config.redisUrl, { maxRetriesPerRequest: 3, enableAutoPipelining: true });
  const redisSub = new Redis(config.redisUrl);
  watchRedis(redisPub, 'publisher', log);
  watchRedis(redisSub, 'subscriber', log);
  await Promise.all([redisPub.ping(), redisSub.ping()]);

  const batches = new EventBatches([auctionEnds, orderCloses]);
  const bus = new EventBus(redisPub, redisSub, config.redisPrefix, log, committedSince(orm, batches), config.eventDedupeWindowSeconds * 1000);
  const relay = new OutboxRelay(orm, bus, log, batches, config.outboxRepublishAfterSeconds, config.outboxRetentionHours);
  const tx = new Transactions(orm, relay, clock, log);
  const jobStore = await createScheduler(config, instanceName, log, outage);
  const { scheduler } = jobStore;
  const jobs = trackRunning(scheduler, () => jobStore.close());
  // A failure on another instance arrives here too (remote = true); that instance logs its own.
  scheduler.on('fail', (err: Error, job: { attrs: { name: string } }, remote?: boolean) => {
    if (remote) return;
    if (isMongoUnavailable(err)) jobStore.outage.failed(err);
    else if (isPostgresUnavailable(err)) outage.failed(err);
    log.error({ err, job: job.attrs.name }, 'job failed');
  });
  const deadlines = new Deadlines(orm, tx, scheduler, clock, log, {
    batchSize: config.deadlineBatchSize,
    databaseUrl: config.databaseUrl,
    timers: config.deadlineTimers,
  });
  const metrics = new Metrics();
  deadlines.onSettled = (kind, latenessMs) => metrics.deadlinesSettled(kind, latenessMs);
  const states = new JobStates(orm);
  const runs = new JobRuns(orm, instanceName);

  // The composition root: each service gets the narrow handles it needs, never the engine.
  const users = new UserService();
  // A flash sale's copy in Redis follows its product's changes (flashSales is made below).
  const products = new ProductService({ FLASH_SALE: (uow, change) => flashSales.onProductChanged(uow, change) });
  const wallets = new WalletService(users);
  const audit = new AuditLog();
  const auctions = new AuctionService(deadlines.armer(AUCTION_END), audit);
  const vip = new VipService(deadlines.armer(VIP_EXPIRY), config.appTimezone);
  const saleStore = new SaleStore(redisPub, config.seckill.keyPrefix);
  // The consumer is made below (it writes orders); sales hand it their streams through this closure.
  // Before the orders: createOrder refuses a method no provider pays here (PAYMENTS_SANDBOX off), and so
  // does startFlashSale (its orders are WECHAT).
  const providers = createProviders(config);
  const flashSales = new FlashSales(saleStore, config.seckill.group, (productId): Promise<void> => seckillConsumer.watch(productId), log, () => providers.routeOf('WECHAT') !== null);
  // What becoming PAID (and CANCELLED or EXPIRED) means per product kind, whichever way it happened.
  const orderSettlement = new OrderSettlement(wallets, { VIP_PLAN: vip.onPaid }, log, config.orderExpireMinutes, { FLASH_SALE: flashSales.onClosed }, { VIP_PLAN: vip.onRefunded });
  const orderQueries = new OrderQueries();
  const orderCreation = new OrderCreation(deadlines.armer(ORDER_EXPIRY), products, wallets, users, orderSettlement, config.orderExpireMinutes, providers, config.orders);
  const seckillConsumer = new SeckillConsumer(
    config.redisUrl,
    redisPub,
    saleStore,
    new SeckillBatches(orderCreation, (orders) => payments.startLater(tx, orders)),
    tx,
    config.seckill,
    instanceName,
    log,
  );
  const messages = new MessageService();
  let listeningOn = config.port;
  const payments = new PaymentService(providers, orderSettlement, log, () => config.publicBaseUrl ?? `http://localhost:${listeningOn}`, {
    concurrency: 5,
    quietMs: config.seckill.paymentQuietMs,
    maxDelayMs: config.seckill.paymentMaxDelayMs,
  });
  const paymentRecorder = new PaymentRecorder(tx, payments, log);
  const reconciliation = new Reconciliation(tx, providers, paymentRecorder, orderSettlement, log, config.reconcile, () => clock.now());
  reconciliation.onSummary = (summary, failed) => metrics.reconciled(summary, failed);
  const refunds = new RefundService(tx, providers, orderSettlement, audit, log, () => config.publicBaseUrl ?? `http://localhost:${listeningOn}`);
  const paymentCallbacks = new PaymentCallbacks({ providers, redis: redisPub, redisPrefix: config.redisPrefix, log }, paymentRecorder, refunds);
  const refundReconciliation = new RefundReconciliation(tx, providers, refunds, log, { batchSize: config.refunds.reconcileBatchSize, concurrency: config.refunds.reconcileConcurrency });
  const reminders = new VipReminders(tx, messages, log, config.appTimezone, config.vip.reminderBatchSize, () => clock.now());
  const catalogue = jobCatalogue({ config, deadlines, states, relay, auctions, orderSettlement, orderQueries, reconciliation, refundReconciliation, orm, vip, reminders });
  const services: AppServices = {
    config,
    tokens,
    orm,
    clock,
    log,
    tx,
    bus,
    jobs: new AgendaJobControl(catalogue, scheduler, deadlines, states, runs),
    audit,
    auctions,
    users,
    products,
    wallets,
    orderCreation,
    orderSettlement,
    orderQueries,
    payments,
    paymentRecorder,
    paymentCallbacks,
    refunds,
    providers,
    messages,
    vip,
    flashSales,
    seckillDeadLetters: new DeadLetters(saleStore, flashSales),
  };

  let jobEventsFailing = false;
  await registerJobs(catalogue, {
    scheduler,
    deadlines,
    states,
    runs,
    // Announcements, not changes (no outbox): lost while Redis is down, with one warning per outage.
    events: (e) => {
      const payload: JobEventMessage = { eventId: randomUUID(), ...e, at: e.at.toISOString() };
      return bus.publish([{ channel: JOB_EVENTS_CHANNEL, payload: { ...payload } }]).then(
        () => void (jobEventsFailing = false),
        (err: Error) => {
          if (!jobEventsFailing) log.warn({ err: err.message }, 'job events cannot be published; dropped until Redis is back');
          jobEventsFailing = true;
        },
      );
    },
    log,
    enableCron: config.enableCron,
    lockLifetimeMs: config.jobLockLifetimeSeconds * 1000,
    observe: (job, outcome, seconds) => metrics.jobFinished(job, outcome, seconds),
  });
  await scheduler.start();
  log.info({ store: storeName(config) }, 'job scheduler started');

  const http = await createHttpServer({ config, services, tokens, scheduler, redisPub, metrics, log });
  registerGauges(metrics, { orm, deadlines, batches, ws: http.ws, jobs: services.jobs, seckillDeadLetters: services.seckillDeadLetters, refunds });
  const { port, url } = await http.listen();
  listeningOn = port;

  // The stop sequence and the recoveries (the deadline engine's hand-over and start-up recovery among them).
  const life = lifecycle({
    config, log, clock, instanceName, orm, outage, jobStore, jobs, deadlines, states, relay, bus, redisPub, redisSub,
    apollo: http.apollo, ws: http.ws, seckillConsumer, payments, flashSales, reminders,
  });
  await life.recoverAtStart();

  return { url, instanceName, port, services, deadlines, scheduler, relay, httpServer: http.httpServer, stop: () => life.stop() };
}

/**
 * ioredis emits 'error' on every failed reconnect; without a listener each one is an "Unhandled error
 * event" line. One warning when a connection is lost and one line when it is back.
 */
function watchRedis(redis: Redis, role: string, log: Logger): void {
  let down = false;
  redis.on('error', (err: Error) => {
    if (down) return;
    down = true;
    log.warn({ role, err: err.message }, 'redis connection lost; retrying');
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    log.info({ role }, 'redis connection restored');
  });
}

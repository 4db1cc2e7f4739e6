import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Redis } from 'ioredis';
import { tokenKeys } from './auth.js';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config.js';
import { ensureDatabase, initOrm, migrate, pendingMigrations, PendingMigrations } from './db/orm.js';
import { isMongoUnavailable, isPostgresUnavailable, OutageLog } from './db/unavailable.js';
import { Transactions } from './db/transactions.js';
import { EventBus } from './events/bus.js';
import { EventBatches } from './events/outbox.js';
import { committedSince, OutboxRelay } from './events/relay.js';
import { afterMajorGc } from './http/gc-watch.js';
import { createApollo, graphqlOverHttp, httpContext } from './http/graphql.js';
import { graphqlJsonPost } from './http/graphql-json.js';
import { clientAddress, compileTrust } from './http/client-address.js';
import { graphqlCors } from './http/cors.js';
import { createWsServer } from './http/graphql-ws.js';
import { Metrics } from './http/metrics.js';
import { adminRoutes } from './http/admin.js';
import { playgroundHtml, restRoutes, wantsPlayground } from './http/routes.js';
import { AUCTION_END } from './jobs/auction-end.js';
import { jobCatalogue, pausedKinds } from './jobs/catalogue.js';
import { ORDER_EXPIRY } from './jobs/order-expiry.js';
import { VIP_EXPIRY } from './jobs/vip-expiry.js';
import { createLogger, type Logger } from './logger.js';
import { withRequestId } from './http/request-id.js';
import { redactor } from './redact.js';
import { createSchema } from './http/schema.js';
import { createScheduler, storeName, trackRunning, type Scheduler } from './scheduling/agenda.js';
import { Deadlines, wakeJobName } from './scheduling/deadlines.js';
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
import { localDay, localTime } from './services/calendar.js';
import { OrderCreation } from './services/orders/create.js';
import { OrderQueries } from './services/orders/queries.js';
import { orderCloses, OrderSettlement } from './services/orders/settle.js';
import { PaymentRecorder } from './services/payment-recorder.js';
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

/** Redis channel on which a stopping instance says its deadline wake-ups are released. */
const DEADLINE_HANDOVER = 'DEADLINE_HANDOVER';

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

/** The largest GraphQL request body accepted over HTTP (100 KiB, as `express.json`'s '100kb'). */
const GRAPHQL_BODY_LIMIT_BYTES = 100 * 1024;

/** Start-up in order: config -> database (created and migrated) -> Redis -> scheduler -> HTTP + WebSocket. */
export async function startApp(config: Config, opts: AppOptions = {}): Promise<App> {
  const log = opts.log ?? createLogger({ level: config.logLevel, redact: redactor(config), instance: config.instanceName });
  // Before anything starts: without a secret no token could be checked (src/main.ts resolves a development one).
  const tokens = tokenKeys(config);
  const clock = opts.clock ?? systemClock;
  const instanceName = opts.instanceName ?? config.instanceName;

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
  const { scheduler, nudge } = jobStore;
  const jobs = trackRunning(scheduler, jobStore.close);
  // A failure on another instance arrives here too (remote = true); that instance logs its own.
  scheduler.on('fail', (err: Error, job: { attrs: { name: string } }, remote?: boolean) => {
    if (remote) return;
    if (isMongoUnavailable(err)) jobStore.outage.failed(err);
    else if (isPostgresUnavailable(err)) outage.failed(err);
    log.error({ err, job: job.attrs.name }, 'job failed');
  });
  const deadlines = new Deadlines(orm, tx, scheduler, clock, log, {
    batchSize: config.deadlineBatchSize,
    staleMs: config.deadlineStaleSeconds * 1000,
    lockLifetimeMs: config.jobLockLifetimeSeconds * 1000,
    inlineWindowMs: config.deadlineInlineWindowSeconds * 1000,
    // By then every scheduler has scanned again and runs the wake-ups re-armed meanwhile.
    handoverMs: (config.jobProcessEverySeconds + 1) * 1000,
    armBackstopMs: config.deadlineArmBackstopMs,
    nudge,
    settleOnTime: config.deadlineSettleOnTime,
  });
  // Local starts, and other instances' through Agenda's state notifications (remote = true).
  scheduler.on('start', (job: { attrs?: { name: string }; jobName?: string }, remote?: boolean) => {
    const name = remote ? job.jobName : job.attrs?.name;
    if (name) deadlines.noteJobStart(name);
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


  const schema = await createSchema();
  const app = express();
  app.disable('x-powered-by');
  // One reading of TRUST_PROXY for Express (req.ip, req.secure: the admin cookie's Secure) and the direct path's client address.
  const trust = compileTrust(config.trustProxy);
  app.set('trust proxy', trust);
  const cors = graphqlCors(config.corsOrigins);
  // POST /graphql with a JSON body goes straight to Apollo (graphqlJsonPost); everything else to Express.
  let graphqlPost: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  // Every answer carries its x-request-id, and every log line the request causes names it (request-id.ts).
  const httpServer = createServer((req, res) =>
    withRequestId(req, res, () => {
      if (cors?.(req, res)) return; // a CORS preflight, answered; otherwise its headers are set for both paths
      if (!graphqlPost?.(req, res)) app(req, res);
    }),
  );
  const ws = createWsServer(services, schema, httpServer, () => metrics.websocketSlowCloses.inc());
  const apollo = await createApollo(services, schema, httpServer, ws.dispose, (op, failed) => metrics.graphqlOperation(op, failed));

  // Read on scrape: what is waiting now, not what happened.
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
    const [{ n }] = await orm.em
      .fork()
      .execute<Array<{ n: number }>>(
        `select coalesce(sum(case when topic = any(?::text[]) then jsonb_array_length(payload -> 'entries') else 1 end), 0)::int as n from outbox_events where published_at is null`,
        [`{${batches.topics().join(',')}}`],
      );
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
    g.set((await services.jobs.health(new Date())).reasons.length),
  );
  metrics.gauge('deadline_seckill_dead_letters', 'Flash-sale entries in the dead-letter streams, every sale together (flashSaleDeadLetters lists them)', [], async (g) =>
    g.set(await services.seckillDeadLetters.total(orm.em.fork())),
  );
  metrics.gauge('deadline_payments_needing_refund', 'Payments kept for a refund (needsRefund) that no PENDING or SUCCEEDED refund covers: refundPayment them', [], async (g) =>
    g.set(await refunds.paymentsNeedingRefund(orm.em.fork())),
  );
  metrics.gauge('deadline_refunds_pending', 'Refunds their provider has not confirmed yet (refund-reconciliation asks)', [], async (g) => g.set(await refunds.pendingCount(orm.em.fork())));

  // GraphQL first: most requests are GraphQL, and they need not pass the other routers.
  app.get('/graphql', (req, res, next) => (wantsPlayground(req) ? res.type('html').send(playgroundHtml()) : next()));
  // The client's address as Express's req.ip gives it, for both paths (H5 payments send it to the provider).
  const requestContext = (req: IncomingMessage) => httpContext(services, req.headers.authorization, req.headers['x-request-id'], clientAddress(req, trust));
  graphqlPost = graphqlJsonPost(apollo, requestContext, GRAPHQL_BODY_LIMIT_BYTES, (err) => log.error({ err }, 'GraphQL request failed'));
  app.use('/graphql', express.json({ limit: GRAPHQL_BODY_LIMIT_BYTES }), graphqlOverHttp(apollo, requestContext));
  // A body the JSON parser refused (malformed, too large) gets a GraphQL-shaped error, not Express's HTML page.
  app.use('/graphql', (err: unknown, _req: express.Request, res: express.Response, next: express.NextFunction) => {
    const status = (err as { status?: number } | null)?.status;
    if (typeof status !== 'number' || status < 400 || status >= 500) return next(err);
    const code = status === 413 ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST';
    res.status(status).json({ errors: [{ message: (err as Error).message, extensions: { code } }] });
  });
  app.get('/metrics', async (_req, res) => {
    try {
      const { contentType, body } = await metrics.text();
      res.type(contentType).send(body);
    } catch (err) {
      log.warn({ err }, 'metrics could not be collected');
      res.status(503).type('text/plain').send('metrics could not be collected\n');
    }
  });
  app.use(adminRoutes(tokens, scheduler, log));
  app.use(restRoutes(services, redisPub));
  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, resolve);
  });
  const port = (httpServer.address() as AddressInfo).port;
  listeningOn = port;
  const url = `http://localhost:${port}/graphql`;
  log.info({ url }, 'Deadline is serving GraphQL (and subscriptions) at this URL');

  let discovering: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info('stopping: no new requests or jobs');
      deadlines.stop();
      // No job starts here any more, before the others are told: a wake-up they re-arm from now on is
      // theirs to run (LISTEN/NOTIFY), not taken by this instance's scheduler and released at its stop
      // for their next scan. (Measured: those re-armed wake-ups waited for the watch, ~600 ms.)
      await jobs.takeNoMore();
      // From now on the other instances settle each kind's next deadline when it comes due, without
      // waiting for Agenda to release and re-scan our wake-up jobs (without Redis, their watch does).
      await bus.publish([{ channel: DEADLINE_HANDOVER, payload: { eventId: randomUUID(), from: instanceName } }]).catch(() => undefined);
      clearInterval(discovering);
      await apollo.stop(); // closes the HTTP server and the WebSocket server, waiting for requests in flight
      ws.wsServer.close();
      await seckillConsumer.stop(); // a batch being written commits and is acknowledged first
      await payments.stop(); // flash-sale payments waiting for the sale to go quiet start now; every start finishes and its intent is stored
      const running = await jobs.stop(config.shutdownGraceSeconds * 1000);
      if (running > 0) log.warn({ running }, 'jobs still running at shutdown; their locks will expire');

      bus.close();
      await Promise.allSettled([redisPub.quit(), redisSub.quit()]);
      await orm.close();
      log.info('stopped');
    })());

  // Outage recovery, like restart recovery below: a wake-up or sweep running when PostgreSQL went away
  // could not record its failure, so its row stays locked in the job store for JOB_LOCK_LIFETIME_SECONDS
  // (120 s). What came due meanwhile is settled as soon as PostgreSQL is back, and the events whose
  // publication failed are sent, instead of waiting for those locks.
  // The same after an outage of a MongoDB job store (AGENDA_MONGO_URL): what came due is settled and
  // each kind whose armed time passed gets a wake-up saved again (one still ahead whose save failed is
  // settled at its time by the arming instance's timer and the watch, both reading the row).
  let recovering = false;
  const catchUp = (what: string) => () => {
    if (stopping || recovering) return;
    recovering = true;
    (async () => {
      const republished = await relay.sweep();
      const settled = await deadlines.sweep(await pausedKinds(states));
      log.info({ republished, settled }, `caught up after the ${what} outage`);
    })()
      .catch((err) => log.warn({ err }, `catching up after the ${what} outage failed; the sweeps will`))
      .finally(() => (recovering = false));
  };
  outage.whenBack(catchUp('PostgreSQL'));
  if (jobStore.outage !== outage) jobStore.outage.whenBack(catchUp('MongoDB job store'));

  // Restart recovery: settle what came due while no server ran, and re-arm every wake-up. After
  // listening: 100,000 overdue orders take ~15 s to settle (docs/benchmarks.md), and health checks and
  // clients are answered meanwhile (a pay or cancel of an overdue order is refused as expired).
  try {
    // Before the recovery: a peer stopping meanwhile (a rolling restart stops the old instance as soon
    // as the new one answers /health) hands its deadlines over to this one too. Running beside the
    // recovery is safe, as beside any wake-up (SKIP LOCKED, conditional updates). Listening after it,
    // the handover of a peer stopped during a ~100 ms recovery was missed, and its next deadlines waited
    // for the watch (431–558 ms late in 3 of 4 runs of bench:failover's SIGTERM case).
    deadlines.watch(config.deadlineWatchMs, config.deadlineWatchGraceMs, () => states.paused());
    await bus.listen(DEADLINE_HANDOVER, (payload) => {
      if (payload.from !== instanceName) deadlines.takeOver().catch((err) => log.warn({ err }, 'taking over deadlines failed; the watch retries'));
    });
    const paused = await states.paused();
    for (const kind of deadlines.names()) {
      if (paused.includes(wakeJobName(kind))) log.warn({ kind }, 'deadline kind paused by an admin: not recovered at start-up');
      else await deadlines.recover(kind);
    }
    // Today's reminders, if their time has passed and no server ran them today (down at 09:00). Only
    // today's: a missed earlier day's milestones would say the wrong number of days. Each milestone is
    // written once by its unique key, so instances starting together write it once.
    if (config.enableCron && !paused.includes('vip-reminders')) {
      const now = clock.now();
      const today = localDay(now, config.appTimezone);
      const last = (await states.all()).get('vip-reminders')?.lastFinishedAt;
      const ranToday = last != null && localDay(last, config.appTimezone) === today && localTime(last, config.appTimezone) >= config.vip.reminderTime;
      if (localTime(now, config.appTimezone) >= config.vip.reminderTime && !ranToday) {
        log.info({ day: today }, 'vip reminders missed today: running them now');
        await states.started('vip-reminders');
        await reminders.run(today);
        await states.finished('vip-reminders', null);
      }
    }
    // Flash sales: consume every sale's stream, and load into Redis the open ones it lost (it may
    // have restarted empty); then again every SECKILL_DISCOVER_SECONDS, for sales started elsewhere.
    const discover = () => flashSales.discover(orm.em.fork(), clock.now());
    await discover();
    seckillConsumer.start();
    discovering = setInterval(() => {
      discover().catch((err) => log.warn({ err }, 'flash sales: looking for sales failed; trying again'));
    }, config.seckill.discoverSeconds * 1000);
  } catch (err) {
    await stop();
    throw err;
  }

  return { url, instanceName, port, services, deadlines, scheduler, relay, httpServer, stop };
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

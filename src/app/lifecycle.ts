import type { MikroORM } from '@mikro-orm/postgresql';
import type { Redis } from 'ioredis';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { OutageLog } from '../db/unavailable.js';
import type { EventBus } from '../events/bus.js';
import type { OutboxRelay } from '../events/relay.js';
import { pausedKinds } from '../jobs/catalogue.js';
import type { Logger } from '../logger.js';
import type { JobStore, trackRunning } from '../scheduling/agenda.js';
import { wakeJobName, type Deadlines } from '../scheduling/deadlines.js';
import type { JobStates } from '../scheduling/job-states.js';
import { localDay, localTime } from '../services/calendar.js';
import type { PaymentService } from '../services/payments.js';
import type { SeckillConsumer } from '../services/seckill/consumer.js';
import type { FlashSales } from '../services/seckill/sales.js';
import type { VipReminders } from '../services/vip-reminders.js';
import type { Apollo, WsServer } from './http-server.js';

/** What the stop sequence closes and the recoveries run: made by the composition root (app.ts). */
export interface LifecycleParts {
  config: Config;
  log: Logger;
  clock: Clock;
  instanceName: string;
  orm: MikroORM;
  /** PostgreSQL's outage log. */
  outage: OutageLog;
  jobStore: JobStore;
  jobs: ReturnType<typeof trackRunning>;
  deadlines: Deadlines;
  states: JobStates;
  relay: OutboxRelay;
  bus: EventBus;
  redisPub: Redis;
  redisSub: Redis;
  apollo: Apollo;
  ws: WsServer;
  seckillConsumer: SeckillConsumer;
  payments: PaymentService;
  flashSales: FlashSales;
  reminders: VipReminders;
}

export interface Lifecycle {
  /** Graceful stop, once however often it is called: no new requests or jobs, running jobs finish (or are unlocked), then everything closes. */
  stop(): Promise<void>;
  /** Restart recovery, after listening; a failure stops what started and is thrown. */
  recoverAtStart(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// The deadline engine's part in stopping and starting, in one place.

/**
 * The first step of a stop: this instance's deadline timers stop (the other instances' timers settle
 * what comes due from now on, with no hand-over: each keeps its own) and it takes no more jobs.
 * Resolves once the engine's runs under way here have finished (before the database closes).
 */
async function releaseDeadlines({ deadlines, jobs }: LifecycleParts): Promise<{ engineStopped: Promise<void> }> {
  const engineStopped = deadlines.stop();
  await jobs.takeNoMore();
  return { engineStopped };
}

/** Start-up: settle what came due while no server ran and re-arm, then start the timers. Returns the paused job names. */
async function recoverDeadlines({ deadlines, states, log }: LifecycleParts): Promise<string[]> {
  const paused = await states.paused();
  for (const kind of deadlines.names()) {
    if (paused.includes(wakeJobName(kind))) log.warn({ kind }, 'deadline kind paused by an admin: not recovered at start-up');
    else await deadlines.recover(kind);
  }
  // After the recovery, so that its log counts what it restored (a timer's run beside it would take
  // those deadlines first); meanwhile the other instances' timers and the wake-up jobs settle.
  await deadlines.start();
  return paused;
}

// ---------------------------------------------------------------------------------------------

/** The stop sequence, outage recovery (registered now) and restart recovery. */
export function lifecycle(parts: LifecycleParts): Lifecycle {
  const { config, log, clock, orm, outage, jobStore, jobs, deadlines, states, relay, bus, redisPub, redisSub, apollo, ws, seckillConsumer, payments, flashSales, reminders } = parts;
  let discovering: NodeJS.Timeout | undefined;
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      log.info('stopping: no new requests or jobs');
      const { engineStopped } = await releaseDeadlines(parts);
      clearInterval(discovering);
      await apollo.stop(); // closes the HTTP server and the WebSocket server, waiting for requests in flight
      ws.wsServer.close();
      await seckillConsumer.stop(); // a batch being written commits and is acknowledged first
      await payments.stop(); // flash-sale payments waiting for the sale to go quiet start now; every start finishes and its intent is stored
      const running = await jobs.stop(config.shutdownGraceSeconds * 1000);
      if (running > 0) log.warn({ running }, 'jobs still running at shutdown; their locks will expire');

      await engineStopped;
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
  // settled at its time by every instance's timer, which follows the row).
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
  const recoverAtStart = async () => {
    try {
      const paused = await recoverDeadlines(parts);
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
  };

  return { stop, recoverAtStart };
}

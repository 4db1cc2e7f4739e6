import { toJobId } from 'agenda';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import type { App } from '../../src/app.js';
import { OutageLog } from '../../src/db/unavailable.js';
import { createScheduler, mongoClientOptions, redisNotifications, SINGLE_JOB_INDEX } from '../../src/scheduling/agenda.js';
import { wakeJobName } from '../../src/scheduling/deadlines.js';
import {
  createAuction,
  createTestDatabase,
  inSeconds,
  LogCapture,
  sleep,
  start,
  subscribed,
  testConfig,
  token,
  waitUntil,
  wsClient,
} from '../support/harness.js';
import { freePort, OwnRedis } from '../support/redis-server.js';

/**
 * The same suite on every job store it is given: PostgreSQL always, MongoDB when TEST_MONGO_URL is
 * set (each run uses its own MongoDB database). What is checked is what a user would notice:
 * the wake-up's time in the store, deadlines settled, the periodic safety net.
 *
 * The mechanism that settles a deadline without the job store is off (IN_PROCESS_OFF: every
 * instance's timer at the armed time), so a deadline is settled here only when the store runs its
 * wake-up job (or the sweep, itself a job of the store): a store that runs nothing fails this suite.
 */
const IN_PROCESS_OFF = { DEADLINE_TIMERS: 'false' };

const mongoUrl = process.env.TEST_MONGO_URL;
const stores: Array<[string, (label: string) => Record<string, string>]> = [['postgresql', () => ({})]];
if (mongoUrl) {
  stores.push([
    'mongodb',
    (label) => {
      const url = new URL(mongoUrl);
      url.pathname = `/deadline_${label}_${Date.now()}`;
      return { AGENDA_MONGO_URL: url.toString() };
    },
  ]);
} else {
  console.warn('SKIPPED: the MongoDB job-store suite (set TEST_MONGO_URL=mongodb://host:27017 to run it)');
  describe('job store: mongodb', () => {
    test.skip('skipped: TEST_MONGO_URL is not set, and no MongoDB server can run on this machine', () => undefined);
  });
}

const AUCTION_END = wakeJobName('auction-end');
const seller = token('store-seller');
const ENDED_SUB = `subscription($id: ID) { auctionEnded(auctionId: $id) { endedAt auction { id status } } }`;

async function pendingWakeups(app: App): Promise<Date[]> {
  const { jobs } = await app.scheduler.queryJobs({ name: AUCTION_END });
  return jobs
    .map((j) => j.nextRunAt)
    .filter((d): d is Date => !!d)
    .map((d) => new Date(d))
    .sort((x, y) => x.getTime() - y.getTime());
}

/**
 * How the deadline engine says it settled `id`: 'wake-up' (the store's wake-up job), 'sweep',
 * 'recovery' (start-up) or 'timer' (an instance's timer, off here).
 */
function settledVia(log: LogCapture, id: string): string[] {
  return log.lines.filter((l) => l.msg === 'deadlines settled' && (l.ids as string[]).includes(id)).map((l) => String(l.via));
}

describe.each(stores)('job store: %s', (store, storeEnv) => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let app: App;
  const log = new LogCapture();
  const env = () => ({ ...storeEnv(store), ...IN_PROCESS_OFF, DEADLINE_SWEEP_SECONDS: '1' });

  beforeAll(async () => {
    db = await createTestDatabase(`store_${store}`);
    app = await start(testConfig(db.url, env()), log);
  });
  afterAll(async () => {
    await app?.stop();
    await db?.drop();
  });

  test('racing arms leave one wake-up in the store, at the earliest deadline', async () => {
    const far = await createAuction(app, seller, inSeconds(600));
    const ends = Array.from({ length: 20 }, (_, i) => inSeconds(300 - i * 7));
    await Promise.all(ends.map((end) => createAuction(app, seller, end)));
    const earliest = Math.min(...ends.map((e) => new Date(e).getTime()));

    const [armed] = await app.deadlines.armed();
    expect(armed.wakeAt!.getTime()).toBe(earliest);
    // Each arm writes the store after its commit, before its mutation answers: all are done here.
    const pending = await pendingWakeups(app);
    expect(pending.map((d) => d.getTime())).toEqual([earliest]);
    expect(new Date(far.endTime).getTime()).toBeGreaterThan(earliest);
  });

  test('a wake-up fires at its time and re-arms at the next deadline', async () => {
    const soon = await createAuction(app, seller, inSeconds(1));
    await waitUntil(async () => {
      const [row] = await app.services.orm.em.fork().execute('select status from auctions where id = ?', [soon.id]);
      return row.status === 'ENDED';
    }, 5_000, 'the auction to end');
    // Ended by a run of the store's wake-up job, not by the sweep.
    expect(settledVia(log, soon.id)).toEqual(['wake-up']);
    // The next pending end is minutes away (the first test's): one wake-up, armed there.
    const armedAt = async () => (await app.deadlines.armed())[0].wakeAt!.getTime();
    await waitUntil(async () => (await armedAt()) > Date.now() + 100_000, 3_000, 're-arming minutes ahead');
    const nextEnd = await armedAt();
    await waitUntil(async () => {
      const pending = await pendingWakeups(app);
      return pending.length === 1 && pending[0].getTime() === nextEnd;
    }, 3_000, 'one wake-up, re-armed at the next end');
  });

  test('the periodic sweep settles an overdue deadline whose wake-up job was deleted from the store', async () => {
    const lost = await createAuction(app, seller, inSeconds(0.5));
    // Someone (or a crash) removes every wake-up from the job store.
    await app.scheduler.cancel({ name: AUCTION_END });
    expect(await pendingWakeups(app)).toEqual([]);
    await sleep(600);
    await waitUntil(async () => {
      const [row] = await app.services.orm.em.fork().execute('select status from auctions where id = ?', [lost.id]);
      return row.status === 'ENDED';
    }, 5_000, 'the sweep to end the auction');
    expect(settledVia(log, lost.id)).toEqual(['sweep']);
    // ...and the sweep re-armed the kind.
    await waitUntil(async () => (await pendingWakeups(app)).length === 1, 3_000, 'the sweep to re-arm');
  });

  if (store === 'mongodb') {
    test('periodic jobs have a unique index: a second row of one name is refused', async () => {
      const client = new MongoClient(app.services.config.agendaMongoUrl!);
      try {
        const jobs = (await client.connect()).db().collection('agenda_jobs');
        const index = (await jobs.indexes()).find((i) => i.name === SINGLE_JOB_INDEX.options.name);
        expect(index).toMatchObject({ key: SINGLE_JOB_INDEX.key, unique: true, partialFilterExpression: { type: 'single' } });
        await expect(jobs.insertOne({ name: 'deadline-sweep', type: 'single' })).rejects.toMatchObject({ code: 11000 });
      } finally {
        await client.close();
      }
    });
  }

  // Last: three more instances start and stop beside `app`.
  test('periodic jobs are one row each however many instances start at once, and ENABLE_CRON=false adds none', async () => {
    const [second, third, noCron] = await Promise.all([
      start(testConfig(db.url, env()), undefined, { instanceName: 'store-second' }),
      start(testConfig(db.url, env()), undefined, { instanceName: 'store-third' }),
      start(testConfig(db.url, { ...env(), ENABLE_CRON: 'false' }), undefined, { instanceName: 'store-no-cron' }),
    ]);
    try {
      const { jobs } = await app.scheduler.queryJobs({ name: 'deadline-sweep' });
      expect(jobs).toHaveLength(1);
      // Only the wake-ups of the deadline kinds: no sweeps.
      expect(Object.keys((noCron.scheduler as unknown as { definitions: object }).definitions).sort()).toEqual(
        ['deadline:auction-end', 'deadline:order-expiry', 'deadline:vip-expiry'],
      );
    } finally {
      await Promise.all([second.stop(), third.stop(), noCron.stop()]);
    }
  });
});

describe('job store: postgresql, with the in-process paths off', () => {
  test('an auction ends at its time, woken by the job store itself, and its watcher hears it', async () => {
    const db = await createTestDatabase('store_pg_alone');
    const log = new LogCapture();
    // The sweep at its production interval (60 s; its first run is at start-up): it cannot be what ends the auction.
    const app = await start(testConfig(db.url, IN_PROCESS_OFF), log);
    const client = wsClient(app, token('store-watcher'));
    try {
      const auction = await createAuction(app, seller, inSeconds(1.5));
      const sub = await subscribed(app, client, ENDED_SUB, { id: auction.id }, 'AUCTION_ENDED');
      await sub.waitFor((s) => s.events.length >= 1, 10_000, 'auctionEnded');
      const { endedAt, auction: ended } = sub.events[0].auctionEnded;
      expect(ended).toEqual({ id: auction.id, status: 'ENDED' });
      const lateMs = new Date(endedAt).getTime() - new Date(auction.endTime).getTime();
      expect(lateMs).toBeGreaterThanOrEqual(0);
      // Agenda's own timer for a job it locked at its scan (JOB_PROCESS_EVERY_SECONDS = 1 here): a few ms
      // measured; the bound is generous.
      expect(lateMs).toBeLessThan(2_000);
      expect(settledVia(log, auction.id)).toEqual(['wake-up']);
    } finally {
      await client.dispose();
      await app.stop();
      await db.drop();
    }
  });
});

describe('job store: mongodb, what runs without a MongoDB server', () => {
  test('client bounds: 5 s to find a server or connect, 30 s for an answer; the URL\'s own options win; JOB_STORE_POOL_SIZE sets the pool', () => {
    expect(mongoClientOptions('mongodb://db:27017/jobs', undefined)).toEqual({ serverSelectionTimeoutMS: 5_000, connectTimeoutMS: 5_000, socketTimeoutMS: 30_000 });
    expect(mongoClientOptions('mongodb://a:27017,b:27017/jobs?replicaSet=rs&SERVERSELECTIONTIMEOUTMS=800&socketTimeoutMS=0', 7)).toEqual({
      connectTimeoutMS: 5_000,
      maxPoolSize: 7,
    });
  });

  test('MongoDB unreachable at start-up: it fails within the selection timeout, naming the error', async () => {
    const log = new LogCapture();
    // The URL's own timeout (500 ms) instead of the 5 s default.
    const config = testConfig('postgres://unused@127.0.0.1:1/unused', { AGENDA_MONGO_URL: `mongodb://127.0.0.1:${await freePort()}/jobs?serverSelectionTimeoutMS=500` });
    const started = Date.now();
    await expect(createScheduler(config, 'store-unreachable', log.logger, new OutageLog(log.logger))).rejects.toMatchObject({ name: 'MongoServerSelectionError' });
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  test('its Redis notification channel survives Redis going away: one warning, one line back, subscribed again, no client left behind', async () => {
    const redis = await OwnRedis.create();
    const log = new LogCapture();
    const DOWN = 'Redis (job notifications) unreachable; retrying until it is back';
    const BACK = 'Redis (job notifications) reachable again';
    const notifications = redisNotifications(redis.url, 'test:agenda', log.logger);
    const { channel } = notifications;
    const heard: string[] = [];
    channel.subscribe((note) => void heard.push(note.jobName));
    const probe = new Redis(redis.url, { lazyConnect: true });
    probe.on('error', () => undefined);
    try {
      await channel.connect();
      // Without the channel's 'error' listener, this is an uncaught exception that fails the file.
      await redis.kill();
      await waitUntil(() => log.messages().includes(DOWN), 5_000, 'the warning');
      // Several of the channel's reconnect rounds (~1.4 s each: its SUBSCRIBE given up after 3 retries, then a new subscriber).
      await sleep(5_000);
      await redis.start();
      await waitUntil(() => log.messages().includes(BACK), 10_000, 'the channel subscribed again');
      const note = { jobId: toJobId('j1'), jobName: 'after-the-outage', nextRunAt: null, priority: 0, timestamp: new Date() };
      await probe.publish('test:agenda', JSON.stringify(note));
      await waitUntil(() => heard.includes('after-the-outage'), 5_000, 'a notification after the outage');
      // The publishing client is back too.
      await waitUntil(() => channel.publish({ ...note, jobName: 'sent', timestamp: new Date() }).then(() => true, () => false), 5_000, 'a publish');
      // A subscriber left behind by a failed round would be connected again by now (ioredis retries at most 2 s apart).
      await sleep(2_500);
      const clients = String(await probe.client('LIST')).trim().split('\n');
      expect(clients).toHaveLength(3); // the channel's publisher and subscriber, and this probe
      expect(log.messages().filter((m) => m === DOWN)).toHaveLength(1);
      expect(log.messages().filter((m) => m === BACK)).toHaveLength(1);
    } finally {
      probe.disconnect();
      await channel.disconnect();
      notifications.close();
      await redis.destroy();
    }
  }, 40_000);
});

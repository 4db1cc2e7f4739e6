import type { App } from '../../src/app.js';
import { wakeJobName } from '../../src/scheduling/deadlines.js';
import { createAuction, createTestDatabase, inSeconds, sleep, start, testConfig, token, waitUntil } from '../support/harness.js';

/**
 * The same suite on every job store it is given: PostgreSQL always, MongoDB when TEST_MONGO_URL is
 * set (each run uses its own MongoDB database). What is checked is what a user would notice:
 * the wake-up's time in the store, deadlines settled, the periodic safety net.
 */
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

async function pendingWakeups(app: App): Promise<Date[]> {
  const { jobs } = await app.scheduler.queryJobs({ name: AUCTION_END });
  return jobs
    .map((j) => j.nextRunAt)
    .filter((d): d is Date => !!d)
    .map((d) => new Date(d))
    .sort((x, y) => x.getTime() - y.getTime());
}

describe.each(stores)('job store: %s', (store, storeEnv) => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let app: App;

  beforeAll(async () => {
    db = await createTestDatabase(`store_${store}`);
    app = await start(testConfig(db.url, { ...storeEnv(store), DEADLINE_SWEEP_SECONDS: '1' }));
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
    // ...and the sweep re-armed the kind.
    await waitUntil(async () => (await pendingWakeups(app)).length === 1, 3_000, 'the sweep to re-arm');
  });

  test('periodic jobs are one row each however many instances start, and ENABLE_CRON=false adds none', async () => {
    const second = await start(testConfig(db.url, { ...storeEnv(store), DEADLINE_SWEEP_SECONDS: '1' }));
    const noCron = await start(testConfig(db.url, { ...storeEnv(store), ENABLE_CRON: 'false' }));
    try {
      const { jobs } = await app.scheduler.queryJobs({ name: 'deadline-sweep' });
      expect(jobs).toHaveLength(1);
      // Only the wake-ups of the deadline kinds: no sweeps.
      expect(Object.keys((noCron.scheduler as unknown as { definitions: object }).definitions).sort()).toEqual(
        ['deadline:auction-end', 'deadline:order-expiry', 'deadline:vip-expiry'],
      );
    } finally {
      await Promise.all([second.stop(), noCron.stop()]);
    }
  });
});

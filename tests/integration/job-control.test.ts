import type { EventEmitter } from 'node:events';
import type { App } from '../../src/app.js';
import { UnknownJob, type JobInfo } from '../../src/scheduling/job-control.js';
import { AUCTION_ENDED_EVENTS_SQL } from '../../bench/outbox-events.js';
import { AUCTION_FIELDS, createAuction, createTestDatabase, gql, inSeconds, LogCapture, sleep, start, testConfig, token, waitUntil } from '../support/harness.js';
import { createOrder, createProduct, credit, withDb } from '../support/orders.js';

/**
 * The operator's job controls (list, run, pause, resume) on two instances sharing one database,
 * checked by what an operator would notice: the jobs list, the runs each scheduler starts, and
 * the business rows the jobs settle. Periodic jobs run every second; orders expire after 3 s.
 */
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let a: App;
let b: App;
const logs = { a: new LogCapture(), b: new LogCapture() };
const seller = token('jobs-seller');
const viewer = token('jobs-viewer');

beforeAll(async () => {
  db = await createTestDatabase('job_control');
  const env = { DEADLINE_SWEEP_SECONDS: '1', OUTBOX_SWEEP_SECONDS: '1', ORDER_EXPIRE_MINUTES: '0.05' };
  const config = testConfig(db.url, env);
  // A variable of the deadline engine's earlier paths: A still starts, and says it is gone.
  const prefixes = { REDIS_PREFIX: config.redisPrefix, SECKILL_KEY_PREFIX: config.seckill.keyPrefix };
  a = await start(testConfig(db.url, { ...env, ...prefixes, DEADLINE_WATCH_GRACE_MS: '10000' }), logs.a);
  b = await start(config, logs.b);
});

test('a server given a removed variable starts, and names it once in a warning with why it went', () => {
  const warnings = logs.a.lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('DEADLINE_WATCH_GRACE_MS'));
  expect(warnings).toHaveLength(1);
  expect(warnings[0]).toMatchObject({ level: 40, msg: expect.stringMatching(/^DEADLINE_WATCH_GRACE_MS no longer exists: .+; remove it$/) });
  expect(logs.b.lines.filter((l) => String(l.msg).includes('no longer exists'))).toEqual([]);
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await db?.drop();
});

type AgendaJob = { attrs: { _id?: unknown; type?: string } };

interface Seen {
  on: 'A' | 'B';
  at: number;
  id: string;
  type: string;
}

/** Records every `<event>` both schedulers emit from now on (on which instance, the job's row id and type). */
function record(event: string) {
  const seen: Seen[] = [];
  const waiters: Array<() => void> = [];
  const off: Array<() => void> = [];
  for (const [on, app] of [['A', a], ['B', b]] as const) {
    // `fail:<name>` passes (error, job); the others pass (job).
    const listener = (...args: unknown[]) => {
      const job = args.find((x): x is AgendaJob => typeof x === 'object' && x !== null && 'attrs' in x)!;
      seen.push({ on, at: Date.now(), id: String(job.attrs._id), type: String(job.attrs.type) });
      for (const w of [...waiters]) w();
    };
    // Agenda types its event names; `event` is any of them.
    const scheduler = app.scheduler as unknown as EventEmitter;
    scheduler.on(event, listener);
    off.push(() => scheduler.off(event, listener));
  }
  return {
    seen,
    /** Resolves with the first recorded event that matches, waiting at most `timeoutMs`. */
    next(match: (s: Seen) => boolean, timeoutMs: number): Promise<Seen> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = seen.find(match);
          if (!hit) return false;
          clearTimeout(timer);
          waiters.splice(waiters.indexOf(check), 1);
          resolve(hit);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(check), 1);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for ${event}; saw ${JSON.stringify(seen)}`));
        }, timeoutMs);
        waiters.push(check);
        check();
      });
    },
    stop: () => off.forEach((f) => f()),
  };
}

const info = async (app: App, name: string): Promise<JobInfo> => {
  const job = (await app.services.jobs.list()).find((j) => j.name === name);
  if (!job) throw new Error(`${name} is not in the jobs list`);
  return job;
};

const auctionStatus = async (id: string) => {
  const res = await gql(a, `query($id: ID!) { auction(id: $id) { ${AUCTION_FIELDS} } }`, { id }, viewer);
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data!.auction as { status: string; endedAt: string | null };
};

const endedEvents = (auctionId: string) =>
  withDb(db.url, async (c) => {
    const { rows } = await c.query(`select count(*)::int as n from ${AUCTION_ENDED_EVENTS_SQL} e where auction_id = $1`, [auctionId]);
    return rows[0].n as number;
  });

test('list() names every job of the catalogue with its kind, schedule, last run and the armed wake-up', async () => {
  const expected = [
    ['deadline:auction-end', 'DEADLINE'],
    ['deadline:order-expiry', 'DEADLINE'],
    ['deadline:vip-expiry', 'DEADLINE'],
    ['deadline-sweep', 'PERIODIC'],
    ['outbox-sweep', 'PERIODIC'],
    ['payment-reconciliation', 'PERIODIC'],
    ['refund-reconciliation', 'PERIODIC'],
    ['vip-reminders', 'PERIODIC'],
  ];
  const fromA = await a.services.jobs.list();
  expect(fromA.map((j) => [j.name, j.kind])).toEqual(expected);
  for (const job of fromA) expect(job.schedule).toMatch(/\S/);
  expect(fromA.find((j) => j.name === 'deadline:auction-end')!.schedule).toMatch(/auction end/);
  expect(fromA.find((j) => j.name === 'deadline:order-expiry')!.schedule).toMatch(/order expiry/);
  expect(fromA.find((j) => j.name === 'deadline-sweep')!.schedule).toMatch(/\b1 s\b/);
  expect(fromA.find((j) => j.name === 'outbox-sweep')!.schedule).toMatch(/\b1 s\b/);
  expect(fromA.every((j) => j.disabled === false)).toBe(true);

  // Both sweeps have run to the end since the test began (on whichever instance), and succeeded. Read
  // from the jobs list itself: a run's end is written before Agenda's 'success' event, so a run that
  // ended just before `since` could send its event just after (41 ms so under load in CI).
  const since = Date.now();
  for (const name of ['deadline-sweep', 'outbox-sweep']) {
    await waitUntil(async () => ((await info(b, name)).lastFinishedAt?.getTime() ?? 0) >= since, 5_000, `a run of ${name} that ended after the test began`);
    const job = await info(b, name);
    expect(job.lastRunAt).toBeInstanceOf(Date);
    expect(job.lastError).toBeNull();
    expect(job.failCount).toBe(0);
    expect(job.nextRunAt).toBeInstanceOf(Date);
    expect(Math.abs(job.nextRunAt!.getTime() - Date.now())).toBeLessThan(5_000);
  }

  // A deadline kind's next run is its armed wake-up: the earliest pending auction end / order expiry.
  const later = await createAuction(a, seller, inSeconds(300));
  const sooner = await createAuction(b, seller, inSeconds(120));
  const product = await createProduct(a, { name: 'Jobs tea', price: 100 });
  const order = await createOrder(b, token('jobs-buyer'), { productId: product.id, paymentMethod: 'WECHAT' });
  const [armedAuction, armedOrder] = await Promise.all([info(a, 'deadline:auction-end'), info(b, 'deadline:order-expiry')]);
  expect(armedAuction.nextRunAt?.toISOString()).toBe(new Date(sooner.endTime).toISOString());
  expect(new Date(later.endTime).getTime()).toBeGreaterThan(armedAuction.nextRunAt!.getTime());
  expect(armedOrder.nextRunAt?.toISOString()).toBe(new Date(order.expiresAt!).toISOString());
  // The same on the other instance: one schedule, whoever armed it.
  expect((await info(b, 'deadline:auction-end')).nextRunAt?.toISOString()).toBe(new Date(sooner.endTime).toISOString());

  // The order's wake-up runs at its expiry (3 s) and is recorded like any run.
  await waitUntil(async () => (await info(a, 'deadline:order-expiry')).lastFinishedAt !== null, 8_000, 'the order-expiry wake-up to run');
  const expiry = await info(a, 'deadline:order-expiry');
  expect(expiry.lastRunAt!.getTime()).toBeGreaterThanOrEqual(new Date(order.expiresAt!).getTime() - 50);
  expect(expiry).toMatchObject({ lastError: null, failCount: 0, nextRunAt: null });
});

test('pause on A stops the periodic job on both instances; resume on B brings it back', async () => {
  const starts = record('start:deadline-sweep');
  try {
    const pausedAt = Date.now();
    const paused = await a.services.jobs.pause('deadline-sweep');
    expect(paused).toMatchObject({ name: 'deadline-sweep', disabled: true });

    // A run either scheduler had already taken (fetched up to JOB_PROCESS_EVERY_SECONDS = 1 s ahead)
    // may still start and finish; after that, nothing for three seconds, on either instance.
    const grace = pausedAt + 1_500;
    await sleep(grace + 3_000 - Date.now());
    expect(starts.seen.filter((s) => s.at > grace)).toEqual([]);
    const onB = await info(b, 'deadline-sweep');
    expect(onB.disabled).toBe(true);
    expect(onB.lastRunAt!.getTime()).toBeLessThanOrEqual(grace);
    expect(onB.lastFinishedAt!.getTime()).toBeLessThanOrEqual(grace);
    // The other jobs are not paused.
    expect((await b.services.jobs.list()).filter((j) => j.disabled).map((j) => j.name)).toEqual(['deadline-sweep']);
    // An instance starting meanwhile (a deploy) re-saves the periodic jobs: the pause survives it.
    const c = await start(testConfig(db.url, { DEADLINE_SWEEP_SECONDS: '1', OUTBOX_SWEEP_SECONDS: '1' }));
    const startsOnC: number[] = [];
    c.scheduler.on('start:deadline-sweep', () => startsOnC.push(Date.now()));
    try {
      await sleep(2_500);
      expect(startsOnC).toEqual([]);
      expect(starts.seen.filter((s) => s.at > grace)).toEqual([]);
      const row = await withDb(db.url, async (c) => (await c.query(`select disabled from agenda_jobs where name = 'deadline-sweep'`)).rows[0]);
      expect(row.disabled).toBe(true);
    } finally {
      await c.stop();
    }
    // At rest nothing is running (Agenda locks a job a scan before it is due; that is not running).
    expect((await b.services.jobs.list()).find((j) => j.name === 'deadline-sweep')!.running).toBe(false);

    const resumedAt = Date.now();
    const resumed = await b.services.jobs.resume('deadline-sweep');
    expect(resumed).toMatchObject({ name: 'deadline-sweep', disabled: false });
    await starts.next((s) => s.at >= resumedAt, 3_000);
    // A real run, not one skipped as paused (a skipped run records no end).
    await waitUntil(async () => ((await info(a, 'deadline-sweep')).lastFinishedAt?.getTime() ?? 0) >= resumedAt, 3_000, 'a recorded run');
    const onA = await info(a, 'deadline-sweep');
    expect(onA).toMatchObject({ disabled: false, lastError: null, failCount: 0 });
  } finally {
    starts.stop();
  }
});

test('a paused deadline kind ends nothing; resumed, the overdue auction ends at once, exactly once', async () => {
  const wakeups = record('start:deadline:auction-end');
  const sweepStarts = record('start:deadline-sweep');
  const sweeps = record('success:deadline-sweep');
  try {
    expect(await a.services.jobs.pause('deadline:auction-end')).toMatchObject({ disabled: true });
    const auction = await createAuction(b, seller, inSeconds(1.5));
    const endAt = new Date(auction.endTime).getTime();

    // Its wake-up comes (and is skipped), and a safety sweep starts after the end and finishes (and leaves it too).
    await wakeups.next(() => true, 5_000);
    const sweepStart = await sweepStarts.next((s) => s.at > endAt, 4_000);
    await sweeps.next((s) => s.at >= sweepStart.at, 4_000);
    expect(await auctionStatus(auction.id)).toMatchObject({ status: 'ACTIVE', endedAt: null });
    expect(await info(b, 'deadline:auction-end')).toMatchObject({ disabled: true });

    const resumedAt = Date.now();
    expect(await b.services.jobs.resume('deadline:auction-end')).toMatchObject({ disabled: false });
    await waitUntil(async () => (await auctionStatus(auction.id)).status === 'ENDED', 2_000, 'the overdue auction to end after resume');
    const endedWithin = Date.now() - resumedAt;
    expect(endedWithin).toBeLessThan(2_000);

    // Exactly once: one AUCTION_ENDED event and the end time unchanged, once the resumed wake-up and a later sweep had their chance.
    const { endedAt } = await auctionStatus(auction.id);
    const afterEnd = Date.now();
    await sweeps.next((s) => s.at > afterEnd + 1_000, 4_000);
    expect(await endedEvents(auction.id)).toBe(1);
    expect((await auctionStatus(auction.id)).endedAt).toBe(endedAt);
    // The kind is armed again, at the next pending end (the first test's auction, minutes away). Polled:
    // the instance that settled it re-arms after its commit, and the list may be read between the two.
    await waitUntil(async () => ((await info(a, 'deadline:auction-end')).nextRunAt?.getTime() ?? 0) > Date.now() + 60_000, 3_000, 'the kind armed at the next pending end');
  } finally {
    wakeups.stop();
    sweepStarts.stop();
    sweeps.stop();
  }
});

test('run() makes exactly one extra run on one instance, soon; an unknown name throws and changes nothing', async () => {
  const starts = record('start:outbox-sweep');
  try {
    const calledAt = Date.now();
    const result = await a.services.jobs.run('outbox-sweep');
    expect(result.name).toBe('outbox-sweep');
    // The scheduled runs are the one repeating ('single') row; the extra run is a one-off ('normal') row.
    const extra = await starts.next((s) => s.at >= calledAt && s.type !== 'single', 3_000);
    expect(extra.at - calledAt).toBeLessThan(2_000);
    // Both schedulers had time to pick it up again: it ran once, on one instance.
    await sleep(2_000);
    expect(starts.seen.filter((s) => s.id === extra.id)).toEqual([extra]);
    expect(starts.seen.filter((s) => s.at >= calledAt && s.type !== 'single')).toEqual([extra]);
    // The repeating schedule went on meanwhile.
    expect(starts.seen.filter((s) => s.type === 'single').length).toBeGreaterThanOrEqual(1);
    expect(await info(b, 'outbox-sweep')).toMatchObject({ lastError: null, failCount: 0, disabled: false });
  } finally {
    starts.stop();
  }

  for (const action of ['run', 'pause', 'resume', 'get'] as const) {
    await expect(b.services.jobs[action]('no-such-job')).rejects.toBeInstanceOf(UnknownJob);
  }
  await expect(a.services.jobs.run('deadline:')).rejects.toThrow('No job is named "deadline:"');
  // Nothing was recorded for the names that do not exist, and the list is unchanged.
  const rows = await withDb(db.url, async (c) => (await c.query(`select name from job_states where name not in ('deadline:auction-end', 'deadline:order-expiry', 'deadline:vip-expiry', 'deadline-sweep', 'outbox-sweep', 'payment-reconciliation', 'refund-reconciliation', 'vip-reminders')`)).rows);
  expect(rows).toEqual([]);
  expect((await a.services.jobs.list()).map((j) => j.name)).toEqual([
    'deadline:auction-end',
    'deadline:order-expiry',
    'deadline:vip-expiry',
    'deadline-sweep',
    'outbox-sweep',
    'payment-reconciliation',
    'refund-reconciliation',
    'vip-reminders',
  ]);
});

test('a failing run is recorded: lastError names the order, failCount counts the failures', async () => {
  const product = await createProduct(a, { name: 'Jobs coffee', price: 400 });
  await credit(a, 'jobs-broken', 1_000);
  const fails = record('fail:deadline:order-expiry');
  try {
    const order = await createOrder(b, token('jobs-broken'), { productId: product.id, paymentMethod: 'WALLET' });
    // Damage the wallet before the expiry (3 s): 400 frozen for the order, only 100 left.
    await withDb(db.url, (c) => c.query(`update wallets set frozen = 100 where user_id = 'jobs-broken'`));
    const expiresAt = new Date(order.expiresAt!).getTime();

    // The wake-up at the expiry fails (the sweep may too, when it meets the order first).
    const failed = await fails.next(() => true, 8_000);
    expect(failed.at).toBeGreaterThanOrEqual(expiresAt - 50);

    // A later run that skips the order while its retry is not yet due counts as a success and clears
    // the error (JobStates.finished), so the list is polled until it shows the failure, in one snapshot.
    let shown: JobInfo | undefined;
    await waitUntil(async () => {
      const j = await info(b, 'deadline:order-expiry');
      if (j.lastError?.includes(order.id)) shown = j;
      return shown !== undefined;
    }, 5_000, 'the failure in the jobs list');
    expect(shown!.lastError).toMatch(/could not be settled/);
    expect(shown!.lastError).toContain('the wallet of user jobs-broken holds 100 frozen cents, the order needs 400');
    expect(shown!.failCount).toBeGreaterThanOrEqual(1);
    expect(shown!.lastFinishedAt!.getTime()).toBeGreaterThanOrEqual(expiresAt - 50);
    expect(shown!.disabled).toBe(false);

    // The order itself is left as it was, still PENDING, for a person to repair.
    const [row] = await withDb(db.url, async (c) => (await c.query('select status from orders where id = $1', [order.id])).rows);
    expect(row.status).toBe('PENDING');
  } finally {
    fails.stop();
  }
});

/**
 * The deadline engine (src/scheduling/deadlines/) on its own: fake kinds (deadlines in memory), the
 * real `deadline_wakeups` table on this file's own PostgreSQL database, a clock the tests move, and a
 * fake scheduler that records the wake-up jobs the engine arms and cancels. A test "fires" a wake-up
 * job by calling `runWakeup` with its payload, as Agenda would. The timers (the mechanism) are tested
 * last, with several engines on one database as several instances, each with its LISTEN connection.
 */
import { pino } from 'pino';
import type { Clock } from '../../src/clock.js';
import { initOrm, migrate, type Orm } from '../../src/db/orm.js';
import { Transactions, type UnitOfWork } from '../../src/db/transactions.js';
import type { OutboxRelay } from '../../src/events/relay.js';
import type { Scheduler } from '../../src/scheduling/agenda.js';
import {
  Deadlines,
  UnsettledDeadlines,
  wakeJobName,
  type DeadlineKind,
  type DeadlinesOptions,
  type Settled,
  type WakeupPayload,
} from '../../src/scheduling/deadlines.js';
import { createTestDatabase, sleep, waitUntil } from '../support/harness.js';

/** No timers: the backstop's entry points only, driven by the tests. */
const OPTS: DeadlinesOptions = { batchSize: 2, timers: false };

/** "now" for the engine and for the transactions it opens; only the tests move it. */
class TestClock implements Clock {
  constructor(public t: number) {}
  now(): Date {
    return new Date(this.t);
  }
}

interface FakeDeadline {
  id: string;
  at: number;
  settled: boolean;
  /** Settling this one fails this many more times (its change "rolled back"), then succeeds. */
  failNextN: number;
}

/** A kind whose deadlines live in memory: the table-is-the-queue contract without a table. */
class FakeKind implements DeadlineKind {
  readonly label: string;
  readonly items: FakeDeadline[] = [];
  lanes?: number;
  /** How long each batch's transaction stays open after taking its deadlines (a slow statement). */
  holdMs = 0;
  /** Batches being settled right now, the most at once, and the batches taken so far. */
  inFlight = 0;
  maxInFlight = 0;
  batches: string[][] = [];
  /** Called in each batch's transaction once it has taken its deadlines (a test moves the clock or stops an engine). */
  onSettle?: () => void;
  constructor(readonly name: string) {
    this.label = `fake ${name}`;
  }

  add(id: string, at: number, failNextN = 0): FakeDeadline {
    const d = { id, at, settled: false, failNextN };
    this.items.push(d);
    return d;
  }

  get(id: string): FakeDeadline {
    return this.items.find((d) => d.id === id)!;
  }

  settledIds(): string[] {
    return this.items.filter((d) => d.settled).map((d) => d.id).sort();
  }

  nextDeadline(_em: unknown, skip: readonly string[]): Promise<Date | null> {
    const pending = this.items.filter((d) => !d.settled && !skip.includes(d.id)).sort((a, b) => a.at - b.at);
    return Promise.resolve(pending.length === 0 ? null : new Date(pending[0].at));
  }

  countPending(): Promise<number> {
    return Promise.resolve(this.items.filter((d) => !d.settled).length);
  }

  async settleDue(uow: UnitOfWork, limit: number, skip: readonly string[]): Promise<Settled> {
    const due = this.items
      .filter((d) => !d.settled && !skip.includes(d.id) && d.at <= uow.now.getTime())
      .sort((a, b) => a.at - b.at)
      .slice(0, limit);
    const result: Settled = { settled: [], failed: [] };
    for (const d of due) {
      if (d.failNextN > 0) {
        d.failNextN--;
        result.failed.push({ id: d.id, reason: 'injected failure' });
      } else {
        d.settled = true;
        result.settled.push(d.id);
      }
    }
    result.dueAt = due.filter((d) => d.settled && result.settled.includes(d.id)).map((d) => new Date(d.at));
    this.batches.push(due.map((d) => d.id));
    this.onSettle?.();
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    if (this.holdMs > 0) await sleep(this.holdMs);
    this.inFlight--;
    return result;
  }
}

interface WakeupRecord {
  at: Date;
  name: string;
  data: WakeupPayload;
  cancelled: boolean;
  /** Fired by the test (a one-shot Agenda job is removed once it ran). */
  ran: boolean;
  /** Gone without running (deleted from the store, or its instance died holding it). */
  lost: boolean;
}

/** Records the wake-ups Deadlines schedules and cancels: only the two Agenda calls it makes. */
class FakeScheduler {
  readonly wakeups: WakeupRecord[] = [];

  schedule(at: Date, name: string, data: WakeupPayload): Promise<WakeupRecord> {
    const rec = { at: new Date(at), name, data: { ...data }, cancelled: false, ran: false, lost: false };
    this.wakeups.push(rec);
    return Promise.resolve(rec);
  }

  /** Like Agenda's backends: the name matches and `data` is contained in the job's data. */
  cancel(opts: { name?: string; data?: Record<string, unknown> }): Promise<number> {
    let n = 0;
    for (const w of this.wakeups) {
      if (w.cancelled || w.ran || w.lost) continue;
      if (opts.name !== undefined && w.name !== opts.name) continue;
      const data = w.data as unknown as Record<string, unknown>;
      if (opts.data && !Object.entries(opts.data).every(([k, v]) => data[k] === v)) continue;
      w.cancelled = true;
      n++;
    }
    return Promise.resolve(n);
  }

  live(kind: string): WakeupRecord[] {
    return this.wakeups.filter((w) => w.name === wakeJobName(kind) && !w.cancelled && !w.ran && !w.lost);
  }

  /** The kind's one live wake-up (fails the test if there is not exactly one). */
  only(kind: string): WakeupRecord {
    const live = this.live(kind);
    expect(live.map((w) => w.at.toISOString())).toHaveLength(1);
    return live[0];
  }
}

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let orm: Orm;
const log = pino({ level: 'silent' });
// The fake kinds write no events: a relay that publishes nothing is all Transactions needs.
const relay = { publish: async () => {} } as unknown as OutboxRelay;

beforeAll(async () => {
  db = await createTestDatabase('deadline_engine');
  orm = await initOrm(db.url);
  await migrate(orm, db.url);
});
afterAll(async () => {
  await orm?.close(true);
  await db?.drop();
});

let seq = 0;
/** A fresh engine with its own kinds (unique names: the wake-up rows of other tests stay apart). */
function setup(kindCount = 1, opts: Partial<DeadlinesOptions> = {}) {
  const clock = new TestClock(Math.floor(Date.now() / 1000) * 1000);
  const scheduler = new FakeScheduler();
  const tx = new Transactions(orm, relay, clock, log);
  // Deadlines calls only schedule() and cancel() on its Scheduler (an Agenda); the fake records them.
  const deadlines = new Deadlines(orm, tx, scheduler as unknown as Scheduler, clock, log, { ...OPTS, ...opts });
  const run = ++seq;
  const kinds = Array.from({ length: kindCount }, (_, i) => new FakeKind(`fake-${run}-${i}`));
  for (const k of kinds) deadlines.register(k);
  const T = clock.t;
  const armedAt = async (kind: FakeKind) => (await deadlines.armed()).find((a) => a.kind === kind.name)!.wakeAt?.getTime() ?? null;
  /** Runs the kind's one live wake-up as Agenda would (it is done once it ran, whatever the outcome). */
  const fire = (kind: FakeKind) => {
    const w = scheduler.only(kind.name);
    w.ran = true;
    return deadlines.runWakeup(w.data);
  };
  return { clock, scheduler, deadlines, kinds, T, armedAt, fire };
}

test('twenty arms racing leave one wake-up armed, at the earliest of their times', async () => {
  const { deadlines, scheduler, kinds: [kind], T, armedAt } = setup();
  // Distinct times, latest first in call order, so most arms replace the one before them.
  const times = Array.from({ length: 20 }, (_, i) => T + 60_000 - i * 1000 + (i % 3) * 137);
  for (const [i, at] of times.entries()) kind.add(`d${i}`, at);
  const earliest = Math.min(...times);

  await Promise.all(times.map((at) => deadlines.arm(kind.name, new Date(at))));

  expect(await armedAt(kind)).toBe(earliest);
  const live = scheduler.live(kind.name);
  expect(live.map((w) => w.at.getTime())).toEqual([earliest]);
  // The row names the live wake-up's arm, so a replaced one can be told apart and cancelled.
  const [row] = await orm.em.fork().execute<Array<{ arm_id: string }>>('select arm_id from deadline_wakeups where kind = ?', [kind.name]);
  expect(row.arm_id).toBe(live[0].data.armId);
});

test('a deadline that fails is retried after 1 s, then 2 s, while the rest of its batch settles at once', async () => {
  const { clock, deadlines, scheduler, kinds: [kind], T, armedAt, fire } = setup();
  kind.add('x', T - 300, 2); // fails twice, then settles
  kind.add('a', T - 200);
  kind.add('b', T - 100);
  await deadlines.arm(kind.name, new Date(T - 300));

  // First wake: batch 1 is [x fails, a], batch 2 is [b].
  await expect(fire(kind)).rejects.toThrow(UnsettledDeadlines);
  expect(kind.settledIds()).toEqual(['a', 'b']);
  expect(kind.get('x').settled).toBe(false);
  expect(await armedAt(kind)).toBe(T + 1000);
  expect(scheduler.only(kind.name).at.getTime()).toBe(T + 1000);

  // Woken before the retry is due (a sweep, or a wake-up for another deadline): x is not tried, and
  // the run still reports it unsettled (so the job's last error stays until x settles).
  clock.t = T + 999;
  await expect(deadlines.sweep()).rejects.toThrow(/x \(injected failure \(next try/);
  expect(kind.get('x')).toMatchObject({ settled: false, failNextN: 1 });
  expect(await armedAt(kind)).toBe(T + 1000);

  // Retry 1 at +1 s fails again: the next is 2 s later.
  clock.t = T + 1000;
  await expect(fire(kind)).rejects.toThrow(/1 fake-\d+-0 deadline\(s\) could not be settled: x \(injected failure\)/);
  expect(kind.get('x').settled).toBe(false);
  expect(await armedAt(kind)).toBe(T + 3000);
  expect(scheduler.only(kind.name).at.getTime()).toBe(T + 3000);
  clock.t = T + 2999;
  await expect(deadlines.sweep()).rejects.toThrow(/x \(injected failure \(next try/);
  expect(kind.get('x')).toMatchObject({ settled: false, failNextN: 0 });

  // Retry 2 at +3 s succeeds; nothing is left, so nothing is armed.
  clock.t = T + 3000;
  await expect(fire(kind)).resolves.toBeUndefined();
  expect(kind.settledIds()).toEqual(['a', 'b', 'x']);
  expect(await armedAt(kind)).toBeNull();
  expect(scheduler.live(kind.name)).toEqual([]);
});

test('two lanes settle a backlog at once, each deadline once; a failure seen by both counts as one attempt; one due deadline is one batch', async () => {
  const { deadlines, kinds: [kind], T } = setup();
  kind.lanes = 2;
  kind.holdMs = 100;
  // One due deadline: the second lane never starts (its batch came back short).
  kind.add('only', T - 600);
  expect(await deadlines.wake(kind.name)).toEqual({ settled: 1, failed: [] });
  expect(kind.batches).toEqual([['only']]);

  // Batch 2: [a, b] is full, so the second lane starts; both take batches at once. x fails every time:
  // whichever lane takes it first, the other (which read its skip list before that failure was
  // recorded) may take it again, and the run still counts one attempt, retried 1 s later.
  kind.batches = [];
  for (const [id, ago] of [['a', 500], ['b', 400], ['c', 300], ['x', 200], ['d', 100]] as const) kind.add(id, T - ago, id === 'x' ? 10 : 0);
  const result = await deadlines.wake(kind.name);
  expect(result.settled).toBe(4);
  expect(result.failed).toEqual([{ id: 'x', reason: 'injected failure' }]);
  expect(kind.settledIds()).toEqual(['a', 'b', 'c', 'd', 'only']);
  expect(kind.maxInFlight).toBe(2);
  expect(kind.batches.flat().filter((id) => id !== 'x').sort()).toEqual(['a', 'b', 'c', 'd']);
  expect((await deadlines.armed()).find((a) => a.kind === kind.name)!.wakeAt?.getTime()).toBe(T + 1000);
});

test('the sweep settles what is due for every kind and re-arms each; an earlier deadline re-arms earlier; nothing pending clears the row', async () => {
  const { clock, deadlines, scheduler, kinds: [a, b], T, armedAt } = setup(2);
  a.add('a1', T - 1000);
  a.add('a2', T - 500);
  a.add('a3', T - 100); // three due with batchSize 2: two batches
  a.add('a4', T + 2000);
  b.add('b1', T - 10);
  b.add('b2', T + 3000);

  await expect(deadlines.sweep()).resolves.toBe(4);
  expect(a.settledIds()).toEqual(['a1', 'a2', 'a3']);
  expect(b.settledIds()).toEqual(['b1']);
  expect(await armedAt(a)).toBe(T + 2000);
  expect(await armedAt(b)).toBe(T + 3000);
  expect(scheduler.only(a.name).at.getTime()).toBe(T + 2000);
  expect(scheduler.only(b.name).at.getTime()).toBe(T + 3000);

  // a4 moved earlier: the service arms the new time; the later wake-up is replaced, not kept too.
  a.get('a4').at = T + 1000;
  await deadlines.arm(a.name, new Date(T + 1000));
  expect(await armedAt(a)).toBe(T + 1000);
  expect(scheduler.only(a.name).at.getTime()).toBe(T + 1000);

  // Everything due: the sweep settles the rest, and with nothing pending the rows are cleared.
  clock.t = T + 3000;
  await expect(deadlines.sweep()).resolves.toBe(2);
  expect(a.settledIds()).toEqual(['a1', 'a2', 'a3', 'a4']);
  expect(b.settledIds()).toEqual(['b1', 'b2']);
  expect(await deadlines.armed()).toEqual([
    { kind: a.name, wakeAt: null },
    { kind: b.name, wakeAt: null },
  ]);
  const rows = await orm.em
    .fork()
    .execute<Array<{ kind: string; wake_at: unknown; arm_id: unknown }>>('select kind, wake_at, arm_id from deadline_wakeups where kind in (?, ?) order by kind', [a.name, b.name]);
  expect(rows).toEqual([
    { kind: a.name, wake_at: null, arm_id: null },
    { kind: b.name, wake_at: null, arm_id: null },
  ]);
  // No wake-up job ahead: a4's (T + 1000, overdue) is left to run and find nothing, as one being run would.
  expect(scheduler.live(a.name).filter((w) => w.at.getTime() > clock.t)).toEqual([]);
  expect(scheduler.live(b.name).filter((w) => w.at.getTime() > clock.t)).toEqual([]);
});

test('never early: a wake-up run before its deadline settles nothing and re-arms at the deadline', async () => {
  const { clock, deadlines, scheduler, kinds: [kind], T, armedAt, fire } = setup();
  kind.add('d', T + 1000);
  await deadlines.arm(kind.name, new Date(T + 1000));

  clock.t = T + 999;
  await expect(fire(kind)).resolves.toBeUndefined();
  expect(kind.get('d').settled).toBe(false);
  expect(await armedAt(kind)).toBe(T + 1000);
  expect(scheduler.only(kind.name).at.getTime()).toBe(T + 1000);

  clock.t = T + 1000;
  await expect(fire(kind)).resolves.toBeUndefined();
  expect(kind.get('d').settled).toBe(true);
  expect(await armedAt(kind)).toBeNull();
  expect(scheduler.live(kind.name)).toEqual([]);
});



test('one run per kind at a time: calls during a run get one more run after it, shared, never a second beside it', async () => {
  const { deadlines, kinds: [kind], T } = setup();
  kind.holdMs = 100;
  kind.add('d', T - 10);
  const first = deadlines.settleDue(kind.name, 'timer');
  const [second, third] = [deadlines.settleDue(kind.name, 'wake-up'), deadlines.settleDue(kind.name, 'sweep')];
  expect(await first).toEqual({ settled: 1, failed: [] });
  // Each later call gets the one run after it (nothing left), told what the run it waited behind settled.
  expect(await Promise.all([second, third])).toEqual([{ settled: 0, failed: [], settledAhead: 1 }, { settled: 0, failed: [], settledAhead: 1 }]);
  expect(kind.maxInFlight).toBe(1);
  expect(kind.batches).toEqual([['d'], []]); // two runs, one after the other
});

test('an instance without timers arms anew a deadline that came due during its run: a wake-up job at it, not the sweep', async () => {
  const { clock, deadlines, scheduler, kinds: [kind], T, armedAt, fire } = setup();
  kind.add('a', T);
  kind.add('b', T + 50);
  await deadlines.arm(kind.name, new Date(T));
  // b comes due while a's batch is being written; no timer here runs again (DEADLINE_TIMERS=false).
  kind.onSettle = () => void (clock.t = T + 100);
  await fire(kind);
  kind.onSettle = undefined;
  expect(kind.settledIds()).toEqual(['a']);
  expect(await armedAt(kind)).toBe(T + 50);
  expect(scheduler.only(kind.name).at.getTime()).toBe(T + 50);
  await fire(kind);
  expect(kind.settledIds()).toEqual(['a', 'b']);
});

// ---------------------------------------------------------------------------------------------------
// The timers: every instance's own, at each kind's armed time.
// ---------------------------------------------------------------------------------------------------

/** The real time, unless a test holds it still: a timer set by it then fires early by this clock. */
class LiveClock implements Clock {
  held: number | null = null;
  now(): Date {
    return new Date(this.held ?? Date.now());
  }
}

/**
 * `n` engines on this file's database, as `n` instances with their timers on (each its own LISTEN
 * connection), sharing one kind (one table) and one job store. `settledBy` lists, per deadline
 * settled, which instance settled it and how late (ms) by the real clock.
 */
async function instances(n: number) {
  const clock = new LiveClock();
  const scheduler = new FakeScheduler();
  const kind = new FakeKind(`timed-${++seq}`);
  const settledBy: Array<{ on: number; lateMs: number }> = [];
  const engines: Deadlines[] = [];
  for (let i = 0; i < n; i++) {
    const tx = new Transactions(orm, relay, clock, log);
    const engine = new Deadlines(orm, tx, scheduler as unknown as Scheduler, clock, log, { batchSize: 10, databaseUrl: db.url });
    engine.register(kind);
    engine.onSettled = (_kind, lateness) => settledBy.push(...lateness.map((lateMs) => ({ on: i, lateMs })));
    await engine.start();
    engines.push(engine);
  }
  const stopAll = () => Promise.all(engines.map((e) => e.stop()));
  return { clock, scheduler, kind, engines, settledBy, stopAll };
}

const setPaused = (kind: FakeKind, paused: boolean) =>
  orm.em
    .fork()
    .execute(`insert into job_states (name, paused) values (?, ?) on conflict (name) do update set paused = excluded.paused`, [wakeJobName(kind.name), paused]);

test('every instance keeps a timer at the armed time: deadlines armed on one are settled at their times, each once, never early', async () => {
  const { kind, engines: [a], settledBy, scheduler, stopAll } = await instances(2);
  try {
    const start = Date.now();
    for (const [id, at] of [['t1', 300], ['t2', 450], ['t3', 600]] as const) {
      kind.add(id, start + at);
      await a.arm(kind.name, new Date(start + at));
    }
    await waitUntil(() => settledBy.length === 3, 5_000, 'the three deadlines to be settled (committed)');
    expect(kind.settledIds()).toEqual(['t1', 't2', 't3']);
    expect(settledBy).toHaveLength(3); // once each, by whichever instance took it
    for (const { lateMs } of settledBy) {
      expect(lateMs).toBeGreaterThanOrEqual(0);
      expect(lateMs).toBeLessThan(1_000); // a few ms measured; generous for a loaded machine
    }
    // Each settle re-armed at the next deadline, and the last cleared the row: no wake-up job left but run ones.
    await waitUntil(() => scheduler.live(kind.name).every((w) => w.at.getTime() <= Date.now()), 2_000, 'no wake-up job ahead');
  } finally {
    await stopAll();
  }
});

test('an instance that stops before the armed time leaves its deadline to the others\' timers: settled at its time, once', async () => {
  const { kind, engines: [a], settledBy, stopAll } = await instances(3);
  try {
    const due = Date.now() + 400;
    kind.add('orphan', due);
    await a.arm(kind.name, new Date(due));
    await a.stop(); // as SIGTERM's first step; a SIGKILL leaves nothing running either
    await waitUntil(() => settledBy.length > 0, 5_000, 'another instance to settle it (committed)');
    expect(kind.get('orphan').settled).toBe(true);
    expect(settledBy).toHaveLength(1);
    expect(settledBy[0].on).not.toBe(0);
    expect(settledBy[0].lateMs).toBeGreaterThanOrEqual(0);
    expect(settledBy[0].lateMs).toBeLessThan(1_000);
  } finally {
    await stopAll();
  }
});

test('an instance stopped during its run tells the others of a deadline that came due meanwhile: armed anew at it, with a wake-up job', async () => {
  const { kind, engines: [a], scheduler, settledBy, stopAll } = await instances(1);
  try {
    const due = Date.now() + 300;
    kind.add('first', due);
    kind.add('meanwhile', due + 30);
    kind.holdMs = 100; // the first batch's transaction is still open when 'meanwhile' comes due
    kind.onSettle = () => {
      kind.onSettle = undefined;
      void a.stop(); // SIGTERM's first step, while the run is under way
    };
    await a.arm(kind.name, new Date(due));
    await waitUntil(() => settledBy.length === 1, 5_000, 'the first deadline to be settled (committed)');
    await a.stop();
    expect(kind.settledIds()).toEqual(['first']);
    // Armed at 'meanwhile' (which every instance's timer hears at once), and a wake-up job saved for it.
    const [row] = await orm.em.fork().execute<Array<{ wake_at: Date }>>('select wake_at from deadline_wakeups where kind = ?', [kind.name]);
    expect(new Date(row.wake_at).getTime()).toBe(due + 30);
    expect(scheduler.live(kind.name).map((w) => w.at.getTime())).toContain(due + 30);
  } finally {
    await stopAll();
  }
});

test('a timer that fires early by the clock waits out the rest: nothing is settled before its time', async () => {
  const { clock, kind, engines: [a], stopAll } = await instances(1);
  try {
    clock.held = Date.now();
    const due = clock.held + 150;
    kind.add('early', due);
    await a.arm(kind.name, new Date(due));
    // The timer fires at +150 ms by the real clock, and again after, while this clock still says +0.
    await sleep(400);
    expect(kind.get('early').settled).toBe(false);
    clock.held = due;
    await waitUntil(() => kind.get('early').settled, 2_000, 'the deadline to be settled once its time came');
    expect(kind.batches.flat()).toEqual(['early']);
  } finally {
    clock.held = null;
    await stopAll();
  }
});

test('an admin\'s pause is obeyed by every instance\'s timer; resumed, the overdue deadline is settled at once, once', async () => {
  const { kind, engines: [a, b], settledBy, stopAll } = await instances(2);
  try {
    await setPaused(kind, true);
    await a.announce(kind.name);
    const due = Date.now() + 200;
    kind.add('paused', due);
    await b.arm(kind.name, new Date(due)); // its notification has every instance read the row and the pause
    await sleep(due + 500 - Date.now());
    expect(kind.get('paused').settled).toBe(false);

    await setPaused(kind, false);
    const resumedAt = Date.now();
    await a.announce(kind.name);
    await waitUntil(() => settledBy.length > 0, 3_000, 'the resumed kind to settle (committed)');
    expect(kind.get('paused').settled).toBe(true);
    expect(Date.now() - resumedAt).toBeLessThan(3_000);
    expect(settledBy).toHaveLength(1);
  } finally {
    await stopAll();
  }
});

test('a LISTEN connection lost is made again and every kind read: a deadline armed meanwhile elsewhere is settled at its time', async () => {
  const { kind, engines: [a], settledBy, stopAll } = await instances(2);
  try {
    // Every instance's LISTEN connection cut, as a failover of PostgreSQL's proxy would.
    const rows = await orm.em
      .fork()
      .execute<Array<{ cut: boolean }>>(`select pg_terminate_backend(pid) as cut from pg_stat_activity where datname = current_database() and query = 'listen deadline_wakeups'`);
    expect(rows.filter((r) => r.cut)).toHaveLength(2);
    const due = Date.now() + 600;
    kind.add('unheard', due);
    await a.arm(kind.name, new Date(due)); // its notification may reach nobody
    await a.stop();
    await waitUntil(() => settledBy.length > 0, 5_000, 'the other instance to settle it (committed)');
    expect(settledBy).toEqual([{ on: 1, lateMs: expect.any(Number) }]);
    expect(settledBy[0].lateMs).toBeGreaterThanOrEqual(0);
    expect(settledBy[0].lateMs).toBeLessThan(1_000);
  } finally {
    await stopAll();
  }
});

test('a deadline beyond setTimeout\'s range (a 30-day membership) gets a timer that reads its row again, not one that fires at once', async () => {
  const { kind, engines: [a], stopAll } = await instances(1);
  const warnings: string[] = [];
  const onWarning = (w: Error) => void warnings.push(w.name);
  process.on('warning', onWarning);
  try {
    const due = Date.now() + 30 * 24 * 3600 * 1000;
    kind.add('far', due);
    await a.arm(kind.name, new Date(due));
    await sleep(300);
    expect(kind.batches).toEqual([]);
    expect(warnings).toEqual([]);
  } finally {
    process.off('warning', onWarning);
    await stopAll();
  }
});

/**
 * The deadline engine (src/scheduling/deadlines.ts) on its own: fake kinds (deadlines in memory), the
 * real `deadline_wakeups` table on this file's own PostgreSQL database, a clock the tests move, and a
 * fake scheduler that records the wake-ups the engine arms and cancels. A test "fires" a wake-up by
 * calling `runWakeup` with its payload, as the Agenda job would.
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
import { createTestDatabase } from '../support/harness.js';

const OPTS: DeadlinesOptions = { batchSize: 2, staleMs: 500, lockLifetimeMs: 4000, inlineWindowMs: 0, handoverMs: 2000 };

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

  async nextDeadline(_em: unknown, skip: readonly string[]): Promise<Date | null> {
    const pending = this.items.filter((d) => !d.settled && !skip.includes(d.id)).sort((a, b) => a.at - b.at);
    return pending.length === 0 ? null : new Date(pending[0].at);
  }

  async countPending(): Promise<number> {
    return this.items.filter((d) => !d.settled).length;
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
    this.batches.push(due.map((d) => d.id));
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    if (this.holdMs > 0) await new Promise((r) => setTimeout(r, this.holdMs));
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
  /** Gone without running (its instance died holding it): what `staleMs` is for. */
  lost: boolean;
}

/** Records the wake-ups Deadlines schedules and cancels: only the two Agenda calls it makes. */
class FakeScheduler {
  readonly wakeups: WakeupRecord[] = [];

  async schedule(at: Date, name: string, data: WakeupPayload): Promise<WakeupRecord> {
    const rec = { at: new Date(at), name, data: { ...data }, cancelled: false, ran: false, lost: false };
    this.wakeups.push(rec);
    return rec;
  }

  /** Like Agenda's backends: the name matches and `data` is contained in the job's data. */
  async cancel(opts: { name?: string; data?: Record<string, unknown> }): Promise<number> {
    let n = 0;
    for (const w of this.wakeups) {
      if (w.cancelled || w.ran || w.lost) continue;
      if (opts.name !== undefined && w.name !== opts.name) continue;
      const data = w.data as unknown as Record<string, unknown>;
      if (opts.data && !Object.entries(opts.data).every(([k, v]) => data[k] === v)) continue;
      w.cancelled = true;
      n++;
    }
    return n;
  }

  /** Agenda's `now`: a job due at once; the test decides when it runs (`onNow`). */
  onNow: (data: WakeupPayload) => unknown = () => undefined;
  async now(name: string, data: WakeupPayload): Promise<WakeupRecord> {
    const rec = { at: new Date(), name, data: { ...data }, cancelled: false, ran: true, lost: false };
    this.wakeups.push(rec);
    this.onNow(rec.data);
    return rec;
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
  // The row names the live wake-up's arm, so its run is the one that may wait inline and re-arm.
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

test('a wake-up overdue by more than staleMs (lost) is replaced by the next arm, even a later one', async () => {
  const { clock, deadlines, scheduler, kinds: [kind], T, armedAt, fire } = setup();
  const first = kind.add('paid', T + 100);
  await deadlines.arm(kind.name, new Date(T + 100));
  expect(await armedAt(kind)).toBe(T + 100);
  kind.add('later', T + 5000);

  // Overdue by 400 ms (< staleMs): presumably running, and it re-arms itself; a later arm leaves it.
  clock.t = T + 500;
  await deadlines.arm(kind.name, new Date(T + 5000));
  expect(await armedAt(kind)).toBe(T + 100);
  expect(scheduler.live(kind.name).map((w) => w.at.getTime())).toEqual([T + 100]);

  // The instance holding it died: the wake-up is lost. Its deadline went meanwhile (the order was paid).
  scheduler.only(kind.name).lost = true;
  first.settled = true;

  // Overdue by 600 ms (> staleMs): the later arm replaces it, so 'later' has a wake-up at all.
  clock.t = T + 700;
  await deadlines.arm(kind.name, new Date(T + 5000));
  expect(await armedAt(kind)).toBe(T + 5000);
  const replacement = scheduler.only(kind.name);
  expect(replacement.at.getTime()).toBe(T + 5000);
  const [row] = await orm.em.fork().execute<Array<{ arm_id: string }>>('select arm_id from deadline_wakeups where kind = ?', [kind.name]);
  expect(row.arm_id).toBe(replacement.data.armId);

  clock.t = T + 5000;
  await fire(kind);
  expect(kind.get('later').settled).toBe(true);
  expect(await armedAt(kind)).toBeNull();
});

// A lost wake-up's own deadline, still pending and overdue, must not wait for a later arm's time
// (or the sweep): the armed wake-up is never later than the earliest pending deadline.
test('a lost wake-up replaced by a later arm does not strand its own pending deadline', async () => {
  const { clock, deadlines, scheduler, kinds: [kind], T, armedAt, fire } = setup();
  kind.add('stranded', T + 100);
  await deadlines.arm(kind.name, new Date(T + 100));
  scheduler.only(kind.name).lost = true;
  kind.add('later', T + 5000);

  clock.t = T + 700; // the lost wake-up is 600 ms overdue (> staleMs)
  await deadlines.arm(kind.name, new Date(T + 5000));
  // Still no later than the earliest pending deadline (T + 100, overdue): one wake-up, due now.
  expect(await armedAt(kind)).toBeLessThanOrEqual(T + 700);
  expect(scheduler.only(kind.name).at.getTime()).toBeLessThanOrEqual(T + 700);
  await fire(kind);
  expect(kind.get('stranded').settled).toBe(true);
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
  expect(scheduler.live(a.name)).toEqual([]);
  expect(scheduler.live(b.name)).toEqual([]);
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


test('the watch settles a deadline whose wake-up died with its instance, once it is overdue by the grace, never before', async () => {
  const { clock, deadlines, scheduler, kinds: [kind], T } = setup();
  kind.add('d', T + 1000);
  await deadlines.arm(kind.name, new Date(T + 1000));
  // The instance holding that wake-up is SIGKILLed: its Agenda job stays locked and never runs.
  scheduler.only(kind.name).lost = true;
  const paused: string[] = [];
  deadlines.watch(20, 400, async () => paused);
  try {
    clock.t = T + 1000 + 399; // due, but within the grace a live wake-up is given
    await new Promise((r) => setTimeout(r, 150));
    expect(kind.get('d').settled).toBe(false);

    kind.add('p', T + 1500);
    paused.push(wakeJobName(kind.name));
    clock.t = T + 2500; // overdue, but an admin paused the kind: the watch obeys
    await new Promise((r) => setTimeout(r, 150));
    expect(kind.settledIds()).toEqual([]);

    paused.length = 0;
    await new Promise((r) => setTimeout(r, 150));
    expect(kind.settledIds()).toEqual(['d', 'p']);
  } finally {
    deadlines.stop();
  }
});

test('taking over from a stopping instance: the deadlines after the next are settled on this timer too, for handoverMs', async () => {
  const { clock, deadlines, scheduler, kinds: [kind] } = setup();
  const start = Date.now();
  clock.t = start;
  // Three deadlines 150 ms apart, and one past the hand-over window (2 s here).
  for (const [id, at] of [['h1', 150], ['h2', 300], ['h3', 450], ['late', 3_000]] as const) kind.add(id, start + at);
  await deadlines.arm(kind.name, new Date(start + 150));
  // No wake-up runs here (this fake scheduler runs none by itself): only the take-over settles.
  scheduler.only(kind.name).lost = true;
  const tick = setInterval(() => (clock.t = Date.now()), 5);
  try {
    await deadlines.takeOver();
    await new Promise((r) => setTimeout(r, 100));
    expect(kind.settledIds()).toEqual([]); // none before it is due
    for (const end = Date.now() + 2_000; !kind.get('h3').settled && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
    expect(kind.settledIds()).toEqual(['h1', 'h2', 'h3']);
    expect(kind.get('late').settled).toBe(false); // beyond the window: Agenda's, or the watch's
  } finally {
    clearInterval(tick);
    deadlines.stop();
  }
});

test('taking over from a stopping instance: each kind\'s next deadline is settled when due, not before', async () => {
  const { clock, deadlines, kinds: [kind], T } = setup();
  clock.t = Date.now(); // the take-over waits in real time
  const due = clock.t + 300;
  kind.add('next', due);
  await deadlines.arm(kind.name, new Date(due));
  await deadlines.takeOver();
  clock.t = due - 1;
  await new Promise((r) => setTimeout(r, 150));
  expect(kind.get('next').settled).toBe(false);
  clock.t = due;
  await new Promise((r) => setTimeout(r, 300));
  expect(kind.get('next').settled).toBe(true);
  expect(T).toBeLessThanOrEqual(due);
  deadlines.stop();
});

test('a wake-up not started 2 ms after its time is nudged (every Agenda told it is due), before the backstop saves a job; a timer early by the clock waits; a started one is not', async () => {
  const nudged: string[] = [];
  const { clock, deadlines, scheduler, kinds: [kind], T } = setup(1, { armBackstopMs: 400, nudge: async (name) => void nudged.push(name) });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const nows: WakeupPayload[] = [];
  scheduler.onNow = (data) => void nows.push(data);
  try {
    kind.add('missed', T + 200);
    await deadlines.arm(kind.name, new Date(T + 200));
    const armedAt = Date.now();
    // The nudge's timer fires at T + 202 by the real clock, while the server's clock still says
    // T + 150 (a timer can fire early): it waits until the clock says it is time.
    clock.t = T + 150;
    await sleep(260 - (Date.now() - armedAt));
    expect(nudged).toEqual([]);
    clock.t = T + 202;
    for (let waited = 0; nudged.length === 0 && waited < 2_000; waited += 20) await sleep(20);
    expect(nudged).toEqual([wakeJobName(kind.name)]);
    expect(nows).toEqual([]); // the backstop's own job comes later, if the nudge did not help

    kind.add('started', T + 500);
    await deadlines.arm(kind.name, new Date(T + 500));
    clock.t = T + 502;
    deadlines.noteJobStart(wakeJobName(kind.name));
    await sleep(400);
    expect(nudged).toHaveLength(1);
  } finally {
    deadlines.stop();
  }
});

test('a wake-up that does not start on time is run (a job due now) by the instance that armed it, armBackstopMs after; one that started is left alone', async () => {
  const { clock, deadlines, scheduler, kinds: [kind], T } = setup(1, { armBackstopMs: 100 });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const nows: WakeupPayload[] = [];
  // As Agenda would: the job saved due now starts at once.
  scheduler.onNow = (data) => {
    nows.push(data);
    void deadlines.runWakeup(data);
  };
  try {
    kind.add('missed', T + 200);
    await deadlines.arm(kind.name, new Date(T + 200));
    const armedAt = Date.now();
    clock.t = T + 200; // due; its Agenda job stays queued and never starts (its timer fired early)
    await sleep(200 - (Date.now() - armedAt)); // 200 ms after the arm: within the grace
    expect(kind.get('missed').settled).toBe(false);
    await sleep(250);
    expect(kind.get('missed').settled).toBe(true);
    expect(nows).toEqual([{ kind: kind.name }]);

    // The next arm's wake-up starts (here or, as Agenda's notifications tell, elsewhere): nothing more.
    kind.add('started', T + 300);
    await deadlines.arm(kind.name, new Date(T + 300));
    clock.t = T + 300;
    deadlines.noteJobStart(wakeJobName(kind.name));
    await sleep(450);
    expect(kind.get('started').settled).toBe(false);
    expect(nows).toHaveLength(1);
    expect(scheduler.live(kind.name).map((w) => w.at.getTime())).toEqual([T + 300]);
  } finally {
    deadlines.stop();
  }
});

test('on time: the arming instance settles at the armed time itself, as that arm, never early; the arm\'s own job is kept and finds nothing; a paused kind or a started wake-up is left alone', async () => {
  const paused: string[] = [];
  const { clock, deadlines, scheduler, kinds: [kind] } = setup(1, { settleOnTime: true });
  deadlines.watch(0, 0, async () => paused); // the pause switch; no watch timer
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const waitSettled = async (id: string) => {
    for (let waited = 0; !kind.get(id).settled && waited < 2_000; waited += 5) await sleep(5);
  };
  try {
    clock.t = Date.now(); // the engine's timers count real time from the engine's clock
    let due = clock.t + 200;
    kind.add('on-time', due);
    await deadlines.arm(kind.name, new Date(due));
    const [own] = scheduler.live(kind.name);
    // The timer fires by the real clock while the engine's clock still says 50 ms before: it waits.
    clock.t = due - 50;
    await sleep(260);
    expect(kind.get('on-time').settled).toBe(false);
    clock.t = due;
    const movedAt = Date.now();
    await waitSettled('on-time');
    expect(kind.get('on-time').settled).toBe(true);
    expect(Date.now() - movedAt).toBeLessThan(1_000);
    // Agenda's job of that arm is still there, runs, and settles nothing more.
    expect(own.cancelled).toBe(false);
    await deadlines.runWakeup(own.data);
    expect(kind.batches.flat()).toEqual(['on-time']);

    // A deadline 100 ms ahead, armed; at its time `atDue` runs, then the timer has 200 ms to act.
    const armThenWatch = async (id: string, atDue: () => void) => {
      clock.t = Date.now();
      due = clock.t + 100;
      kind.add(id, due);
      await deadlines.arm(kind.name, new Date(due));
      await sleep(95);
      clock.t = due;
      atDue();
      await sleep(200);
      return kind.get(id).settled;
    };
    // Paused: the timer leaves it to the wake-up job (which the pause skips).
    paused.push(wakeJobName(kind.name));
    expect(await armThenWatch('paused', () => undefined)).toBe(false);
    // A wake-up that started at its time (here or elsewhere): the timer does not settle beside it.
    paused.length = 0;
    expect(await armThenWatch('started', () => deadlines.noteJobStart(wakeJobName(kind.name)))).toBe(false);
  } finally {
    deadlines.stop();
  }
});

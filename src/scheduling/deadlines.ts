import { randomUUID } from 'node:crypto';
import { LockMode } from '@mikro-orm/core';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { DeadlineWakeup } from '../entities/DeadlineWakeup.js';
import type { Clock } from '../clock.js';
import type { Transactions, UnitOfWork } from '../db/transactions.js';
import type { Logger } from '../logger.js';
import type { Scheduler } from './agenda.js';

/** A deadline that could not be settled (its change was rolled back), and why. */
export interface SettleFailure {
  id: string;
  reason: string;
}

export interface Settled {
  settled: string[];
  failed: SettleFailure[];
  /** When each settled deadline was due (same order as `settled`), for the lateness metric. */
  dueAt?: Array<Date | null>;
}

/**
 * One kind of deadline (an auction's end, an order's expiry). The business table is the queue:
 * the kind says where its earliest pending deadline is and how to settle a batch of due ones.
 * `skip` holds ids whose settling failed and waits for its retry: they are neither settled nor
 * taken as the next deadline until then. The engine knows no table: a kind is an adapter to the
 * service that owns the rows (src/jobs/).
 */
export interface DeadlineKind {
  /** e.g. `auction-end`; the wake-up job is `deadline:<name>`. */
  readonly name: string;
  /** Words for the start-up log: `Restored X/Y <label> tasks`. */
  readonly label: string;
  /** The earliest pending deadline, or null when nothing is pending. */
  nextDeadline(em: EntityManager, skip: readonly string[]): Promise<Date | null>;
  /** Deadlines settled per transaction; DEADLINE_BATCH_SIZE when not set. */
  readonly batchSize?: number;
  /**
   * Batches settled at once, each in its own transaction on its own connection, while batches come
   * back full (a backlog); 1 when not set. `settleDue` must take its rows SKIP LOCKED and lock
   * anything else in a fixed order, so that concurrent batches never wait on each other in a cycle.
   */
  readonly lanes?: number;
  /** How many are pending (for the start-up log). */
  countPending(em: EntityManager): Promise<number>;
  /**
   * Settles at most `limit` deadlines due at `uow.now`, oldest first, each by a conditional update,
   * writing their events to `uow.events`. Returns the ids it settled (none when a second run races it)
   * and those it had to leave as they were. Together they are the batch: fewer than `limit` means done.
   */
  settleDue(uow: UnitOfWork, limit: number, skip: readonly string[]): Promise<Settled>;
}

/** A wake-up's outcome: how many it settled, and the deadlines it could not settle (retried later). */
export interface WakeResult {
  settled: number;
  failed: SettleFailure[];
}

/** Thrown by a wake-up or sweep job whose run left deadlines it could not settle, so Agenda records the failure. */
export class UnsettledDeadlines extends Error {
  constructor(kind: string, failed: SettleFailure[]) {
    super(`${failed.length} ${kind} deadline(s) could not be settled: ${failed.map((f) => `${f.id} (${f.reason})`).join('; ')}`);
    this.name = 'UnsettledDeadlines';
  }
}

/** A failed deadline is retried after 1, 2, 4 … seconds, at most a minute apart. */
const retryDelayMs = (attempts: number) => Math.min(60_000, 1000 * 2 ** (attempts - 1));

export interface DeadlinesOptions {
  batchSize: number;
  /** An armed wake-up this long overdue is taken as lost and replaced by the next arm. */
  staleMs: number;
  lockLifetimeMs: number;
  /** A running wake-up waits in-process for deadlines due within this window instead of re-arming. */
  inlineWindowMs: number;
  /** After another instance's graceful stop, how long this one settles each kind's deadlines on its own timer. */
  handoverMs: number;
  /**
   * How long after an armed time the instance that armed it checks that a wake-up of the kind has
   * started since (on any instance), and saves one due now if none has while the arm is still the
   * armed one (see `backstop`); 0 (the default) leaves it to Agenda and the watch.
   */
  armBackstopMs?: number;
  /**
   * Tells every instance's Agenda that a wake-up job is due now (its notification channel), so one
   * held locked behind a timer that fired early runs at once; used by the backstop `NUDGE_AFTER_MS`
   * after an armed time, before it saves a job of its own.
   */
  nudge?: (jobName: string) => Promise<void>;
  /**
   * The instance that arms a wake-up also settles the kind's deadlines itself at the armed time, on
   * its own timer, unless a wake-up has started by then (see `onTime`); false leaves it to Agenda.
   */
  settleOnTime?: boolean;
}

/** How long before an armed time the on-time settle reads whether the kind is paused. */
const PAUSE_READ_BEFORE_MS = 50;

/** How long after an armed time the arming instance nudges Agenda if the wake-up has not started. */
const NUDGE_AFTER_MS = 2;
/**
 * setTimeout's longest delay (2^31 - 1 ms, 24.8 days). A longer one fires after 1 ms (Node warns), and
 * a backstop that fires early runs a wake-up that re-arms the same time: a 30-day VIP membership kept
 * an instance re-arming in a loop (thousands of TimeoutOverflowWarnings per test run). Deadlines
 * further out get no timers of this instance's own (no on-time settle, nudge or backstop): their
 * wake-up job waits in the job store, which runs it, and the deadline sweep settles what it misses.
 */
const MAX_TIMER_MS = 2_147_483_647;
const beyondTimers = (at: Date, now: Date) => at.getTime() - now.getTime() > MAX_TIMER_MS - 60_000;


export const wakeJobName = (kind: string) => `deadline:${kind}`;

/** What a wake-up job carries: its kind, and which arm scheduled it (none when run by hand). */
export interface WakeupPayload {
  kind: string;
  armId?: string;
}

/** Job-store calls decided under a kind's row lock, made after its transaction commits (see `schedule`). */
type JobStoreCalls = () => Promise<void>;

/** The narrow handle a service gets for one kind: "a deadline of mine is now at `at`". */
export type ArmDeadline = (at: Date) => Promise<void>;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One Agenda wake-up job per kind of deadline, armed at the kind's earliest pending deadline.
 *
 * Measured on Agenda 6 (FIELD-NOTES.md): one job per entity locks ~1,000 jobs/s and ran 10,000 ends
 * 9–16 s late, so entities never get jobs of their own. Invariant: the wake-up armed in
 * `deadline_wakeups` is never later than the earliest pending deadline. Every change of the armed
 * time happens under that kind's row lock and reads the earliest deadline after taking it, so a
 * deadline committed before an arm is always seen by whichever of the two racing writers goes last.
 */
export class Deadlines {
  private readonly kinds = new Map<string, DeadlineKind>();
  /** Per kind: deadlines whose settling failed, and when to try them again (this instance's memory). */
  private readonly retries = new Map<string, Map<string, { at: number; attempts: number; reason: string }>>();
  private stopping = false;
  /** Wake-ups running on this instance, per kind: the watch never starts a second one beside them. */
  private readonly local = new Map<string, number>();
  private watchTimer: NodeJS.Timeout | undefined;
  private checking = false;
  private watchFailing = false;
  private readonly takeOvers = new Set<NodeJS.Timeout>();
  /** Per kind: when a wake-up last started (ms; here, or elsewhere as Agenda told), and the backstop timer of this instance's last arm. */
  private readonly lastStart = new Map<string, number>();
  private readonly backstops = new Map<string, NodeJS.Timeout>();
  private readonly nudges = new Map<string, NodeJS.Timeout>();
  private readonly onTimes = new Map<string, NodeJS.Timeout>();
  /** Per kind: the on-time settle running here, if one is (it never rejects). */
  private readonly onTimeRuns = new Map<string, Promise<void>>();
  /** The wake-up jobs an admin paused (given with `watch`): neither the watch nor the backstop runs them. */
  private paused: () => Promise<readonly string[]> = async () => [];
  /** Told after each committed batch how late (ms, settled − due) its deadlines were: the lateness metric. */
  onSettled: (kind: string, latenessMs: number[]) => void = () => {};

  constructor(
    private readonly orm: MikroORM,
    private readonly tx: Transactions,
    private readonly scheduler: Scheduler,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: DeadlinesOptions,
  ) {}

  /** Adds a kind; its wake-up job is defined by the catalogue (src/scheduling/jobs.ts) around `runWakeup`. */
  register(kind: DeadlineKind): void {
    this.kinds.set(kind.name, kind);
    this.retries.set(kind.name, new Map());
  }

  /** The handle a service is given at the composition root: arm this kind's wake-up no later than `at`. */
  armer(kindName: string): ArmDeadline {
    return (at) => this.arm(kindName, at);
  }

  /** The wake-up job's body: settle what is due, and fail the run (Agenda records it) if some could not be. */
  async runWakeup(payload: WakeupPayload): Promise<void> {
    // Settling on time here already (`onTime`): after it, not beside it, whose batches would only
    // find its rows locked and wait, reading and locking beside the one statement that matters.
    await this.onTimeRuns.get(payload.kind);
    const { failed } = await this.wake(payload.kind, payload.armId);
    if (failed.length > 0) throw new UnsettledDeadlines(payload.kind, failed);
  }

  /**
   * Agenda started a job, here or on another instance (its state notifications): a wake-up's start
   * tells this instance's backstop that the arm was not missed.
   */
  noteJobStart(jobName: string): void {
    for (const name of this.kinds.keys()) if (wakeJobName(name) === jobName) this.lastStart.set(name, this.clock.now().getTime());
  }

  names(): string[] {
    return [...this.kinds.keys()];
  }

  /** Shutting down: running wake-ups finish their batch, re-arm and return; the watch stops. */
  stop(): void {
    this.stopping = true;
    clearInterval(this.watchTimer);
    for (const timer of this.takeOvers) clearTimeout(timer);
    for (const timer of this.backstops.values()) clearTimeout(timer);
    for (const timer of this.nudges.values()) clearTimeout(timer);
    for (const timer of this.onTimes.values()) clearTimeout(timer);
  }

  /**
   * Every instance checks every `everyMs` that no deadline waits: one overdue by more than `graceMs`
   * with no wake-up running here had its wake-up go down with another instance (SIGKILL: Agenda keeps
   * that job locked for JOB_LOCK_LIFETIME_SECONDS), so it is settled here, at once. Costs one indexed
   * read per kind per check. Running beside a slow wake-up elsewhere is safe: batches lock their rows
   * with SKIP LOCKED and settle by conditional update, so each deadline is still settled once.
   */
  watch(everyMs: number, graceMs: number, paused: () => Promise<readonly string[]>): void {
    this.paused = paused;
    if (everyMs <= 0) return;
    this.watchTimer = setInterval(() => void this.check(graceMs, paused), everyMs);
    this.watchTimer.unref();
  }

  /**
   * Another instance stopped gracefully and released its wake-ups: each kind's deadlines are settled
   * here as they come due, on this instance's own timer, for `handoverMs`, without waiting for Agenda
   * to run the wake-ups re-armed meanwhile. (Following only the next one was not enough: an instance
   * started a moment before had its scheduler pick up the re-armed wake-up late, and the deadlines
   * after it waited for the watch, ~600 ms; bench:failover.) Settling beside a wake-up that does run
   * is safe: batches take their rows SKIP LOCKED and settle by conditional update.
   */
  async takeOver(): Promise<void> {
    if (this.stopping) return;
    const until = this.clock.now().getTime() + this.opts.handoverMs;
    await Promise.all(this.names().map((name) => this.follow(name, until)));
  }

  /** `idle`: the last round settled nothing; a deadline still due is then looked at again 50 ms later, not at once. */
  private async follow(name: string, until: number, idle = false): Promise<void> {
    const next = await this.nextDeadline(this.kind(name), this.orm.em.fork());
    if (!next || this.stopping || next.getTime() > until) return;
    const timer = setTimeout(
      () => {
        this.takeOvers.delete(timer);
        if (this.stopping) return;
        const settling = (this.local.get(name) ?? 0) > 0 ? Promise.resolve(0) : this.wake(name).then((r) => r.settled);
        settling
          .then((settled) => this.follow(name, until, settled === 0))
          .catch((err) => this.log.warn({ err, kind: name }, 'taking over deadlines failed; the watch retries'));
      },
      Math.max(idle ? 50 : 0, next.getTime() - this.clock.now().getTime()),
    );
    this.takeOvers.add(timer);
  }

  /**
   * One cheap read for all kinds: the armed time is never later than the kind's earliest pending
   * deadline, and a running wake-up moves it on as it goes (re-arm, or the deadline it waits for
   * inline). An armed time overdue by more than the grace means its wake-up is stuck or gone.
   */
  private async check(graceMs: number, paused: () => Promise<readonly string[]>): Promise<void> {
    if (this.checking || this.stopping) return;
    this.checking = true;
    try {
      const overdue = await this.orm.em
        .fork()
        .execute<Array<{ kind: string; wake_at: Date }>>('select kind, wake_at from deadline_wakeups where wake_at < ? and kind = any(?::text[])', [
          new Date(this.clock.now().getTime() - graceMs),
          `{${this.names().join(',')}}`,
        ]);
      for (const { kind: name, wake_at: armedAt } of overdue) {
        if ((this.local.get(name) ?? 0) > 0) continue;
        if ((await paused()).includes(wakeJobName(name))) continue;
        this.log.info({ kind: name, armedAt }, 'deadline wake-up overdue and none running here: settling what is due');
        await this.wake(name);
      }
      if (this.watchFailing) this.log.info('deadline watch works again');
      this.watchFailing = false;
    } catch (err) {
      if (!this.watchFailing) this.log.warn({ err: (err as Error).message }, 'deadline watch failed; retrying');
      this.watchFailing = true;
    } finally {
      this.checking = false;
    }
  }

  /**
   * After a deadline was created or moved earlier (and committed): make sure the wake-up is armed
   * no later than `at`. Cheap when it already is.
   */
  async arm(kindName: string, at: Date): Promise<void> {
    const kind = this.kind(kindName);
    // Fast path, the common case: already armed early enough. FOR SHARE does not block other arms,
    // but waits for a writer holding the row, so it never reads an armed time a re-arm is replacing.
    // One statement on its own (its implicit transaction holds the lock for as long as it runs): as
    // BEGIN, SELECT and COMMIT it was 20-30 ms of each flash-sale batch under load (docs/benchmarks.md).
    const [row] = await this.orm.em
      .fork()
      .execute<Array<{ wake_at: Date | string | null }>>('select wake_at from deadline_wakeups where kind = ? for share', [kind.name]);
    if (row?.wake_at) {
      const armedAt = new Date(row.wake_at).getTime();
      if (armedAt <= at.getTime() && armedAt >= this.clock.now().getTime() - this.opts.staleMs) return;
    }
    const saveArm = await this.withWakeupRow(kind.name, async (em, row) => {
      const now = this.clock.now().getTime();
      const stale = row.wakeAt !== null && row.wakeAt.getTime() < now - this.opts.staleMs;
      if (row.wakeAt !== null && row.wakeAt.getTime() <= at.getTime() && !stale) return undefined;
      // A lost (stale) wake-up may still owe an earlier deadline than `at`: arm at whichever comes first.
      const next = await this.nextDeadline(kind, em);
      return this.schedule(row, next !== null && next.getTime() < at.getTime() ? next : at);
    });
    await saveArm?.();
  }

  /**
   * The wake-up job's handler (also run by the sweep and at start-up, without an arm id): settles
   * every due deadline in batches, waits inline for the next ones while they are close, then
   * re-arms at the next one. A deadline that fails is logged and left for its retry; the others go on.
   */
  async wake(kindName: string, armId?: string): Promise<WakeResult> {
    this.local.set(kindName, (this.local.get(kindName) ?? 0) + 1);
    this.lastStart.set(kindName, this.clock.now().getTime());
    try {
      return await this.wakeHere(kindName, armId);
    } finally {
      this.local.set(kindName, this.local.get(kindName)! - 1);
    }
  }

  private async wakeHere(kindName: string, armId?: string): Promise<WakeResult> {
    const kind = this.kind(kindName);
    const batchSize = kind.batchSize ?? this.opts.batchSize;
    const retries = this.retries.get(kind.name)!;
    const started = Date.now();
    let settled = 0;
    const failed: SettleFailure[] = [];
    // Retries not yet due are skipped; one that is due is tried again with the rest.
    const skip = new Set([...retries].filter(([, r]) => r.at > this.clock.now().getTime()).map(([id]) => id));
    const waiting = new Set(skip);
    const failedNow = new Set<string>();
    const lanes = Math.max(1, kind.lanes ?? 1);
    // Bookkeeping of one committed batch, before the next one of any lane is started.
    const record = (result: Settled) => {
      settled += result.settled.length;
      if (result.dueAt?.length) {
        const at = this.clock.now().getTime();
        this.onSettled(kind.name, result.dueAt.flatMap((d) => (d ? [at - d.getTime()] : [])));
      }
      if (result.settled.length > 0) {
        this.log.info({ kind: kind.name, ids: result.settled, via: armId === undefined ? 'sweep' : 'wake-up' }, 'deadlines settled');
      }
      for (const id of result.settled) retries.delete(id);
      for (const failure of result.failed) {
        // One attempt per run: a concurrent lane that read its skip list before this failure was
        // recorded may have tried the same deadline again.
        if (failedNow.has(failure.id)) continue;
        failedNow.add(failure.id);
        const attempts = (retries.get(failure.id)?.attempts ?? 0) + 1;
        retries.set(failure.id, { at: this.clock.now().getTime() + retryDelayMs(attempts), attempts, reason: failure.reason });
        skip.add(failure.id);
        failed.push(failure);
        this.log.error({ kind: kind.name, id: failure.id, reason: failure.reason, attempts }, 'deadline not settled; rolled back, will retry');
      }
    };
    // One lane settles batches until one comes back short: nothing was left that it could take (the
    // rest is settled, skipped, or held by another transaction). Returns the size of that last batch.
    const lane = async (onFull?: () => void): Promise<number> => {
      let publishing: Promise<void> = Promise.resolve();
      for (;;) {
        const { result, published } = await this.tx.runThenPublish((uow) => kind.settleDue(uow, batchSize, [...skip]));
        record(result);
        // At most one batch's events in flight per lane while its next batch is written.
        await publishing;
        publishing = published;
        const taken = result.settled.length + result.failed.length;
        if (taken < batchSize) {
          await publishing;
          return taken;
        }
        onFull?.();
      }
    };
    for (;;) {
      // The other lanes start only once a batch came back full: a deadline or two due at a time
      // (the usual case) costs one transaction, not one per lane.
      const others: Array<Promise<number>> = [];
      const ends = await Promise.allSettled([
        lane(() => {
          while (others.length < lanes - 1) others.push(lane());
        }),
      ]);
      // Every lane has finished before a failure of one is thrown: none is left running unobserved.
      ends.push(...(await Promise.allSettled(others)));
      const broken = ends.find((e) => e.status === 'rejected');
      if (broken) throw broken.reason;
      const taken = ends.map((e) => (e.status === 'fulfilled' ? e.value : 0));
      if (armId === undefined || this.stopping || Date.now() - started > this.opts.lockLifetimeMs / 2) break;
      // A deadline due within the inline window is waited for here: going back through the job store
      // costs ~50 ms a round (measured, docs/benchmarks.md), waiting costs nothing.
      const waitMs = await this.holdForNext(kind, armId, [...skip]);
      if (waitMs === null) break;
      // Due but nothing settled: another transaction holds those rows (SKIP LOCKED). Waiting a little
      // for it to finish beats spinning two transactions a round until it does.
      const idle = taken.every((n) => n === 0);
      if (waitMs > 0 || idle) await sleep(Math.max(waitMs, idle ? 50 : 0));
    }
    // Retries that came due were tried above: settled, failed again (re-recorded) or no longer due.
    const failedIds = new Set(failed.map((f) => f.id));
    for (const [id, retry] of retries) {
      if (!skip.has(id) && !failedIds.has(id) && retry.at <= this.clock.now().getTime()) retries.delete(id);
    }
    // Deadlines still waiting for their retry are still unsettled: the run says so, so the job's
    // last error stays until they settle instead of clearing on a run that merely skipped them.
    for (const id of waiting) {
      const retry = retries.get(id);
      if (retry) failed.push({ id, reason: `${retry.reason} (next try ${new Date(retry.at).toISOString()})` });
    }
    await this.rearm(kind, armId);
    return { settled, failed };
  }

  /** How many deadlines each kind has pending, for the metrics. */
  async pending(): Promise<Array<{ kind: string; count: number }>> {
    return Promise.all(this.names().map(async (kind) => ({ kind, count: await this.kind(kind).countPending(this.orm.em.fork()) })));
  }

  /**
   * How long each kind's oldest pending deadline is past due, in seconds (0 when none is due), for the
   * metrics: a deadline nothing settles shows as a number that keeps growing. The same read as the
   * wake-up's (`nextDeadline`, the first entry of the kind's index), with no deadline skipped: one that
   * keeps failing is overdue too.
   */
  async oldestOverdue(): Promise<Array<{ kind: string; seconds: number }>> {
    const now = this.clock.now().getTime();
    return Promise.all(
      this.names().map(async (kind) => {
        const next = await this.kind(kind).nextDeadline(this.orm.em.fork(), []);
        return { kind, seconds: next ? Math.max(0, (now - next.getTime()) / 1000) : 0 };
      }),
    );
  }

  /** The armed wake-up of every kind, for the jobs API. */
  async armed(): Promise<Array<{ kind: string; wakeAt: Date | null }>> {
    const rows = await this.orm.em.fork().find(DeadlineWakeup, { kind: { $in: this.names() } });
    const byKind = new Map(rows.map((r) => [r.kind, r.wakeAt]));
    return this.names().map((kind) => ({ kind, wakeAt: byKind.get(kind) ?? null }));
  }

  /**
   * Start-up recovery for one kind: settles what came due while no server ran and re-arms.
   * Returns [settled, pending before].
   */
  async recover(kindName: string): Promise<[number, number]> {
    const kind = this.kind(kindName);
    const pending = await kind.countPending(this.orm.em.fork());
    const { settled } = await this.wake(kind.name);
    this.log.info({ restored: settled, pending }, `Restored ${settled}/${pending} ${kind.label} tasks`);
    return [settled, pending];
  }

  /**
   * The periodic safety net: every kind settles what is overdue and re-arms. Throws when some
   * deadline could not be settled, after every kind had its turn, so the sweep job shows the failure.
   */
  async sweep(skipKinds: readonly string[] = []): Promise<number> {
    let settled = 0;
    const failures: UnsettledDeadlines[] = [];
    for (const name of this.names().filter((n) => !skipKinds.includes(n))) {
      const result = await this.wake(name);
      settled += result.settled;
      if (result.failed.length > 0) failures.push(new UnsettledDeadlines(name, result.failed));
    }
    if (failures.length > 0) throw new Error(failures.map((f) => f.message).join(' | '));
    return settled;
  }

  private kind(name: string): DeadlineKind {
    const kind = this.kinds.get(name);
    if (!kind) throw new Error(`unknown deadline kind "${name}"`);
    return kind;
  }

  /** The earliest of the kind's next deadline (failed ones aside) and its next retry. */
  private async nextDeadline(kind: DeadlineKind, em: EntityManager): Promise<Date | null> {
    const retries = this.retries.get(kind.name)!;
    const next = await kind.nextDeadline(em, [...retries.keys()]);
    const retryAt = Math.min(...[...retries.values()].map((r) => r.at));
    if (!Number.isFinite(retryAt)) return next;
    return next === null || retryAt < next.getTime() ? new Date(retryAt) : next;
  }

  /** Re-arms at the kind's next deadline, unless another wake-up is already armed early enough. */
  private async rearm(kind: DeadlineKind, armId: string | undefined): Promise<void> {
    const saveArm = await this.withWakeupRow(kind.name, async (em, row): Promise<JobStoreCalls | undefined> => {
      const next = await this.nextDeadline(kind, em);
      const now = this.clock.now().getTime();
      // Another wake-up still in the future and early enough stays. One that is due or overdue is
      // running (it re-arms itself; one extra wake-up costs nothing) or was lost: arm afresh.
      const othersFine =
        row.armId !== null &&
        row.armId !== armId &&
        row.wakeAt !== null &&
        row.wakeAt.getTime() > now &&
        (next === null || row.wakeAt.getTime() <= next.getTime());
      if (othersFine) return undefined;
      if (next === null) {
        const replaced = row.armId;
        row.wakeAt = null;
        row.armId = null;
        return replaced && replaced !== armId ? () => this.cancelArm(kind.name, replaced) : undefined;
      }
      return this.schedule(row, next);
    });
    await saveArm?.();
  }

  /**
   * Records a new one-shot wake-up at `at` on the locked row, and returns the job-store calls to make
   * once the row's transaction has committed: save the wake-up, and cancel the one it replaces. Never
   * under the row's lock: every arm of the kind waits for that lock (even the fast path's FOR SHARE),
   * and a job store that is away (MongoDB: serverSelectionTimeoutMS, 5 s) would hold all of them, and
   * a PostgreSQL connection each, for as long. Committed first, the row can name a wake-up not saved:
   * - this instance's timers (`onTime`, `backstop`) follow the committed row, before the save: a save
   *   that fails (the job store away) still has its deadlines settled at their time here, and by the
   *   watch on every instance, which reads the row; a later arm, the sweep or an arm gone stale
   *   (`staleMs`) saves a wake-up again;
   * - an arm replaced before its save landed may have had its cancel come first: once saved, it checks
   *   that it is still the row's and cancels itself if not (one more run that finds nothing would be
   *   harmless, but one wake-up per kind is what the store should hold).
   */
  private schedule(row: DeadlineWakeup, at: Date): JobStoreCalls {
    const kind = row.kind;
    const replaced = { armId: row.armId, wakeAt: row.wakeAt };
    const armId = randomUUID();
    row.wakeAt = at;
    row.armId = armId;
    return async () => {
      this.onTime(kind, armId, at);
      this.backstop(kind, armId, at);
      await this.scheduler.schedule(at, wakeJobName(kind), { kind, armId });
      const [current] = await this.orm.em.fork().execute<Array<{ arm_id: string | null }>>('select arm_id from deadline_wakeups where kind = ?', [kind]);
      // A replaced wake-up still in the future would only wake to find nothing: drop it.
      if (replaced.armId && replaced.wakeAt && replaced.wakeAt.getTime() > this.clock.now().getTime()) {
        await this.cancelArm(kind, replaced.armId);
      }
      if (current?.arm_id !== armId) await this.cancelArm(kind, armId);
    };
  }

  /**
   * Agenda runs a locked wake-up from a timer set for its time, and that timer can fire a moment
   * early (Node counts it from the event loop's cached time): Agenda then puts the job back in its
   * queue without a new timer, and it waits for the next scan (JOB_PROCESS_EVERY_SECONDS) or for the
   * watch. That settled 1,000 same-instant ends 416–540 ms late in about 1 round of 16 of
   * `bench:auctions` (docs/benchmarks.md). So `armBackstopMs` after the armed time, the instance that
   * armed it runs a wake-up of the kind now (an Agenda job due at once) if none has started since
   * (here, or on another instance as Agenda's state notifications tell: `noteJobStart`), the arm is
   * still the armed one and the kind is not paused. Running beside a wake-up that did start elsewhere
   * unheard of is safe, as for the watch: batches take their rows SKIP LOCKED and settle by conditional
   * update. (Settling in-process instead, the re-arm after it cancelled the arm's own job before that
   * started, and the run went unrecorded: the metrics test caught it on a busy machine.)
   */
  private backstop(kind: string, armId: string, at: Date): void {
    const graceMs = this.opts.armBackstopMs ?? 0;
    if (graceMs <= 0 || this.stopping) return;
    this.nudgeLater(kind, at);
    clearTimeout(this.backstops.get(kind));
    this.backstops.delete(kind);
    if (beyondTimers(at, this.clock.now())) return;
    const timer = setTimeout(
      () => {
        if (this.backstops.get(kind) === timer) this.backstops.delete(kind);
        if (this.stopping || (this.lastStart.get(kind) ?? 0) >= at.getTime() || (this.local.get(kind) ?? 0) > 0) return;
        void this.orm.em
          .fork()
          .execute<Array<{ arm_id: string | null }>>('select arm_id from deadline_wakeups where kind = ?', [kind])
          .then(async ([row]) => {
            if (row?.arm_id !== armId || this.stopping || (this.lastStart.get(kind) ?? 0) >= at.getTime()) return;
            if ((await this.paused()).includes(wakeJobName(kind))) return;
            this.log.info({ kind, armedAt: at }, 'deadline wake-up not started on time: running one now');
            // Through Agenda, as a run of the wake-up job like any other (recorded, counted, paused by an
            // admin's pause): saving a job due now makes Agenda fill and process its queue at once, which
            // also starts the stranded one (it then finds nothing left, or what is still due).
            await this.scheduler.now(wakeJobName(kind), { kind } satisfies WakeupPayload);
          })
          .catch((err) => this.log.warn({ err, kind }, 'deadline backstop failed; the watch retries'));
      },
      Math.max(0, at.getTime() - this.clock.now().getTime()) + graceMs,
    );
    timer.unref();
    this.backstops.set(kind, timer);
  }

  /**
   * Settles the kind's deadlines at the armed time on this instance's own timer, as the wake-up of
   * that arm (`wake(kind, armId)`: its re-arm never cancels the arm's own job, which still runs, finds
   * what is left, and is recorded like every run). Agenda's path to a wake-up's handler (its timer,
   * the job's lock, the pause check) took 4–9 ms after the armed time, a fifth of what 1,000 auctions
   * ending at one instant took to be heard (bench:auctions, docs/benchmarks.md). Skipped when a
   * wake-up of the kind started since, here or elsewhere, when one runs here, or when the kind is
   * paused (read PAUSE_READ_BEFORE_MS before: a pause after that is as a pause during a run). Never
   * early: a timer that fires a moment early waits out the rest, and the batch statement itself takes
   * only what is due by its own clock. Settling beside Agenda's run of the same arm is safe, as for
   * the watch: batches take their rows SKIP LOCKED and settle by conditional update.
   */
  private onTime(kind: string, armId: string, at: Date): void {
    if (!this.opts.settleOnTime || this.stopping) return;
    clearTimeout(this.onTimes.get(kind));
    this.onTimes.delete(kind);
    if (beyondTimers(at, this.clock.now())) return;
    const due = at.getTime();
    const fire = () => {
      if (this.stopping) return;
      const left = due - this.clock.now().getTime();
      if (left > 0) return void this.onTimes.set(kind, setTimeout(fire, left).unref());
      this.onTimes.delete(kind);
      if ((this.lastStart.get(kind) ?? 0) >= due || (this.local.get(kind) ?? 0) > 0) return;
      const run = this.wake(kind, armId)
        .then(() => undefined)
        .catch((err) => this.log.warn({ err, kind }, 'settling deadlines on time failed; the wake-up follows'))
        .finally(() => {
          if (this.onTimeRuns.get(kind) === run) this.onTimeRuns.delete(kind);
        });
      this.onTimeRuns.set(kind, run);
    };
    const readPause = () => {
      this.paused()
        .then((paused) => {
          if (this.stopping || paused.includes(wakeJobName(kind)) || this.onTimes.get(kind) !== timer) return;
          this.onTimes.set(kind, setTimeout(fire, Math.max(0, due - this.clock.now().getTime())).unref());
        })
        .catch((err) => this.log.warn({ err, kind }, 'could not read whether a deadline kind is paused; its wake-up settles it'));
    };
    const timer = setTimeout(readPause, Math.max(0, due - PAUSE_READ_BEFORE_MS - this.clock.now().getTime())).unref();
    this.onTimes.set(kind, timer);
  }

  /**
   * The backstop's first step, cheap enough to take whenever a wake-up has not started
   * `NUDGE_AFTER_MS` after its time: one notification, on which every instance's Agenda fills and
   * processes its queue of wake-ups, so one stranded there runs then rather than at the backstop's
   * job (~20 ms later, bench:auctions). A nudge with nothing stranded finds nothing to run.
   */
  private nudgeLater(kind: string, at: Date): void {
    const nudge = this.opts.nudge;
    if (!nudge) return;
    clearTimeout(this.nudges.get(kind));
    this.nudges.delete(kind);
    if (beyondTimers(at, this.clock.now())) return;
    const due = at.getTime() + NUDGE_AFTER_MS;
    const check = () => {
      if (this.stopping) return;
      // Timers can fire a moment early too: wait out the rest.
      const left = due - this.clock.now().getTime();
      if (left > 0) return void this.nudges.set(kind, setTimeout(check, left).unref());
      this.nudges.delete(kind);
      if ((this.lastStart.get(kind) ?? 0) >= at.getTime() || (this.local.get(kind) ?? 0) > 0) return;
      nudge(wakeJobName(kind)).catch((err) => this.log.warn({ err, kind }, 'deadline nudge failed; the backstop follows'));
    };
    this.nudges.set(kind, setTimeout(check, Math.max(0, due - this.clock.now().getTime())).unref());
  }

  private async cancelArm(kind: string, armId: string): Promise<void> {
    await this.scheduler.cancel({ name: wakeJobName(kind), data: { armId } });
  }

  /**
   * Before a running wake-up waits inline: if the row is still its own and the next deadline is
   * within the window, records that deadline as the armed time, so an arm for an even earlier one
   * schedules a wake-up of its own. Returns how long to wait, or null to re-arm instead. The next
   * deadline is read under the row lock, like every other change of the armed time.
   */
  private holdForNext(kind: DeadlineKind, armId: string, skip: string[]): Promise<number | null> {
    return this.withWakeupRow(kind.name, async (em, row) => {
      if (row.armId !== armId) return null;
      const next = await kind.nextDeadline(em, skip);
      const waitMs = next ? next.getTime() - this.clock.now().getTime() : Infinity;
      if (waitMs > this.opts.inlineWindowMs) return null;
      row.wakeAt = next;
      return Math.max(0, waitMs);
    });
  }

  /**
   * Runs `work` holding the kind's wake-up row lock (the row is created on first use); what `work`
   * changes on the row is written when the transaction commits.
   */
  private async withWakeupRow<T>(kind: string, work: (em: EntityManager, row: DeadlineWakeup) => Promise<T>): Promise<T> {
    return this.orm.em.fork().transactional(async (em) => {
      await em.createQueryBuilder(DeadlineWakeup).insert({ kind }).onConflict('kind').ignore().execute();
      const row = await em.findOneOrFail(DeadlineWakeup, { kind }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      return work(em, row);
    });
  }
}

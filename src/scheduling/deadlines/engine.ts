import { randomUUID } from 'node:crypto';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { sql } from 'kysely';
import type { DeadlineWakeup } from '../../entities/DeadlineWakeup.js';
import type { Clock } from '../../clock.js';
import type { Transactions } from '../../db/transactions.js';
import type { Logger } from '../../logger.js';
import type { Scheduler } from '../agenda.js';
import { UnsettledDeadlines, notifySql, wakeJobName, withWakeupRow, type ArmDeadline, type DeadlineKind, type Via, type WakeResult, type WakeupPayload } from './kind.js';
import { armedTimes, oldestOverdue, pendingByKind } from './reads.js';
import { Settler } from './settle.js';
import { WakeupTimers } from './timers.js';

export interface DeadlinesOptions {
  batchSize: number;
  /**
   * Where this instance's timers listen for changes of the armed times (their own connection).
   * Unset, or `timers` false: no timers here (DEADLINE_TIMERS=false), only the backstop.
   */
  databaseUrl?: string;
  timers?: boolean;
}

/** Job-store calls decided under a kind's row lock, made after its transaction commits (see `schedule`). */
type JobStoreCalls = () => Promise<void>;

/** A change of the armed time, committed, and the job-store calls it still needs. */
interface Armed {
  at: Date | null;
  calls?: JobStoreCalls;
  /** Still due after a run: held by a run elsewhere. */
  idle?: boolean;
}

/**
 * The deadline engine: one armed time per kind of deadline, and one entry point that settles what is
 * due and re-arms (`settleDue`), run by every instance's timer at the armed time (the mechanism,
 * src/scheduling/deadlines/timers.ts) and by the backstop: the kind's Agenda wake-up job at the armed
 * time, the every-minute sweep and start-up recovery.
 *
 * Measured on Agenda 6 (FIELD-NOTES.md): one job per entity locks ~1,000 jobs/s and ran 10,000 ends
 * 9–16 s late, so entities never get jobs of their own. Invariant: the time armed in
 * `deadline_wakeups` is never later than the earliest pending deadline. Every change of the armed
 * time happens under that kind's row lock and reads the earliest deadline after taking it, so a
 * deadline committed before an arm is always seen by whichever of the two racing writers goes last.
 */
export class Deadlines {
  private readonly kinds = new Map<string, DeadlineKind>();
  private readonly settler: Settler;
  /** Per kind: the run of `settleDue` under way here, and the one more run asked for meanwhile. */
  private readonly runs = new Map<string, { done: Promise<WakeResult | undefined>; again?: Promise<WakeResult> }>();
  private timers: WakeupTimers | undefined;
  /** Told after each committed batch how late (ms, settled − due) its deadlines were: the lateness metric. */
  onSettled: (kind: string, latenessMs: number[]) => void = () => {};

  constructor(
    private readonly orm: MikroORM,
    tx: Transactions,
    private readonly scheduler: Scheduler,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: DeadlinesOptions,
  ) {
    this.settler = new Settler(tx, clock, log, opts.batchSize, (kind, lateness) => this.onSettled(kind, lateness));
  }

  /** Adds a kind; its wake-up job is defined by the catalogue (src/scheduling/jobs.ts) around `runWakeup`. */
  register(kind: DeadlineKind): void {
    this.kinds.set(kind.name, kind);
  }

  names(): string[] {
    return [...this.kinds.keys()];
  }

  /** The handle a service is given at the composition root: arm this kind's wake-up no later than `at`. */
  armer(kindName: string): ArmDeadline {
    return (at) => this.arm(kindName, at);
  }

  /** Starts this instance's timers (after start-up recovery): they read every kind's row and listen. */
  async start(): Promise<void> {
    if (this.opts.timers === false || !this.opts.databaseUrl || this.timers) return;
    this.timers = new WakeupTimers(this.orm, this.opts.databaseUrl, this.clock, this.log, () => this.names(), (kind) => this.settleDue(kind, 'timer'));
    await this.timers.start();
  }

  /**
   * Stopping: the timers stop at once (the other instances' timers settle what comes due from now on)
   * and the LISTEN connection closes; resolves once the runs under way here have finished.
   */
  async stop(): Promise<void> {
    const timers = this.timers;
    this.timers = undefined;
    await timers?.stop();
    await Promise.allSettled([...this.runs.values()].map((r) => r.again ?? r.done));
  }

  /** Tells every instance's timers to read the kind's row again (an admin paused or resumed it). */
  async announce(kindName: string): Promise<void> {
    await notifySql(this.kind(kindName).name).execute(this.orm.em.fork().getKysely());
  }

  /**
   * After a deadline was created or moved earlier (and committed): make sure the kind is armed no
   * later than `at`. Cheap when it already is.
   */
  async arm(kindName: string, at: Date): Promise<void> {
    const kind = this.kind(kindName);
    // Fast path, the common case: already armed early enough. FOR SHARE does not block other arms,
    // but waits for a writer holding the row, so it never reads an armed time a re-arm is replacing.
    // One statement on its own (its implicit transaction holds the lock for as long as it runs): as
    // BEGIN, SELECT and COMMIT it was 20-30 ms of each flash-sale batch under load (docs/benchmarks.md).
    const {
      rows: [row],
    } = await sql<{ wake_at: Date | string | null }>`select wake_at from deadline_wakeups where kind = ${kind.name} for share`.execute(this.orm.em.fork().getKysely());
    if (row?.wake_at && new Date(row.wake_at).getTime() <= at.getTime()) return;
    const armed = await withWakeupRow(this.orm, kind.name, async (em, row): Promise<Armed | undefined> => {
      if (row.wakeAt !== null && row.wakeAt.getTime() <= at.getTime()) return undefined;
      return this.schedule(em, row, at);
    });
    if (armed) await this.committed(kind.name, armed);
  }

  /**
   * The one entry point, for the timers and the backstop alike: settles every deadline of the kind due
   * now, then re-arms at the next one. One run per kind at a time on this instance: a call during a run
   * gets one more run after it (shared by every such call), never a second one beside it. Instances
   * run side by side: they split the due rows (SKIP LOCKED) and settle each by a conditional update.
   * `armId`: the wake-up job's own arm, which its run consumed (see `rearm`).
   */
  settleDue(kindName: string, via: Via = 'wake-up', armId?: string): Promise<WakeResult> {
    const kind = this.kind(kindName);
    const running = this.runs.get(kind.name);
    if (!running) {
      const run = this.runOnce(kind, via, armId).finally(() => this.runs.delete(kind.name));
      this.runs.set(kind.name, { done: run.catch(() => undefined) });
      return run;
    }
    running.again ??= running.done.then(() => this.settleDue(kind.name, via, armId));
    return Promise.all([running.done, running.again]).then(([ahead, again]) => ({ ...again, settledAhead: ahead?.settled ?? 0 }));
  }

  /** `settleDue` by the name the integration tests of the services use. */
  wake(kindName: string): Promise<WakeResult> {
    return this.settleDue(kindName);
  }

  /** The wake-up job's body: settle what is due, and fail the run (Agenda records it) if some could not be. */
  async runWakeup(payload: WakeupPayload): Promise<void> {
    const { failed } = await this.settleDue(payload.kind, 'wake-up', payload.armId);
    if (failed.length > 0) throw new UnsettledDeadlines(payload.kind, failed);
  }

  /**
   * The sweep job's body: every kind (paused ones aside) settles what is due and re-arms. Throws when
   * some deadline could not be settled, after every kind had its turn, so the sweep job shows it.
   */
  async sweep(skipKinds: readonly string[] = []): Promise<number> {
    let settled = 0;
    const failures: UnsettledDeadlines[] = [];
    for (const name of this.names().filter((n) => !skipKinds.includes(n))) {
      const result = await this.settleDue(name, 'sweep');
      settled += result.settled;
      if (result.failed.length > 0) failures.push(new UnsettledDeadlines(name, result.failed));
    }
    if (failures.length > 0) throw new Error(failures.map((f) => f.message).join(' | '));
    return settled;
  }

  /** Start-up recovery for one kind: settles what came due while no server ran and re-arms. Returns [settled, pending before]. */
  async recover(kindName: string): Promise<[number, number]> {
    const kind = this.kind(kindName);
    const pending = await kind.countPending(this.orm.em.fork());
    // A wake-up job that started first settled them beside it: restored all the same.
    const result = await this.settleDue(kind.name, 'recovery');
    const settled = result.settled + (result.settledAhead ?? 0);
    this.log.info({ restored: settled, pending }, `Restored ${settled}/${pending} ${kind.label} tasks`);
    return [settled, pending];
  }

  /** How many deadlines each kind has pending, for the metrics. */
  pending(): Promise<Array<{ kind: string; count: number }>> {
    return pendingByKind(this.orm, [...this.kinds.values()]);
  }

  /** How long each kind's oldest pending deadline is past due, for the metrics (reads.ts). */
  oldestOverdue(): Promise<Array<{ kind: string; seconds: number }>> {
    return oldestOverdue(this.orm, [...this.kinds.values()], this.clock.now());
  }

  /** The armed time of every kind, for the jobs API. */
  armed(): Promise<Array<{ kind: string; wakeAt: Date | null }>> {
    return armedTimes(this.orm, this.names());
  }

  private kind(name: string): DeadlineKind {
    const kind = this.kinds.get(name);
    if (!kind) throw new Error(`unknown deadline kind "${name}"`);
    return kind;
  }

  private async runOnce(kind: DeadlineKind, via: Via, armId: string | undefined): Promise<WakeResult> {
    const goOn = () => this.timers !== undefined && !this.timers.paused(kind.name);
    const { result, lastRoundAt } = await this.settler.settleWhileDue(kind, via, goOn);
    await this.rearm(kind, armId, lastRoundAt);
    return result;
  }

  /**
   * Re-arms at the kind's next deadline, only when the armed time is due or overdue (its run is this
   * one, or one beside it on another instance) or later than the next deadline; an armed time still
   * ahead and early enough stays. A wake-up job run before its time (a clock behind) consumed its own
   * arm (`armId`): it is saved again. A deadline already due when the run began and still due after it
   * is held by a run elsewhere (SKIP LOCKED): this instance's timer looks again a moment later (`idle`),
   * in case that run dies. One that came due during the run is run for at once by this instance's
   * timer. Neither changes the row (already due, it is early enough): re-arming at it would wake every
   * instance to find it taken. Unless no timer here runs again (stopping, or DEADLINE_TIMERS=false):
   * then one that came due during the run is armed anew, which tells every instance's timer at once
   * and saves a wake-up job. Left as it was, the row told nobody: the other instances' timers found
   * such deadlines only when they looked again at deadlines held elsewhere (after 10 ms, 20, …), and on
   * an instance without timers they waited for the sweep.
   */
  private async rearm(kind: DeadlineKind, armId: string | undefined, startedAt: number): Promise<void> {
    const now = this.clock.now().getTime();
    const armed = await withWakeupRow(this.orm, kind.name, async (em, row): Promise<Armed> => {
      const next = await this.settler.nextDeadline(kind, em);
      const at = row.wakeAt?.getTime() ?? null;
      const earlyEnough = at !== null && (next === null || at <= next.getTime());
      if (earlyEnough && at > now && (armId === undefined || row.armId !== armId)) return { at: row.wakeAt };
      if (next !== null && earlyEnough && at <= now && next.getTime() <= now) {
        if (next.getTime() <= startedAt) return { at: row.wakeAt, idle: true };
        if (this.timers) return { at: next };
        return this.schedule(em, row, next);
      }
      if (next !== null) return this.schedule(em, row, next);
      if (row.wakeAt === null) return { at: null };
      const replaced = { armId: row.armId, wakeAt: row.wakeAt };
      row.wakeAt = null;
      row.armId = null;
      await notifySql(kind.name).execute(em.getKysely());
      // A replaced wake-up still ahead would only wake to find nothing: dropped.
      const drop = replaced.armId !== null && replaced.armId !== armId && replaced.wakeAt.getTime() > now;
      return { at: null, calls: drop ? () => this.cancelArm(kind.name, replaced.armId!) : undefined };
    });
    await this.committed(kind.name, armed);
  }

  /** After the row's commit: this instance's timer first, then the job store (see `schedule`). */
  private async committed(kind: string, armed: Armed): Promise<void> {
    this.timers?.set(kind, armed.at, armed.idle);
    await armed.calls?.();
  }

  /**
   * Records a new wake-up at `at` on the locked row, announces it, and returns the job-store calls to
   * make once the row's transaction has committed: save the wake-up job, and cancel the one it
   * replaces. Never under the row's lock: every arm of the kind waits for that lock (even the fast
   * path's FOR SHARE), and a job store that is away (MongoDB: serverSelectionTimeoutMS, 5 s) would hold
   * all of them, and a PostgreSQL connection each, for as long. Committed first, the row can name a job
   * not saved: every instance's timer follows the row, so its deadlines are still settled on time, and
   * a later arm or the sweep saves a job again. An arm replaced before its save landed may have had its
   * cancel come first: once saved, it checks that it is still the row's and cancels itself if not.
   */
  private async schedule(em: EntityManager, row: DeadlineWakeup, at: Date): Promise<Armed> {
    const kind = row.kind;
    const replaced = { armId: row.armId, wakeAt: row.wakeAt };
    const armId = randomUUID();
    row.wakeAt = at;
    row.armId = armId;
    await notifySql(kind).execute(em.getKysely());
    const calls = async () => {
      await this.scheduler.schedule(at, wakeJobName(kind), { kind, armId } satisfies WakeupPayload);
      const {
        rows: [current],
      } = await sql<{ arm_id: string | null }>`select arm_id from deadline_wakeups where kind = ${kind}`.execute(this.orm.em.fork().getKysely());
      // A replaced wake-up still in the future would only wake to find nothing: drop it.
      if (replaced.armId && replaced.wakeAt && replaced.wakeAt.getTime() > this.clock.now().getTime()) {
        await this.cancelArm(kind, replaced.armId);
      }
      if (current?.arm_id !== armId) await this.cancelArm(kind, armId);
    };
    return { at, calls };
  }

  private async cancelArm(kind: string, armId: string): Promise<void> {
    await this.scheduler.cancel({ name: wakeJobName(kind), data: { armId } });
  }

}

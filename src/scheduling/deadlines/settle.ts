import type { EntityManager } from '@mikro-orm/postgresql';
import type { Clock } from '../../clock.js';
import type { Transactions } from '../../db/transactions.js';
import type { Logger } from '../../logger.js';
import type { DeadlineKind, SettleFailure, Settled, Via, WakeResult } from './kind.js';

/** How long one run goes on settling deadlines that keep coming due (see `settleWhileDue`). */
const MAX_RUN_MS = 1_000;

/** A failed deadline is retried after 1, 2, 4 … seconds, at most a minute apart. */
const retryDelayMs = (attempts: number) => Math.min(60_000, 1000 * 2 ** (attempts - 1));

interface Retry {
  at: number;
  attempts: number;
  reason: string;
}

/**
 * Settling what is due, in batches: one conditional update per deadline inside the kind's own
 * `settleDue`, `lanes` batches at once while a backlog lasts, and a deadline that fails kept out of
 * the batches (and out of the next deadline) until its retry is due. The retries are this instance's
 * memory: another instance tries such a deadline at its own next run, and the first to succeed wins.
 */
export class Settler {
  /** Per kind: deadlines whose settling failed, and when to try them again. */
  private readonly retries = new Map<string, Map<string, Retry>>();

  constructor(
    private readonly tx: Transactions,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly batchSize: number,
    /** Told after each committed batch how late (ms, settled − due) its deadlines were: the lateness metric. */
    private readonly onSettled: (kind: string, latenessMs: number[]) => void,
  ) {}

  private retriesOf(kind: string): Map<string, Retry> {
    let retries = this.retries.get(kind);
    if (!retries) this.retries.set(kind, (retries = new Map<string, Retry>()));
    return retries;
  }

  /** The earliest of the kind's next deadline (failed ones aside) and its next retry. */
  async nextDeadline(kind: DeadlineKind, em: EntityManager): Promise<Date | null> {
    const retries = this.retriesOf(kind.name);
    const next = await kind.nextDeadline(em, [...retries.keys()]);
    const retryAt = Math.min(...[...retries.values()].map((r) => r.at));
    if (!Number.isFinite(retryAt)) return next;
    return next === null || retryAt < next.getTime() ? new Date(retryAt) : next;
  }

  /**
   * `settle`, then again at once for as long as rounds settle something: deadlines coming due a few ms
   * apart are taken by the run under way, with no re-arm between rounds (a transaction on the kind's
   * row: 1,000 ends spread over a second were settled 2.5× later at p99 with one after every round).
   * A round that settles nothing ends the run (nothing more is due, or the rest is held by a run
   * elsewhere), as do MAX_RUN_MS and `goOn` (stopping, paused). `lastRoundAt`: when the last round
   * began (a deadline due then and still due after it is held elsewhere).
   */
  async settleWhileDue(kind: DeadlineKind, via: Via, goOn: () => boolean): Promise<{ result: WakeResult; lastRoundAt: number }> {
    const began = this.clock.now().getTime();
    let lastRoundAt = began;
    let settled = 0;
    for (;;) {
      const round = await this.settle(kind, via);
      // The next round begins once this one's events are out. Begun beside them, rounds were smaller
      // and more (1,000 ends spread over a second: 526 rounds against 398), each one a transaction, an
      // outbox row and a publication: PostgreSQL spent 0.40 s of CPU against 0.35, Node 0.85 against
      // 0.75 (medians of 6; docs/benchmarks.md, "The deadline engine as one mechanism").
      await round.published;
      settled += round.settled;
      if (round.settled === 0 || this.clock.now().getTime() - began >= MAX_RUN_MS || !goOn()) {
        return { result: { settled, failed: round.failed }, lastRoundAt };
      }
      lastRoundAt = this.clock.now().getTime();
    }
  }

  /**
   * Settles every deadline of the kind due now, in batches, until one comes back short. A deadline
   * that fails is logged and left for its retry; the others go on. Resolves once every batch has
   * committed; `published` once their events have been published too.
   */
  private async settle(kind: DeadlineKind, via: Via): Promise<WakeResult & { published: Promise<void> }> {
    const batchSize = kind.batchSize ?? this.batchSize;
    const retries = this.retriesOf(kind.name);
    let settled = 0;
    const failed: SettleFailure[] = [];
    // Retries not yet due are skipped; one that is due is tried again with the rest.
    const skip = new Set([...retries].filter(([, r]) => r.at > this.clock.now().getTime()).map(([id]) => id));
    const waiting = new Set(skip);
    const failedNow = new Set<string>();
    const lanes = Math.max(1, kind.lanes ?? 1);
    // Bookkeeping of one committed batch, before the next one of any lane is started.
    const record = (result: Settled, published: Promise<void>) => {
      settled += result.settled.length;
      if (result.dueAt?.length) {
        const at = this.clock.now().getTime();
        const lateness = result.dueAt.flatMap((d) => (d ? [at - d.getTime()] : []));
        // Counted once the batch's events are out (`published` never rejects): observing 1,000 values
        // took 3–8 ms of the thread that writes the first batch's events to the subscribers.
        published
          .then(() => this.onSettled(kind.name, lateness))
          .catch((err: unknown) => this.log.warn({ err, kind: kind.name }, 'deadlines: counting the settled batch failed'));
      }
      if (result.settled.length > 0) this.log.info({ kind: kind.name, ids: result.settled, via }, 'deadlines settled');
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
    // rest is settled, skipped, or held by another transaction: another lane, run or instance).
    const lane = async (onFull?: () => void): Promise<{ publishing: Promise<void> }> => {
      let publishing: Promise<void> = Promise.resolve();
      for (;;) {
        const { result, published } = await this.tx.runThenPublish((uow) => kind.settleDue(uow, batchSize, [...skip]));
        record(result, published);
        // At most one batch's events in flight per lane while its next batch is written.
        await publishing;
        publishing = published;
        if (result.settled.length + result.failed.length < batchSize) return { publishing };
        onFull?.();
      }
    };
    // The other lanes start only once a batch came back full: a deadline or two due at a time
    // (the usual case) costs one transaction, not one per lane.
    const others: Array<Promise<{ publishing: Promise<void> }>> = [];
    const ends = await Promise.allSettled([
      lane(() => {
        while (others.length < lanes - 1) others.push(lane());
      }),
    ]);
    // Every lane has finished before a failure of one is thrown: none is left running unobserved.
    ends.push(...(await Promise.allSettled(others)));
    const broken = ends.find((e) => e.status === 'rejected');
    if (broken) throw broken.reason;
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
    const published = Promise.all(ends.flatMap((e) => (e.status === 'fulfilled' ? [e.value.publishing] : []))).then(() => undefined);
    return { settled, failed, published };
  }
}

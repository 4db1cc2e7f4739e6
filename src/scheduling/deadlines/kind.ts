import { LockMode } from '@mikro-orm/core';
import type { EntityManager, MikroORM } from '@mikro-orm/postgresql';
import { sql } from 'kysely';
import type { UnitOfWork } from '../../db/transactions.js';
import { DeadlineWakeup } from '../../entities/DeadlineWakeup.js';

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

/** A run's outcome: how many it settled, and the deadlines it could not settle (retried later). */
export interface WakeResult {
  settled: number;
  failed: SettleFailure[];
  /** A call that waited behind a run under way: what that run settled (not this call's own). */
  settledAhead?: number;
}

/**
 * What started a run of `settleDue`, as the `deadlines settled` log line names it: an instance's own
 * timer (the mechanism), or one of the backstop's three (the wake-up job, the sweep, start-up recovery).
 */
export type Via = 'timer' | 'wake-up' | 'sweep' | 'recovery';

/** Thrown by a wake-up or sweep job whose run left deadlines it could not settle, so Agenda records the failure. */
export class UnsettledDeadlines extends Error {
  constructor(kind: string, failed: SettleFailure[]) {
    super(`${failed.length} ${kind} deadline(s) could not be settled: ${failed.map((f) => `${f.id} (${f.reason})`).join('; ')}`);
    this.name = 'UnsettledDeadlines';
  }
}

export const wakeJobName = (kind: string) => `deadline:${kind}`;

/** What a wake-up job carries: its kind, and which arm scheduled it (so a replaced one can be cancelled). */
export interface WakeupPayload {
  kind: string;
  armId?: string;
}

/** The narrow handle a service gets for one kind: "a deadline of mine is now at `at`". */
export type ArmDeadline = (at: Date) => Promise<void>;

/**
 * The PostgreSQL channel on which a change of a kind's armed time is announced (payload: the kind),
 * sent inside the transaction that makes it, so every instance hears it once it is committed.
 */
export const WAKEUPS_CHANNEL = 'deadline_wakeups';

/** The announcement of `kind`'s new armed time on WAKEUPS_CHANNEL. */
export const notifySql = (kind: string) => sql`select pg_notify(${WAKEUPS_CHANNEL}, ${kind})`;

/**
 * Runs `work` holding the kind's wake-up row lock (the row is created on first use); what `work`
 * changes on the row is written when the transaction commits.
 */
export function withWakeupRow<T>(orm: MikroORM, kind: string, work: (em: EntityManager, row: DeadlineWakeup) => Promise<T>): Promise<T> {
  return orm.em.fork().transactional(async (em) => {
    await em.createQueryBuilder(DeadlineWakeup).insert({ kind }).onConflict('kind').ignore().execute();
    const row = await em.findOneOrFail(DeadlineWakeup, { kind }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    return work(em, row);
  });
}

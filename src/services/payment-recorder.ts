import type { Transactions } from '../db/transactions.js';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import type { Logger } from '../logger.js';
import { GroupQueue, type GroupOptions, type Waiting } from './group-queue.js';
import type { PaymentService, PaymentToRecord, RecordOutcome } from './payments.js';

/** A payment's outcome once its transaction committed, and its events' publication (under way). */
export interface Recorded {
  outcome: RecordOutcome;
  published: Promise<void>;
}

type Payment = Waiting<PaymentToRecord, Recorded>;

/**
 * Records provider payments (callbacks, reconciliation) in groups, as a database commits in groups:
 * a payment that arrives while `inFlight` transactions are open waits, and the next transaction
 * records every payment waiting by then (up to `maxGroup`) with a few set-based statements
 * (`PaymentService.recordMany`). Alone, a payment is recorded at once in a transaction of its own.
 * One transaction per callback, ~14 statements each, held callbacks to 245/s (docs/benchmarks.md).
 * One transaction at a time makes the groups larger: 1,285–1,304 callbacks/s against 1,168 with two.
 *
 * A group that fails as a whole is recorded again one payment per transaction, so one payment that
 * cannot be recorded fails alone; PostgreSQL unreachable fails the whole group at once.
 */
export class PaymentRecorder {
  private readonly queue: GroupQueue<PaymentToRecord, Recorded>;

  constructor(
    private readonly tx: Transactions,
    private readonly payments: PaymentService,
    private readonly log: Logger,
    opts: GroupOptions = { maxGroup: 100, inFlight: 1 },
  ) {
    this.queue = new GroupQueue((group) => this.commit(group), opts);
  }

  /** Resolves at the commit of the transaction that recorded it; rejects when it was not recorded. */
  record(item: PaymentToRecord): Promise<Recorded> {
    return this.queue.add(item);
  }

  private async commit(group: Payment[]): Promise<void> {
    try {
      const { result, published } = await this.tx.runThenPublish((uow) => this.payments.recordMany(uow, group.map((w) => w.item)));
      group.forEach((w, i) => w.resolve({ outcome: result[i], published }));
    } catch (err) {
      if (group.length === 1 || isDatabaseUnavailable(err)) {
        for (const w of group) w.reject(err);
        return;
      }
      this.log.warn({ err, payments: group.length }, 'a group of payments could not be recorded together; recording them one by one');
      for (const w of group) await this.commit([w]);
    }
  }
}

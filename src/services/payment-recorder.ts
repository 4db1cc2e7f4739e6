import type { Transactions } from '../db/transactions.js';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import type { Logger } from '../logger.js';
import type { PaymentService, PaymentToRecord, RecordOutcome } from './payments.js';

/** A payment's outcome once its transaction committed, and its events' publication (under way). */
export interface Recorded {
  outcome: RecordOutcome;
  published: Promise<void>;
}

interface Waiting {
  item: PaymentToRecord;
  resolve: (recorded: Recorded) => void;
  reject: (err: unknown) => void;
}

export interface RecorderOptions {
  /** Payments in one transaction at most. */
  maxGroup: number;
  /** Transactions open at once (each holds a connection of the pool). */
  inFlight: number;
}

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
  private readonly waiting: Waiting[] = [];
  private open = 0;

  constructor(
    private readonly tx: Transactions,
    private readonly payments: PaymentService,
    private readonly log: Logger,
    private readonly opts: RecorderOptions = { maxGroup: 100, inFlight: 1 },
  ) {}

  /** Resolves at the commit of the transaction that recorded it; rejects when it was not recorded. */
  record(item: PaymentToRecord): Promise<Recorded> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.next();
    });
  }

  private next(): void {
    while (this.open < this.opts.inFlight && this.waiting.length > 0) {
      const group = this.waiting.splice(0, this.opts.maxGroup);
      this.open++;
      void this.commit(group).finally(() => {
        this.open--;
        this.next();
      });
    }
  }

  private async commit(group: Waiting[]): Promise<void> {
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

import type { EntityManager } from '@mikro-orm/postgresql';
import type { Transactions } from '../../db/transactions.js';
import { isDatabaseUnavailable } from '../../db/unavailable.js';
import { Payment } from '../../entities/Payment.js';
import { Refund } from '../../entities/Refund.js';
import type { Logger } from '../../logger.js';
import { ProviderUnavailable, type RefundStatus } from '../../payments/provider.js';
import type { Providers } from '../../payments/registry.js';
import { GroupQueue, type Waiting } from '../group-queue.js';
import type { ProviderAnswer, RefundService, SettleOutcome } from './service.js';

type Answer = { refundId: string; answer: ProviderAnswer };

export interface RefundReconcileOptions {
  batchSize: number;
  concurrency: number;
}

/** One run's summary, logged and returned (the job's run record keeps it). */
export interface RefundReconcileSummary {
  totalChecked: number;
  succeeded: number;
  failed: number;
  /** Still PROCESSING at the provider: asked again next run. */
  processing: number;
  errors: number;
}

/** Every provider call of a run failed as unreachable: the run fails (task health says so); the next one tries again. */
export class RefundReconciliationFailed extends Error {
  constructor(readonly summary: RefundReconcileSummary, cause: unknown) {
    super(`refund reconciliation failed: ${summary.errors} of ${summary.totalChecked} provider calls failed (${(cause as Error)?.message ?? cause})`);
    this.name = 'RefundReconciliationFailed';
  }
}

/**
 * The backstop for refunds whose end nobody told us (a lost notification, an answer lost on the way,
 * a crash between the refund's commit and its provider call): PENDING refunds, oldest first, at most a
 * batch, asked about at their provider `concurrency` at a time with no transaction open. Finished
 * there → settled here through RefundService.settleMany, in groups (whichever of it and a
 * notification comes first wins once); unknown there → asked for again with the same out_refund_no (the provider refunds one
 * attempt once), and that answer settled; still processing → left for the next run. One refund's
 * failure is counted and the others go on.
 */
export class RefundReconciliation {
  constructor(
    private readonly tx: Transactions,
    private readonly providers: Providers,
    private readonly refunds: RefundService,
    private readonly log: Logger,
    private readonly opts: RefundReconcileOptions,
  ) {}

  /**
   * Answers settled in groups, one transaction at a time: the answers that come while one group is
   * written go in the next (RefundService.settleMany), as payments are recorded (PaymentRecorder).
   * A group that fails as a whole is settled again one answer per transaction, so one refund that
   * cannot be settled fails alone; PostgreSQL unreachable fails them all at once.
   */
  private readonly settler = new GroupQueue<Answer, { outcome: SettleOutcome; published: Promise<void> }>((group) => this.commit(group), {
    maxGroup: 100,
    inFlight: 1,
  });

  async run(em: EntityManager): Promise<RefundReconcileSummary> {
    const pending = await em.find(Refund, { status: 'PENDING', outRefundNo: { $ne: null } }, { orderBy: { id: 'asc' }, limit: this.opts.batchSize });
    const payments = new Map(
      (await em.find(Payment, { id: { $in: [...new Set(pending.map((r) => r.paymentId!))] } })).map((p) => [p.id, p]),
    );
    const summary: RefundReconcileSummary = { totalChecked: pending.length, succeeded: 0, failed: 0, processing: 0, errors: 0 };
    let unreachable = 0;
    let lastError: unknown;
    const failed = (refund: Refund, err: unknown) => {
      summary.errors++;
      lastError = err;
      if (err instanceof ProviderUnavailable) unreachable++;
      this.log.warn({ err, refundId: refund.id, outRefundNo: refund.outRefundNo }, 'reconciliation of a refund failed; the next run tries again');
    };
    // Provider calls and writes overlap: a worker hands its answer to the settler and makes its next
    // call at once; `concurrency` bounds the writes in flight as it bounds the calls.
    const writing = new Set<Promise<void>>();
    const published: Array<Promise<void>> = [];
    let next = 0;
    const worker = async () => {
      while (next < pending.length) {
        const refund = pending[next++];
        let answer: RefundStatus;
        try {
          answer = await this.ask(refund, payments.get(refund.paymentId!)!);
        } catch (err) {
          failed(refund, err);
          continue;
        }
        if (answer.state === 'PROCESSING' || answer.state === 'NOT_FOUND') {
          summary.processing++;
          continue;
        }
        while (writing.size >= this.opts.concurrency) await Promise.race(writing);
        const done: Promise<void> = this.settler.add({ refundId: refund.id, answer }).then(
          ({ outcome, published: p }) => {
            published.push(p);
            if (outcome === 'SUCCEEDED') summary.succeeded++;
            else if (outcome === 'FAILED') summary.failed++;
          },
          (err) => failed(refund, err),
        );
        writing.add(done);
        void done.finally(() => writing.delete(done));
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.concurrency, pending.length) }, worker));
    await Promise.all(writing);
    await Promise.all(published);
    this.log.info(summary, 'refund reconciliation finished');
    if (pending.length > 0 && unreachable === pending.length) throw new RefundReconciliationFailed(summary, lastError);
    return summary;
  }

  private async commit(group: Array<Waiting<Answer, { outcome: SettleOutcome; published: Promise<void> }>>): Promise<void> {
    try {
      const { result, published } = await this.tx.runThenPublish((uow) => this.refunds.settleMany(uow, group.map((w) => w.item)));
      group.forEach((w, i) => w.resolve({ outcome: result[i].outcome, published }));
    } catch (err) {
      if (group.length === 1 || isDatabaseUnavailable(err)) {
        for (const w of group) w.reject(err);
        return;
      }
      this.log.warn({ err, refunds: group.length }, 'a group of refunds could not be settled together; settling them one by one');
      for (const w of group) await this.commit([w]);
    }
  }

  /** The refund's state at its provider; one it never received is asked for again, once, with the same number. */
  private async ask(refund: Refund, payment: Payment): Promise<RefundStatus> {
    const provider = await this.providers.byName(refund.provider!);
    if (!provider) throw new Error(`refund ${refund.outRefundNo} was made at ${refund.provider}, which this server does not serve`);
    const request = this.refunds.request(refund, payment);
    const status = await provider.queryRefund(request);
    return status.state === 'NOT_FOUND' ? provider.refund(request) : status;
  }
}

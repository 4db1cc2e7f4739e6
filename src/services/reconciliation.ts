import type { EntityManager } from '@mikro-orm/postgresql';
import type { Transactions } from '../db/transactions.js';
import type { Order } from '../entities/Order.js';
import type { Logger } from '../logger.js';
import { ProviderUnavailable, type PaymentProvider } from '../payments/provider.js';
import type { Providers } from '../payments/registry.js';
import type { OrderSettlement } from './orders/settle.js';
import type { PaymentRecorder } from './payments/record.js';
import { staleOrders } from './payments/sql.js';

export interface ReconcileOptions {
  thresholdMinutes: number;
  batchSize: number;
  concurrency: number;
  closeAfterMinutes: number;
}

/** The seed's summary of one run. */
export interface ReconcileSummary {
  totalChecked: number;
  synced: number;
  closed: number;
  errors: number;
}

/** Thrown when every provider call of a run failed (provider unreachable): the run is retried as a whole. */
export class ReconciliationFailed extends Error {
  constructor(readonly summary: ReconcileSummary, cause: unknown) {
    super(`payment reconciliation failed: ${summary.errors} of ${summary.totalChecked} provider calls failed (${(cause as Error)?.message ?? cause})`);
    this.name = 'ReconciliationFailed';
  }
}

/**
 * Repairs what a lost callback left: PENDING online orders older than the threshold, oldest first,
 * at most a batch, are asked about at their provider, `concurrency` calls at a time, with no
 * transaction open during a call. Paid there → PAID here (COMPENSATE) through the PaymentRecorder; unpaid
 * past `closeAfterMinutes` → closed there and EXPIRED here; closed there → EXPIRED here. One order's
 * failure is counted and the others go on.
 */
export class Reconciliation {
  constructor(
    private readonly tx: Transactions,
    private readonly providers: Providers,
    private readonly recorder: PaymentRecorder,
    private readonly settlement: OrderSettlement,
    private readonly log: Logger,
    private readonly opts: ReconcileOptions,
    private readonly now: () => Date,
  ) {}

  /** Told each run's summary and whether the run failed: the reconciliation metrics. */
  onSummary: (summary: ReconcileSummary, failed: boolean) => void = () => {};

  async run(em: EntityManager): Promise<ReconcileSummary> {
    const now = this.now();
    const stale = await staleOrders(em, new Date(now.getTime() - this.opts.thresholdMinutes * 60_000), this.opts.batchSize);
    const summary: ReconcileSummary = { totalChecked: stale.length, synced: 0, closed: 0, errors: 0 };
    let lastError: unknown;
    let unreachable = 0;
    const failed = (order: Order, err: unknown) => {
      summary.errors++;
      lastError = err;
      if (err instanceof ProviderUnavailable) unreachable++;
      this.log.warn({ err, orderId: order.id, orderNo: order.orderNo }, 'reconciliation of an order failed; the next run tries again');
    };
    // Provider calls and database writes overlap: a worker hands what it learned to a writer and makes
    // its next call at once. `concurrency` bounds both the calls and the writes in flight (at 5 calls of
    // ~23 ms each, waiting for each write as well held the run to 135 orders/s, docs/benchmarks.md).
    const writing = new Set<Promise<void>>();
    const published: Array<Promise<void>> = [];
    let next = 0;
    const worker = async () => {
      while (next < stale.length) {
        const { order, provider } = stale[next++];
        let write: (() => Promise<{ outcome: Outcome; published: Promise<void> }>) | null;
        try {
          write = await this.decide(order, await this.providerOf(provider, order), now);
        } catch (err) {
          failed(order, err);
          continue;
        }
        if (!write) continue;
        while (writing.size >= this.opts.concurrency) await Promise.race(writing);
        const done: Promise<void> = write().then(
          ({ outcome, published: p }) => {
            published.push(p);
            if (outcome === 'synced') summary.synced++;
            if (outcome === 'closed') summary.closed++;
          },
          (err) => failed(order, err),
        );
        writing.add(done);
        void done.finally(() => writing.delete(done));
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.concurrency, stale.length) }, worker));
    await Promise.all(writing);
    await Promise.all(published);
    this.log.info(summary, 'payment reconciliation finished');
    const runFailed = stale.length > 0 && unreachable === stale.length;
    this.onSummary(summary, runFailed);
    if (runFailed) throw new ReconciliationFailed(summary, lastError);
    return summary;
  }

  /**
   * The provider the order was started at (its intent's), never another: asking another would read
   * "no such trade" as unpaid and close an order that may be paid where it was started. An order
   * started at a provider this server no longer serves (the sandbox, switched off) is an error here
   * and expires at its deadline. Without an intent, the provider its method is paid at.
   */
  private async providerOf(name: string | null, order: Order): Promise<PaymentProvider> {
    if (!name) return this.providers.forMethod(order.paymentMethod);
    const provider = await this.providers.byName(name);
    if (!provider) throw new Error(`order ${order.orderNo} was started at ${name}, which this server does not serve`);
    return provider;
  }

  /**
   * Asks the provider (and closes the trade there when it is unpaid too long); returns the write to
   * make here, or null when there is nothing to change. No transaction is open during the calls.
   */
  private async decide(order: Order, provider: PaymentProvider, now: Date): Promise<(() => Promise<{ outcome: Outcome; published: Promise<void> }>) | null> {
    const trade = await provider.query(order.orderNo);
    if (trade.state === 'PAID') {
      return async () => {
        const { outcome, published } = await this.recorder.record({
          provider: provider.name,
          paid: { orderNo: order.orderNo, transactionId: trade.transactionId!, amount: trade.amount!, paidAt: trade.paidAt ?? now },
          source: 'COMPENSATE',
        });
        return { outcome: outcome.outcome === 'PAID' ? 'synced' : 'unchanged', published };
      };
    }
    const ageMinutes = (now.getTime() - order.createdAt.getTime()) / 60_000;
    if (trade.state === 'UNPAID' && ageMinutes < this.opts.closeAfterMinutes) return null;
    // Unpaid too long: close it there first, so it cannot be paid after it expires here.
    if (trade.state === 'UNPAID') await provider.close(order.orderNo);
    const reason =
      trade.state === 'CLOSED'
        ? `Closed at ${provider.name} (${trade.providerState})`
        : `Not paid at ${provider.name} within ${this.opts.closeAfterMinutes} minutes: closed there`;
    return async () => {
      const { result, published } = await this.tx.runThenPublish((uow) => this.settlement.expireNow(uow, order.id, reason));
      return { outcome: result ? 'closed' : 'unchanged', published };
    };
  }
}

type Outcome = 'synced' | 'closed' | 'unchanged';

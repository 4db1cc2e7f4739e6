import { LockMode } from '@mikro-orm/core';
import type { Transactions, UnitOfWork } from '../../db/transactions.js';
import { isDatabaseUnavailable } from '../../db/unavailable.js';
import { Order } from '../../entities/Order.js';
import { Payment, type PaymentSource } from '../../entities/Payment.js';
import { PaymentIntent } from '../../entities/PaymentIntent.js';
import { PaymentNotification } from '../../entities/PaymentNotification.js';
import { paymentWire } from '../../events/types.js';
import type { Logger } from '../../logger.js';
import type { Providers } from '../../payments/registry.js';
import type { ProviderName } from '../../payments/provider.js';
import { GroupQueue, type GroupOptions, type Waiting } from '../group-queue.js';
import type { OrderSettlement } from '../orders/settle.js';
import { isOnline, onlinePart } from './online.js';
import { insertPayments } from './sql.js';

/** What a provider says it was paid (a callback, or reconciliation's query). */
export interface ProviderPayment {
  orderNo: string;
  transactionId: string;
  amount: number;
  paidAt: Date;
  /** Callbacks only: the provider's notification id. */
  notificationId?: string;
}

/** A payment to record: what the provider said, and how it was learnt. */
export interface PaymentToRecord {
  provider: ProviderName;
  paid: ProviderPayment;
  source: PaymentSource;
}

/** One provider's id of something (a transaction, a notification) as one map key. */
const byProvider = (provider: string, id: string) => `${provider}\u0000${id}`;
const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** DUPLICATE: seen before (by notification id or transaction id), nothing changed. */
export type RecordOutcome = { outcome: 'PAID'; payment: Payment } | { outcome: 'NEEDS_REFUND'; payment: Payment } | { outcome: 'DUPLICATE' };

/**
 * Recording what a provider took, exactly once per notification and per provider transaction, through
 * the order's settlement. Money never disappears: a payment that cannot pay its order is kept with
 * `needsRefund` and announced.
 */
export class PaymentRecords {
  constructor(
    private readonly providers: Providers,
    private readonly settlement: OrderSettlement,
    private readonly log: Logger,
  ) {}

  /**
   * Records money providers took, many payments in one transaction (`PaymentRecorder` groups them):
   * a callback is recognised by its notification id first (a replay changes nothing), then every
   * payment once per (provider, transaction). The orders are locked first, in id order, so a callback
   * and a reconciliation of the same payment queue and the second finds the first's row. A PENDING
   * order with the right amount becomes PAID; anything else is kept for a refund. Outcomes are in
   * the order of `items`, as if they had been recorded one after the other.
   */
  async recordMany(uow: UnitOfWork, items: readonly PaymentToRecord[]): Promise<RecordOutcome[]> {
    const outcomes: Array<RecordOutcome | undefined> = items.map(() => undefined);
    const fresh = await this.freshNotifications(uow, items);
    // `delete`: of two items with one notification id, only the first is fresh.
    const notified = items.flatMap((item, i) => {
      if (item.paid.notificationId === undefined || fresh.delete(byProvider(item.provider, item.paid.notificationId))) return [i];
      outcomes[i] = { outcome: 'DUPLICATE' };
      return [];
    });
    if (notified.length === 0) return outcomes as RecordOutcome[];

    // Property-named rows, locked in id order, before looking for the payments: a callback and a
    // reconciliation of one payment queue here, and the second finds the first's row.
    const locked = await uow.em
      .createQueryBuilder(Order)
      .select('*')
      .where({ orderNo: { $in: [...new Set(notified.map((i) => items[i].paid.orderNo))] } })
      .orderBy({ id: 'asc' })
      .setLockMode(LockMode.PESSIMISTIC_WRITE)
      .execute<Order[]>('all');
    const orders = new Map(locked.map((o) => [o.orderNo, o]));
    const startedAt = await this.startedAt(uow, locked);
    const seen = await this.seenTransactions(uow, notified.map((i) => items[i]));
    const live = notified.filter((i) => {
      const key = byProvider(items[i].provider, items[i].paid.transactionId);
      if (seen.has(key)) outcomes[i] = { outcome: 'DUPLICATE' };
      else seen.add(key);
      return outcomes[i] === undefined;
    });
    if (live.length === 0) return outcomes as RecordOutcome[];

    // As one after the other: the first right payment of a PENDING order pays it (by source, since
    // `paidVia` is one per order), a later one of the same order finds it PAID, or, when the first
    // could not pay it (its wallet part), fails for the same reason.
    const refundReasons = new Map<number, string>();
    const toPay = new Map<PaymentSource, Order[]>();
    const payerOf = new Map<string, number>();
    const laterOf = new Map<string, number[]>();
    for (const i of live) {
      const { paid, source, provider } = items[i];
      const order = orders.get(paid.orderNo);
      let reason: string | null = null;
      if (!order) reason = `no order has number ${paid.orderNo}`;
      else if (startedAt.get(String(order.id)) !== provider) reason = mismatch(provider, order, startedAt.get(String(order.id)) ?? null);
      else if (payerOf.has(order.id)) {
        reason = `order ${order.orderNo} is PAID`;
        laterOf.set(order.id, [...(laterOf.get(order.id) ?? []), i]);
      } else if (order.status !== 'PENDING') reason = `order ${order.orderNo} is ${order.status}`;
      else if (paid.amount !== onlinePart(order)) reason = `paid ${paid.amount} cents, the order asks ${onlinePart(order)}`;
      if (reason !== null) {
        refundReasons.set(i, reason);
        continue;
      }
      payerOf.set(order!.id, i);
      if (!toPay.has(source)) toPay.set(source, []);
      toPay.get(source)!.push(order!);
    }
    for (const [source, batch] of toPay) {
      const { failed } = await this.settlement.payOnline(uow, batch, source);
      for (const f of failed) for (const i of [payerOf.get(f.id)!, ...(laterOf.get(f.id) ?? [])]) refundReasons.set(i, f.reason);
    }

    const byKey = (i: number) => byProvider(items[i].provider, items[i].paid.transactionId);
    // In key order (the unique index's), so two groups inserting one transaction never wait in a cycle.
    const inserted = await insertPayments(
      uow.em,
      [...live]
        .sort((a, b) => compare(byKey(a), byKey(b)))
        .map((i) => {
          const { provider, paid, source } = items[i];
          const refundReason = refundReasons.get(i) ?? null;
          return {
            orderId: orders.get(paid.orderNo)?.id ?? null,
            orderNo: paid.orderNo,
            provider,
            transactionId: paid.transactionId,
            amount: paid.amount,
            paidAt: paid.paidAt,
            source,
            needsRefund: refundReason !== null,
            refundReason,
            createdAt: uow.now,
          };
        }),
    );
    const payments = new Map(inserted.map((p) => [byProvider(p.provider, p.transactionId), p]));
    const refunds: Payment[] = [];
    live.forEach((i) => {
      const payment = payments.get(byKey(i))!;
      if (!payment.needsRefund) {
        outcomes[i] = { outcome: 'PAID', payment };
        return;
      }
      outcomes[i] = { outcome: 'NEEDS_REFUND', payment };
      refunds.push(payment);
      this.log.warn({ orderNo: payment.orderNo, provider: payment.provider, transactionId: payment.transactionId, reason: payment.refundReason }, 'payment kept for a refund');
    });
    await uow.events.addMany(refunds.map((p) => ({ topic: 'PAYMENT_NEEDS_REFUND' as const, payload: { payment: paymentWire(p) } })));
    return outcomes as RecordOutcome[];
  }

  /**
   * The provider each order was started at: its intent's, or for an order whose intent is not stored
   * (yet: flash-sale intents are stored in groups after the provider answered) the one its method is
   * paid at here. Null: no provider takes money for it (WALLET, or a method this server cannot pay).
   * A payment from any other provider is money taken elsewhere: it never pays the order.
   */
  private async startedAt(uow: UnitOfWork, orders: readonly Order[]): Promise<Map<string, ProviderName | null>> {
    const started = new Map(orders.map((o) => [String(o.id), isOnline(o) ? this.providers.routeOf(o.paymentMethod) : null]));
    const online = orders.filter(isOnline).map((o) => String(o.id));
    if (online.length === 0) return started;
    const intents = await uow.em
      .createQueryBuilder(PaymentIntent)
      .select(['orderId', 'provider'])
      .where({ orderId: { $in: online } })
      .execute<Array<Pick<PaymentIntent, 'orderId' | 'provider'>>>('all');
    for (const intent of intents) started.set(String(intent.orderId), intent.provider);
    return started;
  }

  /** The callbacks' notification ids not seen before, inserted in one statement (a replay is not returned). */
  private async freshNotifications(uow: UnitOfWork, items: readonly PaymentToRecord[]): Promise<Set<string>> {
    // In key order, like every lock here: two groups inserting the same ids wait, never in a cycle.
    const notes = items
      .filter((item) => item.paid.notificationId !== undefined)
      .sort((a, b) => compare(byProvider(a.provider, a.paid.notificationId!), byProvider(b.provider, b.paid.notificationId!)));
    if (notes.length === 0) return new Set();
    const rows = await uow.em
      .createQueryBuilder(PaymentNotification)
      .insert(notes.map((n) => ({ provider: n.provider, notificationId: n.paid.notificationId!, orderNo: n.paid.orderNo, receivedAt: uow.now })))
      .onConflict(['provider', 'notificationId'])
      .ignore()
      .returning(['provider', 'notificationId'])
      .execute<Array<Pick<PaymentNotification, 'provider' | 'notificationId'>>>('all');
    return new Set(rows.map((r) => byProvider(r.provider, r.notificationId)));
  }

  /** Which of the items' provider transactions already have a payment. */
  private async seenTransactions(uow: UnitOfWork, items: readonly PaymentToRecord[]): Promise<Set<string>> {
    const found = await uow.em
      .createQueryBuilder(Payment)
      .select(['provider', 'transactionId'])
      .where({ transactionId: { $in: [...new Set(items.map((item) => item.paid.transactionId))] } })
      .execute<Array<Pick<Payment, 'provider' | 'transactionId'>>>('all');
    return new Set(found.map((p) => byProvider(p.provider, p.transactionId)));
  }
}

/** A payment's outcome once its transaction committed, and its events' publication (under way). */
export interface Recorded {
  outcome: RecordOutcome;
  published: Promise<void>;
}

type Queued = Waiting<PaymentToRecord, Recorded>;

/**
 * Records provider payments (callbacks, reconciliation) in groups, as a database commits in groups:
 * a payment that arrives while `inFlight` transactions are open waits, and the next transaction
 * records every payment waiting by then (up to `maxGroup`) with a few set-based statements
 * (`PaymentRecords.recordMany`). Alone, a payment is recorded at once in a transaction of its own.
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
    private readonly records: Pick<PaymentRecords, 'recordMany'>,
    private readonly log: Logger,
    opts: GroupOptions = { maxGroup: 100, inFlight: 1 },
  ) {
    this.queue = new GroupQueue((group) => this.commit(group), opts);
  }

  /** Resolves at the commit of the transaction that recorded it; rejects when it was not recorded. */
  record(item: PaymentToRecord): Promise<Recorded> {
    return this.queue.add(item);
  }

  private async commit(group: Queued[]): Promise<void> {
    try {
      const { result, published } = await this.tx.runThenPublish((uow) => this.records.recordMany(uow, group.map((w) => w.item)));
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

/** Why a payment from `provider` cannot pay `order`, started at `expected` (or at no provider). */
function mismatch(provider: ProviderName, order: Order, expected: ProviderName | null): string {
  return expected
    ? `provider mismatch: paid at ${provider}, order started at ${expected}`
    : `provider mismatch: paid at ${provider}, order ${order.orderNo} (${order.paymentMethod}) is not paid at a provider here`;
}

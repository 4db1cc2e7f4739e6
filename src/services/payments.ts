import { LockMode, type FilterQuery } from '@mikro-orm/core';
import { sql } from 'kysely';
import type { EntityManager } from '@mikro-orm/postgresql';
import { rowsAs } from '../db/rows.js';
import type { Transactions, UnitOfWork } from '../db/transactions.js';
import { ONLINE_METHODS, Order } from '../entities/Order.js';
import { Payment, PAYMENT_PROVIDERS, type PaymentProviderName, type PaymentSource } from '../entities/Payment.js';
import { PaymentIntent } from '../entities/PaymentIntent.js';
import { PaymentNotification } from '../entities/PaymentNotification.js';
import { badInput, forbidden, unavailable } from '../errors.js';
import { paymentWire } from '../events/types.js';
import type { Logger } from '../logger.js';
import type { Providers } from '../payments/registry.js';
import type { PaymentIntent as ProviderIntent, PaymentProvider, ProviderName } from '../payments/provider.js';
import type { OrderSettlement } from './orders/settle.js';
import { GroupQueue, type Waiting } from './group-queue.js';
import { parseId } from './ids.js';
import { keysetPage, type Page } from '../pagination.js';
import type { Identity } from './users.js';

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

export interface PaymentFilter {
  needsRefund?: boolean | null;
  orderId?: string | null;
  provider?: string | null;
}

/** The part of an order paid at its provider. */
export const onlinePart = (order: Pick<Order, 'amount' | 'walletAmount' | 'paymentMethod'>) =>
  order.paymentMethod === 'MIXED' ? order.amount - order.walletAmount : order.amount;

export const isOnline = (order: Pick<Order, 'paymentMethod'>) => ONLINE_METHODS.includes(order.paymentMethod);

/**
 * How the payments of flash-sale orders start: `concurrency` provider calls at a time, each once no
 * new flash-sale orders have come for `quietMs`, or once its order is `maxDelayMs` old.
 */
export interface BulkStarts {
  concurrency: number;
  quietMs: number;
  maxDelayMs: number;
}

/**
 * Online payments: starting one at the provider, and recording what a provider took, exactly once
 * per notification and per provider transaction, through the order's settlement. Money never
 * disappears: a payment that cannot pay its order is kept with `needsRefund` and announced.
 */
export class PaymentService {
  constructor(
    private readonly providers: Providers,
    private readonly settlement: OrderSettlement,
    private readonly log: Logger,
    /** This server's public base URL (known once it listens): callbacks come to `<it>/api/payments/<provider>/notify`. */
    private readonly publicBaseUrl: () => string,
    private readonly bulkStarts: BulkStarts = { concurrency: 5, quietMs: 0, maxDelayMs: 0 },
  ) {}

  /**
   * After the order committed: asks its provider for a payment (no transaction is open during the
   * call) and stores what the client needs. If the provider cannot be reached the order is expired
   * at once (its wallet part given back) and the caller gets SERVICE_UNAVAILABLE.
   */
  async start(tx: Transactions, order: Order, clientIp?: string): Promise<PaymentIntent> {
    const intent = await this.createAtProvider(tx, order, clientIp);
    return tx.run(async (uow) => {
      const row = uow.em.create(PaymentIntent, intentRow(order, intent, uow.now));
      await uow.em.flush();
      return row;
    });
  }

  /** The provider's payment for the order; a provider that cannot be reached expires the order. */
  private async createAtProvider(tx: Transactions, order: Order, clientIp?: string): Promise<ProviderIntent> {
    let provider: PaymentProvider | undefined;
    try {
      provider = await this.providers.forMethod(order.paymentMethod);
      return await provider.create({
        orderNo: order.orderNo,
        amount: onlinePart(order),
        description: `Order ${order.orderNo}`,
        expiresAt: order.expiresAt!,
        notifyUrl: `${this.publicBaseUrl()}/api/payments/${provider.name}/notify`,
        clientIp,
      });
    } catch (err) {
      const name = provider?.name ?? `the ${order.paymentMethod} provider`;
      this.log.error({ err, orderId: order.id, orderNo: order.orderNo, provider: name }, 'payment could not be started: order expired');
      await tx.run((uow) => this.settlement.expireNow(uow, order.id, `The payment could not be started at ${name}`));
      throw unavailable(`The payment provider could not be reached; order ${order.id} was closed and nothing was taken`);
    }
  }

  private readonly waiting: Array<{ tx: Transactions; order: Order; due: number }> = [];
  private starting = 0;
  /** When the last bulk orders came (performance.now()), and the timer that looks again once the sale may be quiet. */
  private lastArrival = -Infinity;
  private wake?: NodeJS.Timeout;
  /**
   * Intents of bulk-started payments, stored many per transaction: the intents that come back while
   * one group is written go in the next. One transaction per intent was three round trips each on
   * the event loop of a flash sale (bench:seckill). A group that fails is written again one by one.
   */
  private readonly intents = new GroupQueue<{ tx: Transactions; order: Order; intent: ProviderIntent }, void>((group) => this.storeIntents(group), {
    maxGroup: 100,
    inFlight: 1,
  });

  /**
   * Starts the payments of orders made in bulk (flash-sale batches) in the background, a few provider
   * calls at a time, so the batch that made them never waits on a provider. An order whose provider
   * cannot be reached is expired (its unit goes back); the intents are stored in groups.
   *
   * The starts give way to the sale: they begin once no new bulk orders have come for
   * `bulkStarts.quietMs`, or once their order is `bulkStarts.maxDelayMs` old, whichever is first. A
   * start is a signed provider call on the same event loop as the sale's requests and its consumer;
   * in a sale's first second they took the time the next orders needed (bench:seckill).
   */
  startLater(tx: Transactions, orders: readonly Order[]): void {
    const now = performance.now();
    this.lastArrival = now;
    for (const order of orders) this.waiting.push({ tx, order, due: now + this.bulkStarts.maxDelayMs });
    this.pump();
  }

  /** The next waiting start may go: the sale is quiet, its order has waited long enough, or the server is stopping. */
  private mayStart(now: number): boolean {
    const next = this.waiting[0];
    return next !== undefined && (this.stopping || now >= this.lastArrival + this.bulkStarts.quietMs || now >= next.due);
  }

  private pump(): void {
    const now = performance.now();
    if (this.mayStart(now)) return this.openLanes();
    const next = this.waiting[0];
    if (next && !this.wake) {
      const at = Math.min(this.lastArrival + this.bulkStarts.quietMs, next.due);
      this.wake = setTimeout(() => {
        this.wake = undefined;
        this.pump();
      }, Math.max(1, Math.ceil(at - now)));
    }
  }

  private openLanes(): void {
    while (this.starting < this.bulkStarts.concurrency && this.mayStart(performance.now())) {
      this.starting++;
      this.track(this.startWaiting());
    }
  }

  /** One of the `concurrency` lanes: starts waiting payments one after the other while they may go. */
  private async startWaiting(): Promise<void> {
    try {
      while (this.mayStart(performance.now())) {
        const { tx, order } = this.waiting.shift()!;
        try {
          const intent = await this.createAtProvider(tx, order);
          this.track(this.intents.add({ tx, order, intent }).catch((err) => this.log.warn({ err, orderId: order.id }, 'flash-sale order payment not stored')));
        } catch (err) {
          this.log.warn({ err, orderId: order.id }, 'flash-sale order payment not started');
        }
      }
    } finally {
      this.starting--;
      if (!this.stopping && this.waiting.length > 0) this.pump();
    }
  }

  private stopping = false;
  private readonly inFlight = new Set<Promise<unknown>>();

  private track(work: Promise<unknown>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  /**
   * At shutdown: the payments still waiting for the sale to go quiet start at once, and the server
   * waits for every start and its stored intent (each provider call is bounded by its client's
   * timeout; one that fails expires its order, as at any time).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.wake);
    this.wake = undefined;
    this.openLanes();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private async storeIntents(group: Array<Waiting<{ tx: Transactions; order: Order; intent: ProviderIntent }, void>>): Promise<void> {
    const { tx } = group[0]!.item;
    try {
      await tx.run(async (uow) => {
        for (const { item } of group) uow.em.create(PaymentIntent, intentRow(item.order, item.intent, uow.now));
        await uow.em.flush();
      });
      for (const w of group) w.resolve();
      return;
    } catch (err) {
      if (group.length === 1) throw err;
    }
    for (const w of group) {
      await tx
        .run(async (uow) => {
          uow.em.create(PaymentIntent, intentRow(w.item.order, w.item.intent, uow.now));
          await uow.em.flush();
        })
        .then(() => w.resolve(), w.reject);
    }
  }

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
    const refundReason = new Map<number, string>();
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
        refundReason.set(i, reason);
        continue;
      }
      payerOf.set(order!.id, i);
      if (!toPay.has(source)) toPay.set(source, []);
      toPay.get(source)!.push(order!);
    }
    for (const [source, batch] of toPay) {
      const { failed } = await this.settlement.payOnline(uow, batch, source);
      for (const f of failed) for (const i of [payerOf.get(f.id)!, ...(laterOf.get(f.id) ?? [])]) refundReason.set(i, f.reason);
    }

    const byKey = (i: number) => byProvider(items[i].provider, items[i].paid.transactionId);
    const values = [...live]
      .sort((a, b) => compare(byKey(a), byKey(b)))
      .map((i) => {
        const { provider, paid, source } = items[i];
        return {
          order_id: orders.get(paid.orderNo)?.id ?? null,
          order_no: paid.orderNo,
          provider,
          transaction_id: paid.transactionId,
          amount: paid.amount,
          paid_at: paid.paidAt.toISOString(),
          source,
          refund_reason: refundReason.get(i) ?? null,
        };
      });
    // In key order (the unique index's), so two groups inserting one transaction never wait in a cycle.
    const { rows } = await sql<Record<string, unknown>>`insert into payments
        (order_id, order_no, provider, transaction_id, amount, paid_at, source, needs_refund, refund_reason, created_at)
      select order_id, order_no, provider, transaction_id, amount, paid_at, source, refund_reason is not null, refund_reason, ${uow.now}::timestamptz
        from jsonb_to_recordset(${JSON.stringify(values)}::jsonb)
          as r(order_id bigint, order_no text, provider text, transaction_id text, amount int, paid_at timestamptz, source text, refund_reason text)
      returning *`.execute(uow.em.getKysely());
    const payments = new Map(rowsAs(uow.em, Payment, rows).map((p) => [byProvider(p.provider, p.transactionId), p]));
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

  /** The intents of many orders in one query (the `Order.payment` field). */
  async intentsOf(em: EntityManager, orderIds: readonly string[]): Promise<Map<string, PaymentIntent | null>> {
    const intents = await em.find(PaymentIntent, { orderId: { $in: [...orderIds] } });
    const byOrder = new Map<string, PaymentIntent | null>(orderIds.map((id) => [id, null]));
    for (const intent of intents) byOrder.set(intent.orderId, intent);
    return byOrder;
  }

  /** Newest first. Admins see every payment; a user those of their own orders. */
  async list(em: EntityManager, user: Identity, filter: PaymentFilter, first: number, after?: string | null): Promise<Page<Payment>> {
    const where: FilterQuery<Payment>[] = [];
    if (filter.needsRefund != null) where.push({ needsRefund: filter.needsRefund });
    if (filter.orderId != null) where.push({ orderId: parseId(filter.orderId, 'an order', 'orderId') });
    if (filter.provider != null) {
      if (!(PAYMENT_PROVIDERS as readonly string[]).includes(filter.provider)) {
        throw badInput(`provider must be one of ${PAYMENT_PROVIDERS.join(', ')}`, 'provider');
      }
      where.push({ provider: filter.provider as PaymentProviderName });
    }
    if (user.role !== 'admin') {
      if (filter.orderId != null) {
        const order = await em.findOne(Order, { id: filter.orderId }, { fields: ['userId'] });
        if (order && order.userId !== user.id) throw forbidden('Not your order');
      }
      // The caller's orders as a subquery: a user with many orders is never read into memory.
      where.push({ orderId: { $in: em.createQueryBuilder(Order).select('id').where({ userId: user.id }).toRaw() } });
    }
    return keysetPage(em, Payment, where.length > 0 ? { $and: where } : {}, first, after);
  }
}

/** Why a payment from `provider` cannot pay `order`, started at `expected` (or at no provider). */
function mismatch(provider: ProviderName, order: Order, expected: ProviderName | null): string {
  return expected
    ? `provider mismatch: paid at ${provider}, order started at ${expected}`
    : `provider mismatch: paid at ${provider}, order ${order.orderNo} (${order.paymentMethod}) is not paid at a provider here`;
}

/** The row a provider's intent for an order is stored as. */
function intentRow(order: Order, intent: ProviderIntent, now: Date) {
  return {
    orderId: order.id,
    provider: intent.provider,
    prepayId: intent.prepayId,
    h5Url: intent.h5Url,
    codeUrl: intent.codeUrl,
    expiresAt: intent.expiresAt,
    createdAt: now,
  };
}

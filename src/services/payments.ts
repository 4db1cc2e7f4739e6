import { LockMode, type FilterQuery } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { Transactions, UnitOfWork } from '../db/transactions.js';
import { ONLINE_METHODS, Order } from '../entities/Order.js';
import { Payment, PAYMENT_PROVIDERS, type PaymentProviderName, type PaymentSource } from '../entities/Payment.js';
import { PaymentIntent } from '../entities/PaymentIntent.js';
import { PaymentNotification } from '../entities/PaymentNotification.js';
import { badInput, forbidden, unavailable } from '../errors.js';
import { paymentWire } from '../events/types.js';
import type { Logger } from '../logger.js';
import type { Providers } from '../payments/registry.js';
import type { PaymentProvider, ProviderName } from '../payments/provider.js';
import type { OrderSettlement } from './orders/settle.js';
import { parseId } from './ids.js';
import { keysetPage, type Page } from './pagination.js';
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
  ) {}

  /**
   * After the order committed: asks its provider for a payment (no transaction is open during the
   * call) and stores what the client needs. If the provider cannot be reached the order is expired
   * at once (its wallet part given back) and the caller gets SERVICE_UNAVAILABLE.
   */
  async start(tx: Transactions, order: Order, clientIp?: string): Promise<PaymentIntent> {
    let provider: PaymentProvider | undefined;
    let intent;
    try {
      provider = await this.providers.forMethod(order.paymentMethod);
      intent = await provider.create({
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
    return tx.run(async (uow) => {
      const row = uow.em.create(PaymentIntent, {
        orderId: order.id,
        provider: intent.provider,
        prepayId: intent.prepayId,
        h5Url: intent.h5Url,
        codeUrl: intent.codeUrl,
        expiresAt: intent.expiresAt,
        createdAt: uow.now,
      });
      await uow.em.flush();
      return row;
    });
  }

  private readonly waiting: Order[] = [];
  private starting = 0;

  /**
   * Starts the payments of orders made in bulk (flash-sale batches) in the background, a few provider
   * calls at a time, so the batch that made them never waits on a provider. Each is `start`: an order
   * whose provider cannot be reached is expired (its unit goes back).
   */
  startLater(tx: Transactions, orders: readonly Order[], concurrency = 5): void {
    this.waiting.push(...orders);
    while (this.starting < concurrency && this.waiting.length > 0) {
      this.starting++;
      void (async () => {
        try {
          for (let order = this.waiting.shift(); order; order = this.waiting.shift()) {
            await this.start(tx, order).catch((err) => this.log.warn({ err, orderId: order!.id }, 'flash-sale order payment not started'));
          }
        } finally {
          this.starting--;
        }
      })();
    }
  }

  /**
   * A verified callback: recognised by its notification id first (a replay changes nothing), then
   * recorded like any provider payment.
   */
  async applyCallback(uow: UnitOfWork, provider: ProviderName, paid: ProviderPayment & { notificationId: string }): Promise<RecordOutcome> {
    const fresh = await uow.em
      .createQueryBuilder(PaymentNotification)
      .insert({ provider, notificationId: paid.notificationId, orderNo: paid.orderNo, receivedAt: uow.now })
      .onConflict(['provider', 'notificationId'])
      .ignore()
      .returning(['notificationId'])
      .execute<unknown[]>('all');
    if (fresh.length === 0) return { outcome: 'DUPLICATE' };
    return this.record(uow, provider, paid, 'CALLBACK');
  }

  /**
   * Records money a provider took, once per (provider, transaction): the order is locked first, so
   * a callback and a reconciliation of the same payment queue and the second finds the first's row.
   * A PENDING order with the right amount becomes PAID; anything else is kept for a refund.
   */
  async record(uow: UnitOfWork, provider: ProviderName, paid: ProviderPayment, source: PaymentSource): Promise<RecordOutcome> {
    const order = await uow.em.findOne(Order, { orderNo: paid.orderNo }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    const seen = await uow.em.findOne(Payment, { provider, transactionId: paid.transactionId });
    if (seen) return { outcome: 'DUPLICATE' };
    let refundReason: string | null;
    if (!order) refundReason = `no order has number ${paid.orderNo}`;
    else if (order.status !== 'PENDING') refundReason = `order ${order.orderNo} is ${order.status}`;
    else if (paid.amount !== onlinePart(order)) refundReason = `paid ${paid.amount} cents, the order asks ${onlinePart(order)}`;
    else refundReason = await this.settlement.payOnline(uow, order, source);
    const payment = uow.em.create(Payment, {
      orderId: order?.id ?? null,
      orderNo: paid.orderNo,
      provider: provider as PaymentProviderName,
      transactionId: paid.transactionId,
      amount: paid.amount,
      paidAt: paid.paidAt,
      source,
      needsRefund: refundReason !== null,
      refundReason,
      createdAt: uow.now,
    });
    await uow.em.flush();
    if (refundReason === null) return { outcome: 'PAID', payment };
    this.log.warn({ orderNo: paid.orderNo, provider, transactionId: paid.transactionId, reason: refundReason }, 'payment kept for a refund');
    await uow.events.add('PAYMENT_NEEDS_REFUND', { payment: paymentWire(payment) });
    return { outcome: 'NEEDS_REFUND', payment };
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

import { LockMode, UniqueConstraintViolationException, type FilterQuery } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { rowsAs } from '../../db/rows.js';
import type { Transactions, UnitOfWork } from '../../db/transactions.js';
import { Order } from '../../entities/Order.js';
import { Payment } from '../../entities/Payment.js';
import { Refund, REFUND_STATUSES, REFUND_TRANSITIONS, type RefundKind, type RefundStatus } from '../../entities/Refund.js';
import { badInput, conflict, notFound } from '../../errors.js';
import { refundWire } from '../../events/types.js';
import type { Logger } from '../../logger.js';
import type { ProviderName, RefundNotification, RefundRequest, RefundStatus as ProviderRefund } from '../../payments/provider.js';
import type { Providers } from '../../payments/registry.js';
import type { AuditLog } from '../audit.js';
import { parseId } from '../ids.js';
import type { OrderSettlement } from '../orders/settle.js';
import { keysetPage, type Page } from '../../pagination.js';
import { isOnline } from '../payments.js';
import type { Identity } from '../users.js';
import { finishRefunds, paymentsNeedingRefund, type RefundEnd } from './sql.js';

export interface RefundFilter {
  status?: RefundStatus | null;
}

/** A refund made and committed, with the payment it refunds at a provider (null: nothing to refund there). */
interface Opened {
  refund: Refund;
  payment: Payment | null;
}

/** What a provider's answer, a notification or a reconciliation did to a refund. */
export type SettleOutcome = 'SUCCEEDED' | 'FAILED' | 'UNCHANGED';

/** What a provider said that settling reads. */
export type ProviderAnswer = Pick<ProviderRefund, 'state' | 'providerState' | 'amount'>;

/** A refund after settling (null: not PENDING, so not read), and what settling did. */
export interface Settled {
  refund: Refund | null;
  outcome: SettleOutcome;
}

const REASON_MAX = 500;

/** What the audit log keeps of a refund an admin made. */
const auditResult = (r: Refund) => ({ id: r.id, outRefundNo: r.outRefundNo, status: r.status, amount: r.amount, walletAmount: r.walletAmount });

/**
 * Refunds, the only writer of `refunds`. An admin's refund is made in one transaction (the row,
 * PENDING, and its audit entry; the order and payment locked to check them), then the provider is
 * asked with no transaction open, then what it said is settled in another: SUCCEEDED runs the
 * order's REFUNDED transition (OrderSettlement.refund: money back, effect reversed) in the same
 * transaction, FAILED changes nothing else. A refund with nothing to refund at a provider (a WALLET or
 * OFFLINE order) is SUCCEEDED in the transaction that makes it. Notifications and
 * refund-reconciliation settle through the same `settle`, so whichever comes first wins once.
 */
export class RefundService {
  constructor(
    private readonly tx: Transactions,
    private readonly providers: Providers,
    private readonly settlement: OrderSettlement,
    private readonly audit: AuditLog,
    private readonly log: Logger,
    /** This server's public base URL: refund notifications come to `<it>/api/payments/<provider>/refund-notify`. */
    private readonly publicBaseUrl: () => string,
  ) {}

  /** Admins: a PAID order's money back (its payment at its provider and its wallet part), the order REFUNDED once that is done. */
  async refundOrder(admin: Identity, orderId: string, reason: string): Promise<Refund> {
    const id = parseId(orderId, 'an order', 'orderId');
    const why = checkReason(reason);
    const opened = await this.tx.run(async (uow): Promise<Opened> => {
      const order = await uow.em.findOne(Order, { id }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!order) throw notFound('Order', orderId);
      if (order.status !== 'PAID') throw conflict(`Order ${id} is ${order.status}; only a PAID order is refunded`);
      // The payment that paid it (a later one of the same order is kept for a refund of its own).
      const payment = isOnline(order) ? await uow.em.findOne(Payment, { orderId: id, needsRefund: false }, { lockMode: LockMode.PESSIMISTIC_WRITE }) : null;
      if (isOnline(order) && !payment) throw conflict(`Order ${id} was paid online but no payment of it is recorded`);
      const refund = await this.open(uow, admin, 'ORDER', { orderId: id, payment, walletAmount: order.walletAmount, reason: why });
      await this.audit.record(uow, admin, 'REFUND_ORDER', id, { orderId, reason, result: auditResult(refund) });
      return { refund, payment };
    });
    return this.askProvider(opened);
  }

  /** Admins: a payment kept for a refund (money that bought nothing) given back at its provider; its order, if any, stays as it is. */
  async refundPayment(admin: Identity, paymentId: string, reason: string): Promise<Refund> {
    const id = parseId(paymentId, 'a payment', 'paymentId');
    const why = checkReason(reason);
    const opened = await this.tx.run(async (uow): Promise<Opened> => {
      const payment = await uow.em.findOne(Payment, { id }, { lockMode: LockMode.PESSIMISTIC_WRITE });
      if (!payment) throw notFound('Payment', paymentId);
      if (!payment.needsRefund) {
        throw conflict(`Payment ${id} paid its order${payment.orderId ? ` ${payment.orderId}` : ''}: refund the order (refundOrder) instead`);
      }
      const refund = await this.open(uow, admin, 'PAYMENT', { orderId: payment.orderId, payment, walletAmount: 0, reason: why });
      await this.audit.record(uow, admin, 'REFUND_PAYMENT', id, { paymentId, reason, result: auditResult(refund) });
      return { refund, payment };
    });
    return this.askProvider(opened);
  }

  /**
   * The refund row, in the caller's transaction with the payment (and order) locked. Attempt n of a
   * payment is `R{paymentId}-{n}`: asking its provider again for the same attempt refunds once there.
   * A live refund of the payment or the order makes this CONFLICT, checked here for the message and
   * kept by the partial unique keys whatever races past the check.
   */
  private async open(
    uow: UnitOfWork,
    admin: Identity,
    kind: RefundKind,
    o: { orderId: string | null; payment: Payment | null; walletAmount: number; reason: string },
  ): Promise<Refund> {
    const { payment } = o;
    const amount = payment?.amount ?? 0;
    if (payment && amount > 0 && !this.providers.serves(payment.provider)) {
      throw conflict(`Payment ${payment.id} was taken at ${payment.provider}, which this server does not serve: it cannot be refunded here`);
    }
    let attempt = 1;
    if (payment) {
      const earlier = await uow.em.find(Refund, { paymentId: payment.id }, { fields: ['id', 'status'] });
      const live = earlier.find((r) => r.status !== 'FAILED');
      if (live) throw conflict(`Payment ${payment.id} already has a ${live.status} refund (${live.id})`);
      attempt = earlier.length + 1;
    }
    const atProvider = payment !== null && amount > 0;
    const refund = uow.em.create(Refund, {
      kind,
      paymentId: payment?.id ?? null,
      orderId: o.orderId,
      provider: atProvider ? payment.provider : null,
      outRefundNo: atProvider ? `R${payment.id}-${attempt}` : null,
      attempt,
      amount,
      walletAmount: o.walletAmount,
      status: 'PENDING',
      reason: o.reason,
      actorId: admin.id,
      createdAt: uow.now,
    });
    try {
      await uow.em.flush();
    } catch (err) {
      if (err instanceof UniqueConstraintViolationException) throw conflict(`${kind === 'ORDER' ? `Order ${o.orderId}` : `Payment ${payment?.id}`} is being refunded already`);
      throw err;
    }
    if (atProvider) await this.announce(uow, refund);
    else await this.finish(uow, refund, 'SUCCEEDED', null);
    return refund;
  }

  /** After the refund committed: asks its provider (no transaction open), then settles what it said. */
  private async askProvider({ refund, payment }: Opened): Promise<Refund> {
    if (refund.status !== 'PENDING' || !payment) return refund;
    let answer: ProviderRefund;
    try {
      const provider = await this.providers.byName(refund.provider!);
      if (!provider) throw new Error(`payment provider ${refund.provider} is not served here`);
      answer = await provider.refund(this.request(refund, payment));
    } catch (err) {
      // Made there or not, nobody knows: PENDING until refund-reconciliation asks (and, if need be, asks again).
      this.log.warn({ err, refundId: refund.id, outRefundNo: refund.outRefundNo }, 'refund not confirmed by its provider; refund-reconciliation will ask');
      return refund;
    }
    const settled = await this.tx.run((uow) => this.settle(uow, refund.id, answer));
    if (settled.outcome !== 'UNCHANGED') return settled.refund!;
    // Still processing there, or settled meanwhile (a notification came first): as it is now.
    return this.tx.run(async (uow) => (await uow.em.findOne(Refund, { id: refund.id })) ?? refund);
  }

  /** What a provider is asked to refund for `refund` of `payment`. */
  request(refund: Pick<Refund, 'outRefundNo' | 'amount' | 'reason' | 'provider'>, payment: Pick<Payment, 'orderNo' | 'transactionId' | 'amount'>): RefundRequest {
    return {
      outRefundNo: refund.outRefundNo!,
      orderNo: payment.orderNo,
      transactionId: payment.transactionId,
      amount: refund.amount,
      total: payment.amount,
      reason: refund.reason,
      notifyUrl: `${this.publicBaseUrl()}/api/payments/${refund.provider}/refund-notify`,
    };
  }

  /** One answer (the mutation's provider call, a notification): `settleMany` of one. */
  async settle(uow: UnitOfWork, refundId: string, answer: ProviderAnswer): Promise<Settled> {
    return (await this.settleMany(uow, [{ refundId, answer }]))[0];
  }

  /**
   * What providers said of PENDING refunds, applied once each: SUCCEEDED (and for an order's refund,
   * the order REFUNDED in this transaction) or FAILED; PROCESSING and NOT_FOUND change nothing. The
   * rows are locked first, in id order, so a notification and a reconciliation of one refund queue
   * and the second finds it settled; then one statement ends them all (refund-reconciliation settles
   * its answers in groups: one transaction per refund held it to a quarter of payment
   * reconciliation's rate, docs/benchmarks.md). A SUCCEEDED answer for another amount than asked is
   * not applied (logged for an operator). An order that cannot become REFUNDED fails the whole call.
   */
  async settleMany(uow: UnitOfWork, items: ReadonlyArray<{ refundId: string; answer: ProviderAnswer }>): Promise<Settled[]> {
    const locked = await uow.em
      .createQueryBuilder(Refund)
      .select('*')
      .where({ id: { $in: [...new Set(items.map((i) => i.refundId))] }, status: 'PENDING' })
      .orderBy({ id: 'asc' })
      .setLockMode(LockMode.PESSIMISTIC_WRITE)
      .execute<Refund[]>('all');
    const pending = new Map(locked.map((r) => [String(r.id), r]));
    const ends = new Map<string, RefundEnd>();
    for (const { refundId, answer } of items) {
      const refund = pending.get(refundId);
      if (!refund || ends.has(refundId) || (answer.state !== 'SUCCEEDED' && answer.state !== 'FAILED')) continue;
      if (answer.state === 'SUCCEEDED' && answer.amount !== null && answer.amount !== refund.amount) {
        this.log.error({ refundId, outRefundNo: refund.outRefundNo, asked: refund.amount, refunded: answer.amount }, 'the provider refunded another amount than asked: left PENDING for an operator');
        continue;
      }
      ends.set(refundId, { id: refundId, status: answer.state, failureReason: answer.state === 'FAILED' ? answer.providerState : null });
    }
    const finished = rowsAs(uow.em, Refund, await finishRefunds(uow.em, [...ends.values()], uow.now));
    const refunded = finished.filter((r) => r.status === 'SUCCEEDED' && r.kind === 'ORDER').map((r) => String(r.orderId));
    if (refunded.length > 0) {
      const { failed } = await this.settlement.refundMany(uow, refunded);
      if (failed.length > 0) throw conflict(failed.map((f) => f.reason).join('; '));
    }
    await uow.events.addMany(finished.map((r) => ({ topic: 'REFUND_UPDATED' as const, payload: { refund: refundWire(r) } })));
    const byId = new Map(finished.map((r) => [String(r.id), r]));
    return items.map(({ refundId }) => {
      const done = byId.get(refundId);
      return done ? { refund: done, outcome: done.status as 'SUCCEEDED' | 'FAILED' } : { refund: pending.get(refundId) ?? null, outcome: 'UNCHANGED' as const };
    });
  }

  /** A verified refund notification: settles the refund it names, when it is one of ours from that provider. */
  async settleNotified(provider: ProviderName, n: RefundNotification): Promise<SettleOutcome | 'UNKNOWN'> {
    return this.tx.run(async (uow) => {
      const found = await uow.em.findOne(Refund, { outRefundNo: n.outRefundNo }, { fields: ['id', 'provider'] });
      if (!found || found.provider !== provider) return 'UNKNOWN' as const;
      return (await this.settle(uow, found.id, n)).outcome;
    });
  }

  private async finish(uow: UnitOfWork, refund: Refund, to: 'SUCCEEDED' | 'FAILED', failureReason: string | null): Promise<void> {
    if (!REFUND_TRANSITIONS[refund.status].includes(to)) throw conflict(`Refund ${refund.id} is ${refund.status}; it cannot become ${to}`);
    refund.status = to;
    refund.finishedAt = uow.now;
    refund.failureReason = failureReason;
    await uow.em.flush();
    if (to === 'SUCCEEDED' && refund.kind === 'ORDER') await this.settlement.refund(uow, refund.orderId!);
    await this.announce(uow, refund);
  }

  private async announce(uow: UnitOfWork, refund: Refund): Promise<void> {
    await uow.events.add('REFUND_UPDATED', { refund: refundWire(refund) });
  }

  /** Newest first (admins). */
  list(em: EntityManager, filter: RefundFilter, first: number, after?: string | null): Promise<Page<Refund>> {
    if (filter.status != null && !(REFUND_STATUSES as readonly string[]).includes(filter.status)) throw badInput(`status must be one of ${REFUND_STATUSES.join(', ')}`, 'status');
    const where: FilterQuery<Refund> = filter.status != null ? { status: filter.status } : {};
    return keysetPage(em, Refund, where, first, after);
  }

  /** Refunds the providers have not yet confirmed (`deadline_refunds_pending`). */
  pendingCount(em: EntityManager): Promise<number> {
    return em.count(Refund, { status: 'PENDING' });
  }

  /** `deadline_payments_needing_refund`. */
  paymentsNeedingRefund(em: EntityManager): Promise<number> {
    return paymentsNeedingRefund(em);
  }
}

function checkReason(reason: string): string {
  const why = reason.trim();
  if (why.length === 0 || reason.length > REASON_MAX) throw badInput(`reason must be 1 to ${REASON_MAX} characters`, 'reason');
  return why;
}

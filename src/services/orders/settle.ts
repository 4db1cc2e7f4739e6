import { LockMode } from '@mikro-orm/core';
import { sql } from 'kysely';
import { rowsAs } from '../../db/rows.js';
import type { UnitOfWork } from '../../db/transactions.js';
import { Order, ORDER_TRANSITIONS, type OrderStatus } from '../../entities/Order.js';
import type { ProductKind } from '../../entities/Product.js';
import { badInput, conflict, notFound } from '../../errors.js';
import { orderWire } from '../../events/types.js';
import type { Logger } from '../../logger.js';
import type { SettleFailure, SettleOutcome } from '../deadline-handle.js';
import { parseId } from '../ids.js';
import type { Identity } from '../users.js';
import type { WalletService } from '../wallets.js';
import type { ClosedEffects, PaidEffects, RefundedEffects } from './effects.js';
import { assertMayAccess, dueOrdersQuery } from './rules.js';
import { holdsFrozenPart } from './sql.js';
import { closeOrders, type Closing } from './settle-close.js';
import { KindEffects } from './settle-effects.js';
import { frozenProblem, lockReleasable } from './settle-wallet.js';

function assertTransition(order: Order, to: OrderStatus): void {
  if (ORDER_TRANSITIONS[order.status].includes(to)) return;
  const from = (Object.keys(ORDER_TRANSITIONS) as OrderStatus[]).filter((s) => ORDER_TRANSITIONS[s].includes(to));
  throw conflict(`Order ${order.id} is ${order.status}, not ${from.join(' or ')}`);
}

/**
 * The only writer of an order's status after creation: PENDING becomes PAID, CANCELLED or EXPIRED
 * here, and PAID becomes REFUNDED, each with its money (the frozen wallet part debited or given back,
 * a refunded wallet part returned, exactly once), its stock, its ledger lines and its events in the
 * caller's transaction; PAID runs the product's effect and REFUNDED reverses it.
 */
export class OrderSettlement {
  /** Each product kind's effect on PAID, CANCELLED or EXPIRED, and REFUNDED. */
  private readonly effects: KindEffects;

  constructor(
    private readonly wallets: WalletService,
    effects: PaidEffects,
    private readonly log: Logger,
    private readonly expireMinutes: number,
    closedEffects: ClosedEffects = {},
    refundedEffects: RefundedEffects = {},
  ) {
    this.effects = new KindEffects(effects, closedEffects, refundedEffects);
  }

  /** The owner (or an admin) pays a WALLET order: PAID, its frozen money debited, its deadline gone. */
  async payWithWallet(uow: UnitOfWork, user: Identity, orderId: string): Promise<Order> {
    const order = await this.lockOwn(uow, user, orderId);
    assertTransition(order, 'PAID');
    this.assertNotExpired(order, uow.now);
    if (order.paymentMethod !== 'WALLET') {
      throw badInput(`Order ${order.id} is paid by ${order.paymentMethod}; only WALLET orders are paid with the wallet`, 'orderId');
    }
    const wallets = await this.wallets.lockMany(uow.em, [order.userId]);
    const wallet = wallets.get(order.userId);
    const problem = frozenProblem(order, wallet?.frozen);
    if (problem) this.refuse(order, 'pay', problem);
    wallet!.frozen -= order.walletAmount;
    wallet!.updatedAt = uow.now;
    order.status = 'PAID';
    order.paidAt = uow.now;
    order.paidVia = 'WALLET';
    order.expiresAt = null;
    await uow.em.flush();
    await this.wallets.record(uow, [{ userId: order.userId, orderId: order.id, entry: 'DEBIT', amount: order.walletAmount }]);
    await this.runPaidEffects(uow, [order]);
    await this.announce(uow, [order]);
    return order;
  }

  /**
   * Providers took the online part of locked PENDING orders (callbacks or reconciliation, many at
   * once): each becomes PAID with how it was paid, a MIXED order's frozen wallet part debited, its
   * product's effect run. An order whose wallet cannot give its part is left PENDING and returned as
   * failed with the reason (its payment is then kept for a refund).
   */
  async payOnline(uow: UnitOfWork, orders: Order[], via: 'CALLBACK' | 'COMPENSATE'): Promise<{ paid: Order[]; failed: SettleFailure[] }> {
    const { ok, failed } = await lockReleasable(this.wallets, uow, orders);
    for (const f of failed) this.log.error({ orderId: f.id, reason: f.reason }, 'paid online but the wallet part cannot be debited: kept for a refund');
    if (ok.length === 0) return { paid: [], failed };
    // One statement for every order of the batch, its wallet, its DEBIT lines (WalletService.record's
    // rows, as `frozenPart` defines them) and its ORDER_UPDATED event: per order, the ORM's ~6
    // statements made the callbacks 14 statements each (docs/benchmarks.md, "Payments"). The rows are
    // locked and PENDING (the caller's), so each is paid as read and its event can be staged before.
    const staged = uow.events.stage(
      ok.map((o) => ({
        topic: 'ORDER_UPDATED' as const,
        payload: { order: { ...orderWire(o), status: 'PAID' as const, paidAt: uow.now.toISOString(), paidVia: via, expiresAt: null } },
        key: o.id,
        ref: String(o.id),
      })),
    );
    const { rows } = await sql<Record<string, unknown>>`with paid as (
         update orders set status = 'PAID', paid_at = ${uow.now}::timestamptz, paid_via = ${via}, expires_at = null
          where id = any(${ok.map((o) => o.id)}::bigint[]) and status = 'PENDING'
          returning *),
       debited as (
         select user_id, sum(wallet_amount)::int as amount from paid
          where ${holdsFrozenPart} group by user_id),
       w as (
         update wallets set frozen = wallets.frozen - d.amount, updated_at = ${uow.now}::timestamptz
           from debited d where wallets.user_id = d.user_id),
       ledger as (
         insert into wallet_ledger (user_id, order_id, entry, amount, created_at)
         select user_id, id, 'DEBIT', wallet_amount, ${uow.now}::timestamptz from paid
          where ${holdsFrozenPart} order by id),
       events as (
         insert into outbox_events (id, topic, payload)
         select r.id, r.topic, r.payload from ${staged.rows} join paid c on r.ref = c.id::text)
       select paid.*, p.kind as product_kind from paid join products p on p.id = paid.product_id order by paid.id`.execute(uow.em.getKysely());
    const paid = rowsAs(uow.em, Order, rows);
    staged.keep(new Set(paid.map((o) => String(o.id))));
    // The rows are locked by the caller and were PENDING: a row missing here is one a caller did not lock.
    const done = new Set(paid.map((o) => String(o.id)));
    for (const o of ok) if (!done.has(String(o.id))) failed.push({ id: o.id, reason: `order ${o.orderNo} is no longer PENDING` });
    const kindOf = new Map(rows.map((r) => [String(r.id), r.product_kind as ProductKind]));
    await this.runPaidEffects(
      uow,
      paid.filter((o) => this.effects.hasPaidEffect(kindOf.get(String(o.id))!)),
    );
    return { paid, failed };
  }

  /**
   * Expires one order now, whatever its deadline (reconciliation found it closed or unpaid at its
   * provider; a payment could not be started). A no-op for an order no longer PENDING.
   */
  async expireNow(uow: UnitOfWork, orderId: string, reason: string): Promise<Order | null> {
    const order = await uow.em.findOne(Order, { id: orderId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!order || order.status !== 'PENDING') return null;
    const { closed, failed } = await this.close(uow, [order], 'EXPIRED', reason);
    if (failed.length > 0) this.refuse(order, 'expire', failed[0].reason);
    return closed[0];
  }

  /** The owner or an admin cancels a PENDING order that has not yet expired; its frozen money comes back. */
  async cancel(uow: UnitOfWork, user: Identity, orderId: string, reason?: string | null): Promise<Order> {
    if (reason && reason.length > 500) throw badInput('reason is longer than 500 characters', 'reason');
    const order = await this.lockOwn(uow, user, orderId);
    assertTransition(order, 'CANCELLED');
    this.assertNotExpired(order, uow.now);
    const why = reason?.trim() || (user.role === 'admin' && user.id !== order.userId ? 'Cancelled by an admin' : 'Cancelled by the buyer');
    const { closed, failed } = await this.close(uow, [order], 'CANCELLED', why);
    if (failed.length > 0) this.refuse(order, 'cancel', failed[0].reason);
    return closed[0];
  }

  /**
   * A refund of a PAID order SUCCEEDED (src/services/refunds is its only caller): REFUNDED, its wallet
   * part back in the wallet (ledger REFUND), its stock back (not a flash sale's: nothing goes back to
   * a sale), its product's effect reversed and ORDER_UPDATED to its owner, in the refund's transaction.
   * CONFLICT (rolling the caller back) when the order is not PAID.
   */
  async refund(uow: UnitOfWork, orderId: string): Promise<Order> {
    const { refunded, failed } = await this.refundMany(uow, [orderId]);
    if (failed.length > 0) throw conflict(failed[0].reason);
    return refunded[0];
  }

  /**
   * Many refunds' orders at once (refund-reconciliation settles its answers in groups), as `refund`
   * does one: the orders and their wallets locked in id order, then one statement for the orders
   * (still PAID: the update is conditional), their wallets, their REFUND lines, their stock and their
   * ORDER_UPDATED events. One transaction per order, ~10 statements each through the entities, held
   * refund-reconciliation to a quarter of payment reconciliation's rate (docs/benchmarks.md, "Refunds").
   * Orders not PAID (or missing) are returned as failed, left as they were.
   */
  async refundMany(uow: UnitOfWork, orderIds: readonly string[]): Promise<{ refunded: Order[]; failed: SettleFailure[] }> {
    const locked = await uow.em
      .createQueryBuilder(Order)
      .select('*')
      .where({ id: { $in: [...new Set(orderIds)] } })
      .orderBy({ id: 'asc' })
      .setLockMode(LockMode.PESSIMISTIC_WRITE)
      .execute<Order[]>('all');
    const byId = new Map(locked.map((o) => [String(o.id), o]));
    const failed: SettleFailure[] = [];
    const ok: Order[] = [];
    for (const id of orderIds) {
      const order = byId.get(String(id));
      if (!order) failed.push({ id, reason: `Order ${id} not found` });
      else if (!ORDER_TRANSITIONS[order.status].includes('REFUNDED')) failed.push({ id, reason: `Order ${id} is ${order.status}, not PAID` });
      else ok.push(order);
    }
    if (ok.length === 0) return { refunded: [], failed };
    // Wallets before products, each in id order, as every transaction that takes both (see `closeOrders`).
    await this.wallets.lockFrozen(
      uow.em,
      ok.filter((o) => o.walletAmount > 0).map((o) => o.userId),
    );
    const staged = uow.events.stage(
      ok.map((o) => ({
        topic: 'ORDER_UPDATED' as const,
        payload: { order: { ...orderWire(o), status: 'REFUNDED' as const } },
        key: o.id,
        ref: String(o.id),
      })),
    );
    const { rows } = await sql<Record<string, unknown>>`with refunded as (
         update orders set status = 'REFUNDED', closed_at = ${uow.now}::timestamptz
          where id = any(${ok.map((o) => o.id)}::bigint[]) and status = 'PAID'
          returning *),
       back as (
         select user_id, sum(wallet_amount)::int as amount from refunded where wallet_amount > 0 group by user_id),
       w as (
         update wallets set balance = wallets.balance + b.amount, updated_at = ${uow.now}::timestamptz
           from back b where wallets.user_id = b.user_id),
       ledger as (
         insert into wallet_ledger (user_id, order_id, entry, amount, created_at)
         select user_id, id, 'REFUND', wallet_amount, ${uow.now}::timestamptz from refunded where wallet_amount > 0 order by id),
       returned as (
         select r.product_id, sum(r.quantity)::int as quantity from refunded r join products p on p.id = r.product_id
          where p.kind <> 'FLASH_SALE' group by r.product_id),
       s as (
         update products set stock = products.stock + r.quantity
           from returned r where products.id = r.product_id and products.stock is not null),
       events as (
         insert into outbox_events (id, topic, payload)
         select r.id, r.topic, r.payload from ${staged.rows} join refunded c on r.ref = c.id::text)
       select refunded.*, p.kind as product_kind from refunded join products p on p.id = refunded.product_id order by refunded.id`.execute(uow.em.getKysely());
    const refunded = rowsAs(uow.em, Order, rows);
    staged.keep(new Set(refunded.map((o) => String(o.id))));
    const kindOf = new Map(rows.map((r) => [String(r.id), r.product_kind as ProductKind]));
    await this.effects.runRefunded(uow, refunded, kindOf);
    return { refunded, failed };
  }

  /**
   * The expiry deadline: at most `limit` PENDING orders whose `expiresAt` has come, oldest first,
   * become EXPIRED with their frozen money unfrozen. Orders another transaction holds (being paid or
   * cancelled) are skipped and looked at again in the next batch.
   */
  async expireDue(uow: UnitOfWork, limit: number, skip: readonly string[]): Promise<SettleOutcome> {
    // Property-named rows, not managed entities: the batch is written by one statement below.
    const due = await dueOrdersQuery(uow.em, uow.now, limit, skip).execute<Order[]>('all');
    const minutes = Number(this.expireMinutes.toFixed(3));
    const { closed, failed } = await this.close(uow, due, 'EXPIRED', `Not paid within ${minutes} minute${minutes === 1 ? '' : 's'}`);
    // `close` clears expires_at: the due time is the row as it was read.
    const dueAt = new Map(due.map((o) => [String(o.id), o.expiresAt ? new Date(o.expiresAt) : null]));
    return { settled: closed.map((o) => o.id), failed, dueAt: closed.map((o) => dueAt.get(String(o.id)) ?? null) };
  }

  /** The effect of each order's product kind, for orders that have just become PAID (or were born PAID). */
  async runPaidEffects(uow: UnitOfWork, orders: Order[]): Promise<void> {
    await this.effects.runPaid(uow, orders);
  }

  /**
   * Closes locked PENDING orders: status, reason, no deadline, frozen money back, stock back, ledger
   * lines and events, in the caller's transaction. An order whose wallet is missing or holds too little
   * frozen money is left exactly as it was and returned as failed with the reason.
   */
  private async close(uow: UnitOfWork, orders: Order[], status: Closing, reason: string) {
    const { ok, failed } = await lockReleasable(this.wallets, uow, orders);
    if (ok.length === 0) return { closed: [], failed };
    const { closed, kindOf } = await closeOrders(uow, ok, status, reason);
    await this.effects.runClosed(uow, closed, kindOf);
    return { closed, failed };
  }

  /** Rolls the transaction back (by throwing) after logging what an operator needs to repair it. */
  private refuse(order: Order, action: string, reason: string): never {
    this.log.error({ orderId: order.id, action, reason }, 'order left unchanged: its wallet does not match');
    const done = { pay: 'paid', cancel: 'cancelled', expire: 'expired' }[action] ?? action;
    throw conflict(`Order ${order.id} cannot be ${done}: ${reason}`);
  }

  /** ORDER_UPDATED for every order into the transaction's outbox (a closed batch writes its events with its rows, in `close`). */
  private async announce(uow: UnitOfWork, orders: Order[]): Promise<void> {
    await uow.events.addMany(orders.map((o) => ({ topic: 'ORDER_UPDATED' as const, payload: { order: orderWire(o) }, key: o.id })));
  }

  private assertNotExpired(order: Order, now: Date): void {
    if (order.expiresAt !== null && order.expiresAt.getTime() <= now.getTime()) throw conflict(`Order ${order.id} has expired`);
  }

  private async lockOwn(uow: UnitOfWork, user: Identity, orderId: string): Promise<Order> {
    const order = await uow.em.findOne(Order, { id: parseId(orderId, 'an order', 'orderId') }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!order) throw notFound('Order', orderId);
    assertMayAccess(user, order);
    return order;
  }
}

/** Announces orders created in this transaction (creation writes the first status; settlement every later one). */
export async function announceCreated(uow: UnitOfWork, order: Order): Promise<void> {
  await uow.events.add('ORDER_UPDATED', { order: orderWire(order) }, order.id);
}
import { LockMode, type FilterObject } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Order, type PaymentMethod } from '../../entities/Order.js';
import { forbidden } from '../../errors.js';
import type { Identity } from '../users.js';

/**
 * Orders with a deadline still to come: PENDING. `expires_at is not null` is the same set (a check
 * constraint) and lets PostgreSQL read `orders_expires_at_status_idx` instead of the table.
 */
export const pendingOrders = (skip: readonly string[] = []): FilterObject<Order> =>
  skip.length > 0
    ? { status: 'PENDING', expiresAt: { $ne: null }, id: { $nin: [...skip] } }
    : { status: 'PENDING', expiresAt: { $ne: null } };

/** The one definition of "expired": PENDING and its `expiresAt` has come (the field, the filter and the expiry job). */
export const dueOrders = (now: Date, skip: readonly string[] = []): FilterObject<Order> => ({
  ...pendingOrders(skip),
  expiresAt: { $lte: now },
});

/** The same rule on one order in memory (`Order.isExpired`). */
export const isExpired = (order: Pick<Order, 'status' | 'expiresAt'>, now: Date): boolean =>
  order.status === 'PENDING' && order.expiresAt !== null && order.expiresAt.getTime() <= now.getTime();

/**
 * One `expireDue` batch: the oldest due orders, locked, SKIP LOCKED (an order being paid or
 * cancelled is looked at again next batch). Exported for the benchmarks' EXPLAIN at 1,000,000 orders.
 */
export function dueOrdersQuery(em: EntityManager, now: Date, limit: number, skip: readonly string[] = []) {
  return em
    .createQueryBuilder(Order)
    .select('*')
    .where(dueOrders(now, skip))
    .orderBy({ expiresAt: 'asc' })
    .limit(limit)
    .setLockMode(LockMode.PESSIMISTIC_PARTIAL_WRITE);
}

/** The earliest pending deadline: the first entry of the index. Exported for the benchmarks. */
export function nextExpiryQuery(em: EntityManager, skip: readonly string[] = []) {
  return em.createQueryBuilder(Order).select('expiresAt').where(pendingOrders(skip)).orderBy({ expiresAt: 'asc' }).limit(1);
}

/** How many orders are pending (the start-up log): the pending part of the expiry index, read whole. */
export function pendingCountQuery(em: EntityManager) {
  return em.createQueryBuilder(Order).count().where(pendingOrders());
}

/** The methods whose orders hold a wallet part frozen while PENDING. */
export const FREEZING_METHODS: readonly PaymentMethod[] = ['WALLET', 'MIXED'];

/** Money held for a pending order: its wallet part, for WALLET and MIXED orders. */
export const frozenPart = (order: Pick<Order, 'paymentMethod' | 'walletAmount'>) =>
  FREEZING_METHODS.includes(order.paymentMethod) ? order.walletAmount : 0;

export function assertMayAccess(user: Identity, order: Pick<Order, 'userId'>): void {
  if (user.role !== 'admin' && order.userId !== user.id) throw forbidden('Not your order');
}

import type { FilterQuery } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Order, type OrderStatus } from '../../entities/Order.js';
import { forbidden, notFound } from '../../errors.js';
import { parseId } from '../ids.js';
import { keysetPage, type Page } from '../../pagination.js';
import type { Identity } from '../users.js';
import { assertMayAccess, dueOrders, nextExpiryQuery, pendingCountQuery } from './rules.js';

export interface OrderFilter {
  status?: OrderStatus | null;
  isExpired?: boolean | null;
  userId?: string | null;
}

/** Reading orders: one, a page, and who may watch one. Users see their own; admins anyone's. */
export class OrderQueries {
  async get(em: EntityManager, user: Identity, orderId: string): Promise<Order> {
    const order = await em.findOne(Order, { id: parseId(orderId, 'an order', 'orderId') });
    if (!order) throw notFound('Order', orderId);
    assertMayAccess(user, order);
    return order;
  }

  /** Newest first. `isExpired` is the same rule as the field (`dueOrders`), with the same `now`. */
  list(em: EntityManager, user: Identity, filter: OrderFilter, first: number, after: string | null | undefined, now: Date): Promise<Page<Order>> {
    if (user.role !== 'admin' && filter.userId != null && filter.userId !== user.id) {
      throw forbidden("Only admins can list other users' orders");
    }
    const userId = user.role === 'admin' ? filter.userId : user.id;
    const where: FilterQuery<Order>[] = [];
    if (userId != null) where.push({ userId });
    if (filter.status) where.push({ status: filter.status });
    if (filter.isExpired === true) where.push(dueOrders(now));
    if (filter.isExpired === false) where.push({ $not: dueOrders(now) });
    return keysetPage(em, Order, where.length > 0 ? { $and: where } : {}, first, after);
  }

  /** The earliest pending expiry (failed ones aside), for the wake-up: the first entry of the expiry index. */
  async nextExpiry(em: EntityManager, skip: readonly string[]): Promise<Date | null> {
    const first = await nextExpiryQuery(em, skip).execute<{ expiresAt: Date | string } | undefined>('get');
    return first ? new Date(first.expiresAt) : null;
  }

  /** Pending orders, for the start-up log; served by the expiry index (see `pendingOrders`). */
  async countPending(em: EntityManager): Promise<number> {
    const row = await pendingCountQuery(em).execute<{ count: string | number }>('get');
    return Number(row.count);
  }

  /** For `orderUpdated`: the order must exist and be the caller's (or the caller an admin). */
  async assertMayWatch(em: EntityManager, user: Identity, orderId: string): Promise<void> {
    const order = await em.findOne(Order, { id: parseId(orderId, 'an order', 'orderId') }, { fields: ['userId'] });
    if (!order) throw notFound('Order', orderId);
    assertMayAccess(user, order);
  }
}

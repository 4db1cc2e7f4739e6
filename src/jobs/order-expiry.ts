import type { EntityManager } from '@mikro-orm/postgresql';
import { pgArray } from '../db/sql.js';
import { ORDER_EXPIRY, type OrderService } from '../services/orders.js';
import type { DeadlineKind } from './deadlines.js';

/**
 * Job `deadline:order-expiry`: every PENDING order whose expires_at has come becomes EXPIRED and
 * gives its frozen money back, `batchSize` per transaction, oldest first (OrderService.expireDue).
 * Paying or cancelling an order removes no job: the wake-up finds it settled and re-arms.
 */
export function orderExpiryKind(orders: OrderService, batchSize: number): DeadlineKind {
  return {
    name: ORDER_EXPIRY,
    label: 'order expiry',
    batchSize,

    async nextDeadline(em: EntityManager, skip: readonly string[]): Promise<Date | null> {
      // Served by orders_expires_at_status_idx: the first non-null expires_at that is PENDING.
      const [row] = await em.execute<Array<{ at: string | null }>>(
        `select expires_at as at from orders
          where status = 'PENDING' and expires_at is not null and id <> all(?::bigint[])
          order by expires_at limit 1`,
        [pgArray(skip)],
      );
      return row?.at ? new Date(row.at) : null;
    },

    async countPending(em: EntityManager): Promise<number> {
      // "expires_at is not null" is the same set (a check constraint) and lets the count use the index.
      const [row] = await em.execute<Array<{ n: string }>>(
        `select count(*) as n from orders where status = 'PENDING' and expires_at is not null`,
      );
      return Number(row.n);
    },

    settleDue: (uow, limit, skip) => orders.expireDue(uow, limit, skip),
  };
}

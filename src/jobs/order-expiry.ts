import type { DeadlineKind } from '../scheduling/deadlines.js';
import type { OrderQueries } from '../services/orders/queries.js';
import type { OrderSettlement } from '../services/orders/settle.js';

/** `deadline:order-expiry`: unpaid orders expire at `expiresAt` and give their money back (OrderSettlement.expireDue). */
export const ORDER_EXPIRY = 'order-expiry';

export const orderExpiryKind = (settlement: OrderSettlement, queries: OrderQueries, batchSize: number, lanes = 1): DeadlineKind => ({
  name: ORDER_EXPIRY,
  label: 'order expiry',
  batchSize,
  lanes,
  nextDeadline: (em, skip) => queries.nextExpiry(em, skip),
  countPending: (em) => queries.countPending(em),
  settleDue: (uow, limit, skip) => settlement.expireDue(uow, limit, skip),
});

import { LockMode } from '@mikro-orm/core';
import { sql } from 'kysely';
import { rowsAs } from '../../db/rows.js';
import { pgArray } from '../../db/sql.js';
import type { UnitOfWork } from '../../db/transactions.js';
import { Order, type OrderStatus } from '../../entities/Order.js';
import { Product, type ProductKind } from '../../entities/Product.js';
import type { PublishedEvent } from '../../events/bus.js';
import { entityOnChannels, type EventBatchKind } from '../../events/outbox.js';
import { channelOf, orderWire, type DomainEvents, type OrderData, type Wire } from '../../events/types.js';
import { holdsFrozenPart } from './sql.js';

export type Closing = Extract<OrderStatus, 'CANCELLED' | 'EXPIRED'>;

/** The outbox topic of a batch of closed orders, whose entries are `[orderId, expiredEventId | null, updatedEventId]`. */
const ORDER_CLOSES = '@order-closes';

/** A closed order's events (ORDER_EXPIRED when it expired, and ORDER_UPDATED), held by the outbox row `outboxId`. */
function closeEvents(order: Wire<OrderData>, expiredEvent: string | null, updatedEvent: string, outboxId: string): PublishedEvent[] {
  const updated: DomainEvents['ORDER_UPDATED'] = { eventId: updatedEvent, order };
  return [
    ...(expiredEvent === null ? [] : [{ channel: channelOf('ORDER_EXPIRED'), payload: { eventId: expiredEvent, order } satisfies DomainEvents['ORDER_EXPIRED'], outboxId }]),
    { channel: channelOf('ORDER_UPDATED', order.id), payload: updated, outboxId },
  ];
}

/**
 * Batches of closed orders read back from the outbox: the events rebuilt from the orders, which never
 * change again once CANCELLED or EXPIRED, with the event ids the batch keeps.
 */
export const orderCloses: EventBatchKind = {
  topic: ORDER_CLOSES,
  entityOn: entityOnChannels(channelOf('ORDER_EXPIRED'), channelOf('ORDER_UPDATED')),
  async expand(em, entries) {
    const { rows: found } = await sql<Record<string, unknown>>`select * from orders where id = any(${pgArray(entries.map(({ entry }) => entry[0]))}::bigint[])`.execute(
      em.getKysely(),
    );
    const byId = new Map(rowsAs(em, Order, found).map((o) => [String(o.id), o]));
    return entries.flatMap(({ outboxId, entry: [id, expired, updated] }) => {
      const order = byId.get(id);
      return order && updated ? closeEvents(orderWire(order), expired ?? null, updated, outboxId) : [];
    });
  },
};

/**
 * Closes locked PENDING orders whose wallets were locked and checked (`lockReleasable`): status,
 * reason, no deadline, frozen money back, stock back, ledger lines and events, in the caller's
 * transaction. Returns the orders as they are now and each one's product kind. The statement of
 * `OrderSettlement` (./settle.ts), the only writer of an order's status, and called by it alone.
 */
export async function closeOrders(
  uow: UnitOfWork,
  ok: Order[],
  status: Closing,
  reason: string,
): Promise<{ closed: Order[]; kindOf: Map<string, ProductKind> }> {
  // Stock rows are updated below in no particular order: two batches touching the same products
  // could deadlock, so several products are locked first, in id order (wallets, in `lockReleasable`, likewise).
  const productIds = [...new Set(ok.map((o) => o.productId))].sort((a, b) => Number(a) - Number(b));
  if (productIds.length > 1) {
    await uow.em
      .createQueryBuilder(Product)
      .select('id')
      .where({ id: { $in: productIds }, stock: { $ne: null } })
      .orderBy({ id: 'asc' })
      .setLockMode(LockMode.PESSIMISTIC_WRITE)
      .execute('all');
  }
  // Set-based, one statement (one round trip) for the orders (still PENDING: the update is
  // conditional), their wallets, their stock, their UNFREEZE ledger lines (WalletService.record's
  // rows, as `frozenPart` defines them) and one outbox row for the batch's events (`orderCloses`).
  // Before, the ledger and the events were two more statements and the product kinds a third; then
  // the events were two rows per order, sent as a parameter: docs/benchmarks.md, "Order expiry
  // throughput (issue 12)".
  const expiredEvent = status === 'EXPIRED' ? sql`gen_random_uuid()::text` : sql`null::text`;
  const { rows } = await sql<Record<string, unknown>>`with closed as (
       update orders set status = ${status}, cancel_reason = ${reason}, expires_at = null, closed_at = ${uow.now}::timestamptz
        where id = any(${ok.map((o) => o.id)}::bigint[]) and status = 'PENDING'
        returning *, ${expiredEvent} as expired_event, gen_random_uuid()::text as updated_event),
     released as (
       select user_id, sum(wallet_amount)::int as amount from closed
        where ${holdsFrozenPart} group by user_id),
     w as (
       update wallets set frozen = wallets.frozen - r.amount, balance = wallets.balance + r.amount, updated_at = ${uow.now}::timestamptz
         from released r where wallets.user_id = r.user_id),
     returned as (
       select product_id, sum(quantity)::int as quantity from closed group by product_id),
     s as (
       update products set stock = products.stock + r.quantity
         from returned r where products.id = r.product_id and products.stock is not null),
     ledger as (
       insert into wallet_ledger (user_id, order_id, entry, amount, created_at)
       select user_id, id, 'UNFREEZE', wallet_amount, ${uow.now}::timestamptz from closed
        where ${holdsFrozenPart} order by id),
     events as (
       insert into outbox_events (id, topic, payload)
       select gen_random_uuid(), ${ORDER_CLOSES}, jsonb_build_object('entries', jsonb_agg(jsonb_build_array(id::text, expired_event, updated_event) order by id))
         from closed having count(*) > 0
       returning id)
     select closed.*, p.kind as product_kind, (select id::text from events) as outbox_id
       from closed join products p on p.id = closed.product_id order by closed.id`.execute(uow.em.getKysely());
  // The orders as they are now. A managed entity passed in (cancel) is left as it was in memory:
  // not dirty, so nothing writes it back over this statement's change.
  const closed = rowsAs(uow.em, Order, rows);
  closed.forEach((order, i) => {
    const row = rows[i] as { expired_event: string | null; updated_event: string; outbox_id: string };
    uow.events.events.push(...closeEvents(orderWire(order), row.expired_event, row.updated_event, row.outbox_id));
  });
  return { closed, kindOf: new Map(rows.map((r) => [String(r.id), r.product_kind as ProductKind])) };
}

/**
 * The flash sales' set-based statements: what a batch of stream entries needs to know (one read) and
 * everything it writes (one statement). Tables, columns and their types come from the entities'
 * metadata (`insertRows`), the live order states from one list, inlined as the unique index
 * `orders_seckill_buyer_key` says them.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { sql, type RawBuilder } from 'kysely';
import { insertRows } from '../../db/columns.js';
import { pgArray } from '../../db/sql.js';
import { Order, type OrderStatus } from '../../entities/Order.js';
import { SeckillLog } from '../../entities/SeckillLog.js';

/** Orders that hold a unit of the sale and their buyer's place: a refunded one keeps both (nothing goes back to the sale). */
export const LIVE_ORDER_STATUSES: readonly OrderStatus[] = ['PENDING', 'PAID', 'REFUNDED'];
const live = sql.join(LIVE_ORDER_STATUSES.map((s) => sql.lit(s)));

/**
 * After the product's lock (so it sees the last batch's commit), in one query: the entries an earlier
 * delivery recorded, the users of these entries who hold a live order of the sale, and `ids` new order
 * ids (an id left over is a gap in the orders' numbering, as a rollback leaves one).
 */
export async function batchFacts(
  em: EntityManager,
  productId: string,
  streamIds: readonly string[],
  userIds: readonly string[],
  ids: number,
): Promise<{ seen: Set<string>; buyers: Set<string>; ids: string[] }> {
  const { rows } = await sql<{ kind: 'seen' | 'live' | 'id'; value: string }>`
    select 'seen' as kind, stream_id as value from seckill_logs where stream_id = any(${pgArray(streamIds)}::text[])
    union all
    select 'live', user_id from orders where product_id = ${productId} and user_id = any(${pgArray(userIds)}::text[]) and status in (${live})
    union all
    select 'id', nextval(pg_get_serial_sequence('orders', 'id'))::text from generate_series(1, ${ids}::int)`.execute(em.getKysely());
  const of = (kind: string) => rows.filter((r) => r.kind === kind).map((r) => r.value);
  return { seen: new Set(of('seen')), buyers: new Set(of('live')), ids: of('id') };
}

/** The columns a flash-sale order is written with; the rest take their defaults (null). */
const ORDER_COLUMNS = ['id', 'orderNo', 'userId', 'productId', 'quantity', 'amount', 'walletAmount', 'paymentMethod', 'channel', 'status', 'expiresAt', 'createdAt'] as const;
const LOG_COLUMNS = ['streamId', 'productId', 'userId', 'requestId', 'status', 'reason', 'orderId', 'createdAt'] as const;

export type LogRow = Pick<SeckillLog, (typeof LOG_COLUMNS)[number]>;

/**
 * A batch's writes in one statement: its buyers' user rows and wallets (if new), the units taken from
 * the product's stock, the orders, one log row per entry recorded, and the staged outbox rows (`events`,
 * a recordset of id, topic, payload). As the ORM's inserts and a statement per part, a batch was ~10
 * round trips, each waiting its turn on an event loop busy with the sale's requests (docs/benchmarks.md,
 * "Flash sales"). Returns whether the stock was taken (always, when there are orders: the product is
 * locked and its stock counted first).
 */
export async function writeBatch(
  em: EntityManager,
  productId: string,
  orders: readonly Order[],
  logs: readonly LogRow[],
  events: RawBuilder<unknown>,
): Promise<boolean> {
  const buyers = pgArray(orders.map((o) => o.userId));
  const { rows } = await sql<{ taken: number }>`with
     new_users as (insert into users (id, role) select unnest(${buyers}::text[]), 'user' on conflict (id) do nothing),
     new_wallets as (insert into wallets (user_id) select unnest(${buyers}::text[]) on conflict (user_id) do nothing),
     taken as (update products set stock = stock - ${orders.length}::int
                where id = ${productId} and ${orders.length}::int > 0 and stock >= ${orders.length}::int returning id),
     new_orders as (${insertRows(em, Order, ORDER_COLUMNS, orders)}),
     logs as (${insertRows(em, SeckillLog, LOG_COLUMNS, logs)}),
     events as (insert into outbox_events (id, topic, payload) select r.id, r.topic, r.payload from ${events})
     select (select count(*) from taken)::int as taken`.execute(em.getKysely());
  return rows[0].taken === 1;
}

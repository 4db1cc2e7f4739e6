/**
 * The payments' statements that are not one entity's find or query: a group's payments inserted in
 * one statement, and the orders reconciliation asks providers about. Tables and columns come from
 * the entities' metadata (`insertRows`, `rowsAs`), the order state from the state machine, inlined as
 * the partial index `orders_pending_created_at_idx` says it so the planner can match it.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { sql } from 'kysely';
import { insertRows } from '../../db/columns.js';
import { rowsAs } from '../../db/rows.js';
import { ONLINE_METHODS, Order, ORDER_TRANSITIONS, type OrderStatus } from '../../entities/Order.js';
import { Payment } from '../../entities/Payment.js';

/** The state an order is paid from; refused at load if the state machine ever stops letting it be paid. */
const PENDING: OrderStatus = 'PENDING';
if (!ORDER_TRANSITIONS[PENDING].includes('PAID')) throw new Error('ORDER_TRANSITIONS no longer lets a PENDING order be paid');

const PAYMENT_COLUMNS = ['orderId', 'orderNo', 'provider', 'transactionId', 'amount', 'paidAt', 'source', 'needsRefund', 'refundReason', 'createdAt'] as const;

/** A payment as `insertPayments` writes it (the id is the table's). */
export type PaymentRow = Pick<Payment, (typeof PAYMENT_COLUMNS)[number]>;

/**
 * Many payments in one statement, returned as entities' properties in the order given. The caller
 * gives them in key order (the unique index's, provider then transaction id), so two groups inserting
 * one transaction never wait in a cycle.
 */
export async function insertPayments(em: EntityManager, payments: readonly PaymentRow[]): Promise<Payment[]> {
  const { rows } = await sql<Record<string, unknown>>`${insertRows(em, Payment, PAYMENT_COLUMNS, payments)} returning *`.execute(em.getKysely());
  return rowsAs(em, Payment, rows);
}

/**
 * At most `limit` PENDING online orders created before `before`, oldest first
 * (`orders_pending_created_at_idx`), with their intent's provider: one statement, the rows not made
 * managed entities (as entities, a run's 1,000 orders and their intents took ~40 ms of its start in
 * bench:payments).
 */
export async function staleOrders(em: EntityManager, before: Date, limit: number): Promise<Array<{ order: Order; provider: string | null }>> {
  const { rows } = await sql<Record<string, unknown> & { intent_provider: string | null }>`
    select o.*, i.provider as intent_provider
      from orders o left join payment_intents i on i.order_id = o.id
     where o.status = ${sql.lit(PENDING)} and o.payment_method in (${sql.join(ONLINE_METHODS.map((m) => sql.lit(m)))})
       and o.created_at < ${before.toISOString()}::timestamptz
     order by o.created_at asc limit ${limit}`.execute(em.getKysely());
  return rowsAs(em, Order, rows).map((order, i) => ({ order, provider: rows[i].intent_provider }));
}

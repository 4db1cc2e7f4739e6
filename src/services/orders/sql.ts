/**
 * The orders' statements outside settlement (settle*.ts keeps its own): the per-user lock under which
 * createOrder counts pending orders, and an order's id drawn before its insert (its number is made
 * from it). Reads and plain writes go through the entity manager and its query builder (rules.ts).
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { sql } from 'kysely';

/**
 * The first key of the per-user advisory lock (`pg_advisory_xact_lock(int, int)`, the second key the
 * user id's hash) under which a user's pending orders are counted: two createOrder of one user at
 * once would each count the other's order as not there yet. A hash collision only makes two users
 * wait for each other. The (int, int) key space is apart from the migrations' bigint lock.
 */
const PENDING_ORDERS_LOCK = 727_002;

/** The user's advisory lock, held to commit (`pg_advisory_xact_lock(int, int)`). */
export async function lockUserPendingOrders(em: EntityManager, userId: string): Promise<void> {
  await sql`select pg_advisory_xact_lock(${PENDING_ORDERS_LOCK}::int, hashtext(${userId}))`.execute(em.getKysely());
}

/** The next order id, as the decimal text bigserial ids travel as. */
export async function nextOrderId(em: EntityManager): Promise<string> {
  const { rows } = await sql<{ id: string }>`select nextval(pg_get_serial_sequence('orders', 'id'))::text as id`.execute(em.getKysely());
  return rows[0].id;
}

/**
 * The orders' statements outside settlement (settle*.ts keeps its own): the per-user lock under which
 * createOrder counts pending orders, an order's id drawn before its insert (its number is made from
 * it), and the frozen-money rule as a condition settlement's statements share. Reads and plain writes go through the entity manager and its query builder (rules.ts).
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { sql } from 'kysely';
import { FREEZING_METHODS } from './rules.js';

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

/** `frozenPart` > 0 in SQL, over `orders` rows: the order holds frozen money (its methods inlined, one list with the rule in JS). */
export const holdsFrozenPart = sql`payment_method in (${sql.join(FREEZING_METHODS.map((m) => sql.lit(m)))}) and wallet_amount > 0`;

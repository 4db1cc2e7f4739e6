/**
 * The refunds' statements that are not one entity's find: the gauges, read on every scrape.
 * States come from the entities' state lists, never typed twice.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { sql } from 'kysely';
import { REFUND_TRANSITIONS, type RefundStatus } from '../../entities/Refund.js';

/** A payment's refund that is under way or done: another one would be CONFLICT (`refunds_payment_live_key`). */
export const LIVE_REFUND_STATUSES: readonly RefundStatus[] = ['PENDING', 'SUCCEEDED'];

/** The state a refund ends from (the state machine's only one with ways out), inlined as a literal. */
const PENDING: RefundStatus = 'PENDING';
if (REFUND_TRANSITIONS[PENDING].length === 0) throw new Error('REFUND_TRANSITIONS no longer lets a PENDING refund end');

/**
 * Payments kept for a refund (`payments_needs_refund_idx`) that no live refund covers yet: the work
 * left for an operator (`deadline_payments_needing_refund`). The anti-join reads
 * `refunds_payment_live_key` once per such payment.
 */
export async function paymentsNeedingRefund(em: EntityManager): Promise<number> {
  // The states inlined, as the partial index says them, so the planner can use it.
  const { rows } = await sql<{ n: number }>`select count(*)::int as n from payments p
      where p.needs_refund
        and not exists (select 1 from refunds r where r.payment_id = p.id and r.status in (${sql.join(LIVE_REFUND_STATUSES.map((s) => sql.lit(s)))}))`.execute(
    em.getKysely(),
  );
  return rows[0]?.n ?? 0;
}

/** One refund's end, as `finishRefunds` writes it. */
export interface RefundEnd {
  id: string;
  status: 'SUCCEEDED' | 'FAILED';
  failureReason: string | null;
}

/**
 * Many refunds' ends in one statement: each still PENDING becomes SUCCEEDED or FAILED (conditional,
 * so a refund settled meanwhile is left alone and not returned). Rows in id order, as they were locked.
 */
export async function finishRefunds(em: EntityManager, ends: readonly RefundEnd[], now: Date): Promise<Array<Record<string, unknown>>> {
  if (ends.length === 0) return [];
  const { rows } = await sql<Record<string, unknown>>`update refunds set status = e.status, failure_reason = e.failure_reason, finished_at = ${now}::timestamptz
      from jsonb_to_recordset(${JSON.stringify(ends.map((e) => ({ id: e.id, status: e.status, failure_reason: e.failureReason })))}::jsonb)
        as e(id bigint, status text, failure_reason text)
     where refunds.id = e.id and refunds.status = ${sql.lit(PENDING)}
     returning refunds.*`.execute(em.getKysely());
  return [...rows].sort((a, b) => Number(a.id) - Number(b.id));
}

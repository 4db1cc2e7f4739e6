/**
 * The memberships' set-based statements: the lapse of a batch (the expiry deadline) and a page of the
 * daily reminders. Every other read and write goes through the entity manager.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { sql } from 'kysely';
import { rowsAs } from '../../db/rows.js';
import { pgArray } from '../../db/sql.js';
import { VipMembership } from '../../entities/VipMembership.js';
import type { SelectedMessages } from '../messages/sql.js';

/**
 * At most `limit` active, dated memberships whose `expiresAt` has come, earliest first and SKIP LOCKED
 * (a payment extending one holds it; the next round sees its new expiry), made inactive in the same
 * statement, each once (`and active` in the update). Returned as entity-typed rows, not managed
 * entities: a batch is up to the kind's batch size, and each becomes an event.
 */
export async function lapseDueMemberships(em: EntityManager, now: Date, limit: number, skip: readonly string[]): Promise<VipMembership[]> {
  const at = now.toISOString();
  const { rows } = await sql<Record<string, unknown>>`
    with due as (
      select user_id from vip_memberships
       where active and expires_at is not null and expires_at <= ${at}::timestamptz
             ${skip.length > 0 ? sql`and user_id <> all(${pgArray(skip)}::text[])` : sql``}
       order by expires_at
       limit ${limit}
       for update skip locked)
    update vip_memberships set active = false, updated_at = ${at}::timestamptz
     where user_id = any(array(select user_id from due)) and active
    returning *`.execute(em.getKysely());
  return rowsAs(em, VipMembership, rows);
}

/** Where a reminders page ends: its size and its last member on the keyset (expires_at, user_id). */
export interface ReminderPageEnd {
  count: number;
  expires_at: string | null;
  user_id: string | null;
}

export interface ReminderPage {
  /** The run's calendar day, and the expiry days looked at: from `from` (inclusive) to `to` (exclusive), in `timeZone`. */
  day: string;
  from: string;
  to: string;
  timeZone: string;
  /** The last member of the page before, on the keyset. */
  after: { expiresAt: string; userId: string } | null;
  limit: number;
  /** Each milestone (days before the expiry day) with its text. */
  milestones: ReadonlyArray<{ daysBefore: number; body: string }>;
  kind: string;
  title: string;
}

/**
 * One page of the daily reminders, for `MessageService.sendSelected` to run as one statement: the
 * page of members along the expiry index, their milestones inserted (ON CONFLICT DO NOTHING: a
 * milestone is written once), the new ones' messages, and the page's end. Only the end and the
 * events come back to JS (4 statements a page before; 1,000,000 members' second run 2.9 s instead of
 * 8.0 s, docs/benchmarks.md).
 */
export function reminderPage(p: ReminderPage): SelectedMessages<ReminderPageEnd> {
  const tz = p.timeZone;
  return {
    with: sql`
      milestones as (select * from unnest(${p.milestones.map((m) => m.daysBefore)}::int[], ${p.milestones.map((m) => m.body)}::text[]) as m(days_before, body)),
      page as (
        select user_id, expires_at, (expires_at at time zone ${tz})::date as expires_on
          from vip_memberships
         where not is_lifetime
           and expires_at >= (${p.from}::date)::timestamp at time zone ${tz}
           and expires_at < (${p.to}::date)::timestamp at time zone ${tz}
           ${p.after ? sql`and (expires_at, user_id) > (${p.after.expiresAt}::timestamptz, ${p.after.userId})` : sql``}
         -- Along vip_memberships_expires_at_active_idx (the table's column: when a select-list alias of
         -- it was sorted instead, every page was a full scan and sort, 24 s of a run).
         order by vip_memberships.expires_at, user_id
         limit ${p.limit}),
      fresh as (
        insert into vip_reminders (user_id, expires_on, days_before, sent_on)
        select pg.user_id, pg.expires_on, m.days_before, ${p.day}::date
          from page pg join milestones m on m.days_before = pg.expires_on - ${p.day}::date
        on conflict do nothing
        returning user_id, days_before)`,
    messages: sql`select f.user_id, ${p.kind} as kind, ${p.title} as title, m.body
      from fresh f join milestones m using (days_before) order by f.user_id`,
    // The page's size and its last member, for the next page's keyset (timestamptz(3): ISO text is exact).
    summary: sql<ReminderPageEnd>`
      select (select count(*) from page)::int as count, last.expires_at, last.user_id
        from (select 1) one
        left join lateral (select expires_at, user_id from page order by expires_at desc, user_id desc limit 1) last on true`,
  };
}

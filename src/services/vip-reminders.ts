import { sql } from 'kysely';
import type { Transactions, UnitOfWork } from '../db/transactions.js';
import type { Logger } from '../logger.js';
import { addDays, daysBetween, localDay } from './calendar.js';

/** The seed's texts, by days before the expiry day (negative: days after). */
export function reminderText(daysBefore: number): string | null {
  if (daysBefore === 3) return '您的VIP会员将在3天后到期，请及时续费';
  if (daysBefore === 1) return '您的VIP会员将在明天到期，请及时续费';
  if (daysBefore === 0) return '您的VIP会员今日到期，续费可继续享受VIP权益';
  if (daysBefore <= -1 && daysBefore >= -7) return `您的VIP会员已到期${-daysBefore}天，VIP图标即将隐藏`;
  return null;
}

export const REMINDER_KIND = 'VIP_REMINDER';
const REMINDER_TITLE = 'VIP会员到期提醒';

/** What the reminders need of the message service: many messages in one transaction. */
export interface MessageSender {
  sendMany(uow: UnitOfWork, messages: Array<{ userId: string; kind: string; title: string; body: string }>): Promise<unknown>;
}

export interface ReminderRun {
  day: string;
  /** Members whose expiry day is in the window and were looked at. */
  members: number;
  /** Messages written (milestones not written before). */
  written: number;
}

/**
 * The daily VIP reminders for one calendar day in APP_TIMEZONE: members whose expiry day is 3 days
 * away, tomorrow, today or 1–7 days past get the seed's message for that milestone, once: the
 * milestone is a row of `vip_reminders` (user, expiry day, days before) inserted with ON CONFLICT DO
 * NOTHING, and only the rows that went in get a message, in the same transaction. So a second run,
 * a second instance or a retry writes nothing. Members are read in bounded pages along the expiry
 * index (keyset on expires_at, user_id), one transaction per page: a million members never sit in
 * memory at once. Lifetime members have no expiry and get nothing.
 */
export class VipReminders {
  constructor(
    private readonly tx: Transactions,
    private readonly messages: MessageSender,
    private readonly log: Logger,
    private readonly timeZone: string,
    private readonly batchSize: number,
    private readonly now: () => Date,
  ) {}

  async run(day: string = localDay(this.now(), this.timeZone)): Promise<ReminderRun> {
    const started = Date.now();
    const result: ReminderRun = { day, members: 0, written: 0 };
    let after: { expiresAt: string; userId: string } | null = null;
    // At most one page's events in flight while the next page is written (as the deadline engine does).
    let publishing: Promise<void> = Promise.resolve();
    for (;;) {
      const { result: page, published } = await this.tx.runThenPublish((uow) => this.page(uow, day, after));
      await publishing;
      publishing = published;
      result.members += page.count;
      result.written += page.written;
      if (page.count < this.batchSize || !page.last) break;
      after = page.last;
    }
    await publishing;
    this.log.info({ ...result, ms: Date.now() - started }, 'vip reminders written');
    return result;
  }

  private async page(uow: UnitOfWork, day: string, after: { expiresAt: string; userId: string } | null) {
    const k = uow.em.getKysely();
    const tz = this.timeZone;
    // Expiry days from day − 7 to day + 3: instants from the start of day − 7 to the start of day + 4, local.
    const from = addDays(day, -7);
    const to = addDays(day, 4);
    const { rows } = await sql<{ user_id: string; expires_iso: string; expires_on: string }>`
      select user_id, to_char(expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as expires_iso,
             to_char((expires_at at time zone ${tz})::date, 'YYYY-MM-DD') as expires_on
        from vip_memberships
       where not is_lifetime
         and expires_at >= (${from}::date)::timestamp at time zone ${tz}
         and expires_at < (${to}::date)::timestamp at time zone ${tz}
         ${after ? sql`and (expires_at, user_id) > (${after.expiresAt}::timestamptz, ${after.userId})` : sql``}
       -- The table's column (a select-list name would win and sort the text: a full scan per page,
       -- 24 s of a 1,000,000-member run instead of 1.2 s along the index, docs/benchmarks.md).
       order by vip_memberships.expires_at, user_id
       limit ${this.batchSize}`.execute(k);
    if (rows.length === 0) return { count: 0, last: null, written: 0 };
    const due = rows
      .map((r) => ({ userId: r.user_id, expiresOn: r.expires_on, daysBefore: daysBetween(day, r.expires_on) }))
      .filter((r) => reminderText(r.daysBefore) !== null);
    let written = 0;
    if (due.length > 0) {
      const { rows: fresh } = await sql<{ user_id: string; days_before: number }>`
        insert into vip_reminders (user_id, expires_on, days_before, sent_on)
        select u, e, d, ${day}::date from unnest(${due.map((r) => r.userId)}::text[], ${due.map((r) => r.expiresOn)}::date[], ${due.map((r) => r.daysBefore)}::int[]) as t(u, e, d)
        on conflict do nothing
        returning user_id, days_before`.execute(k);
      if (fresh.length > 0) {
        await this.messages.sendMany(
          uow,
          fresh.map((r) => ({ userId: r.user_id, kind: REMINDER_KIND, title: REMINDER_TITLE, body: reminderText(r.days_before)! })),
        );
      }
      written = fresh.length;
    }
    const last = rows[rows.length - 1];
    return { count: rows.length, last: { expiresAt: last.expires_iso, userId: last.user_id }, written };
  }
}

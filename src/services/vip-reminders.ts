import type { Transactions, UnitOfWork } from '../db/transactions.js';
import type { Logger } from '../logger.js';
import type { SelectedMessages } from './messages/sql.js';
import { addDays, localDay } from './calendar.js';
import { reminderPage } from './vip/sql.js';

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

/** The milestones, by days before the expiry day: 3 days before, the day before, the day, 1–7 days after. */
const MILESTONES = [3, 1, 0, -1, -2, -3, -4, -5, -6, -7].map((daysBefore) => ({ daysBefore, body: reminderText(daysBefore)! }));

/** What the reminders need of the message service: the messages one statement selects, sent in it. */
export interface MessageSender {
  sendSelected<S>(uow: UnitOfWork, selected: SelectedMessages<S>): Promise<{ sent: number; summary: S | undefined }>;
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
 * NOTHING, and only the rows that went in get a message, in the same statement. So a second run,
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

  /** One page in one statement (`reminderPage` in vip/sql.ts), its messages sent by `MessageService.sendSelected`. */
  private async page(uow: UnitOfWork, day: string, after: { expiresAt: string; userId: string } | null) {
    const tz = this.timeZone;
    // Expiry days from day − 7 to day + 3: instants from the start of day − 7 to the start of day + 4, local.
    const from = addDays(day, -7);
    const to = addDays(day, 4);
    const page = reminderPage({ day, from, to, timeZone: tz, after, limit: this.batchSize, milestones: MILESTONES, kind: REMINDER_KIND, title: REMINDER_TITLE });
    const { sent, summary } = await this.messages.sendSelected(uow, page);
    const end = summary ?? { count: 0, expires_at: null, user_id: null };
    const last = end.expires_at !== null && end.user_id !== null ? { expiresAt: end.expires_at, userId: end.user_id } : null;
    return { count: end.count, last, written: sent };
  }
}

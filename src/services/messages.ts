import type { EntityManager } from '@mikro-orm/postgresql';
import { sql } from 'kysely';
import { rowsAs } from '../db/rows.js';
import type { UnitOfWork } from '../db/transactions.js';
import { Message } from '../entities/Message.js';
import { notFound } from '../errors.js';
import { messageWire } from '../events/types.js';
import { parseId } from './ids.js';
import { keysetPage, type Page } from './pagination.js';
import type { Identity } from './users.js';

/** One message to send: to whom, what about, and what it says. */
export interface NewMessage {
  userId: string;
  kind: string;
  title: string;
  body: string;
}

export interface MessageFilter {
  unreadOnly?: boolean | null;
}

/**
 * In-site messages: sending (one, or a set-based batch for the daily reminders), and each user's own
 * inbox: listing, counting and marking read. Nobody reads or marks another user's messages, admins
 * included: another user's message id is NOT_FOUND, as if it did not exist (it does not, for the caller).
 */
export class MessageService {
  /** One message, through the same path as a batch. */
  async send(uow: UnitOfWork, message: NewMessage): Promise<Message> {
    const [sent] = await this.sendMany(uow, [message]);
    return sent;
  }

  /**
   * Many messages in two statements, whatever their number: one insert of all the rows (one bound
   * JSON parameter, not a literal escaped in JS: see `EventSink.addMany`) and one outbox insert of
   * their `MESSAGE_RECEIVED` events, each on its owner's channel. The rows come back as entity-typed
   * data, not managed entities (`rowsAs`): the VIP reminders write up to hundreds of thousands a day,
   * and hydrating each into the identity map is what made the auction end batches slow (src/db/rows.ts).
   * Returned in the order given (ids are assigned in that order). Callers bound their batches (the
   * reminder job pages its users): the whole batch is one transaction and one outbox insert.
   */
  async sendMany(uow: UnitOfWork, messages: readonly NewMessage[]): Promise<Message[]> {
    if (messages.length === 0) return [];
    const rows = messages.map((m) => ({ userId: m.userId, kind: m.kind, title: m.title, body: m.body }));
    const { rows: inserted } = await sql<Record<string, unknown>>`
      insert into messages (user_id, kind, title, body, created_at)
      select r."userId", r.kind, r.title, r.body, ${uow.now.toISOString()}::timestamptz
        from rows from (jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as ("userId" text, kind text, title text, body text))
             with ordinality as r("userId", kind, title, body, n)
       order by r.n
      returning *`.execute(uow.em.getKysely());
    const sent = rowsAs(uow.em, Message, inserted).sort((a, b) => compareIds(a.id, b.id));
    await uow.events.addMany(sent.map((m) => ({ topic: 'MESSAGE_RECEIVED' as const, payload: { message: messageWire(m) }, key: m.userId })));
    return sent;
  }

  /** The caller's messages, newest first (`messages_user_id_idx`, or the unread partial index). */
  list(em: EntityManager, user: Identity, filter: MessageFilter, first: number, after?: string | null): Promise<Page<Message>> {
    const where = filter.unreadOnly ? { userId: user.id, readAt: null } : { userId: user.id };
    return keysetPage(em, Message, where, first, after);
  }

  /** Served by the unread partial index: the cost is the unread messages', not the inbox's. */
  unreadCount(em: EntityManager, user: Identity): Promise<number> {
    return em.count(Message, { userId: user.id, readAt: null });
  }

  /**
   * Marks one of the caller's messages read. Idempotent: the update is conditional on `read_at is
   * null`, so a second mark (or two racing ones) keeps the first `readAt`. Another user's id is NOT_FOUND.
   */
  async markRead(uow: UnitOfWork, user: Identity, messageId: string): Promise<Message> {
    const id = parseId(messageId, 'a message', 'id');
    await uow.em.nativeUpdate(Message, { id, userId: user.id, readAt: null }, { readAt: uow.now });
    const message = await uow.em.findOne(Message, { id, userId: user.id });
    if (!message) throw notFound('Message', messageId);
    return message;
  }

  /** Marks every unread message of the caller's read, in one statement; returns how many it marked. */
  markAllRead(uow: UnitOfWork, user: Identity): Promise<number> {
    return uow.em.nativeUpdate(Message, { userId: user.id, readAt: null }, { readAt: uow.now });
  }
}

/** bigserial ids travel as decimal strings. */
function compareIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

import type { EntityManager } from '@mikro-orm/postgresql';
import type { UnitOfWork } from '../db/transactions.js';
import { Message } from '../entities/Message.js';
import { notFound } from '../errors.js';
import type { PublishedEvent } from '../events/bus.js';
import { reviveMessage, type DomainEvents, type Topic } from '../events/types.js';
import { parseId } from './ids.js';
import { givenMessages, writeMessages, type SelectedMessages } from './messages/sql.js';
import { keysetPage, type Page } from '../pagination.js';
import type { Identity } from './users.js';

/** One message to send: to whom, what about, and what it says. */
export interface NewMessage {
  userId: string;
  kind: string;
  title: string;
  body: string;
}

const RECEIVED_TOPIC: Topic = 'MESSAGE_RECEIVED';
/** A written message's event as the relay publishes it: its id and its payload's JSON text (`wire`). */
type ReceivedEvent = PublishedEvent & { wire: string };

export interface MessageFilter {
  unreadOnly?: boolean | null;
}

/**
 * In-site messages: sending (one, a batch, or the messages the daily reminders select in SQL), and
 * each user's own inbox: listing, counting and marking read. Nobody reads or marks another user's
 * messages, admins included: another user's message id is NOT_FOUND, as if it did not exist (it does
 * not, for the caller).
 */
export class MessageService {
  /** One message, through the same path as a batch. */
  async send(uow: UnitOfWork, message: NewMessage): Promise<Message> {
    const [sent] = await this.sendMany(uow, [message]);
    return sent;
  }

  /**
   * Many messages in one statement, whatever their number: their rows and their `MESSAGE_RECEIVED`
   * events (each on its owner's channel) are written from one bound JSON parameter (not a literal
   * escaped in JS: see `EventSink.addMany`) by `sendSelected`. The messages come back as entity-typed
   * data, not managed entities, read from the events' payloads (the wire `messageReceived` carries),
   * in the order given (ids are assigned in that order). Callers bound their batches: the whole batch
   * is one transaction and one statement.
   */
  async sendMany(uow: UnitOfWork, messages: readonly NewMessage[]): Promise<Message[]> {
    if (messages.length === 0) return [];
    const { events } = await this.write(uow, givenMessages(messages));
    return events
      .map((e) => reviveMessage((JSON.parse(e.wire) as DomainEvents['MESSAGE_RECEIVED']).message) as Message)
      .sort((a, b) => compareIds(a.id, b.id));
  }

  /**
   * Sends the messages a caller's SQL selects, inside the caller's own statement, so that no row it
   * reads becomes a JS object: the VIP reminders pick a page of members, insert their milestones and
   * send the new ones' messages in one statement per page. What comes back to JS is one summary row of
   * the caller's and the events to publish after commit (the outbox rows are written by the same
   * statement). A reminder page was 4 statements and 3 JS copies of every message; as one statement,
   * the second run over 1,000,000 members takes 2.9 s instead of 8.0 s (docs/benchmarks.md, "VIP reminders").
   */
  async sendSelected<S>(uow: UnitOfWork, selected: SelectedMessages<S>): Promise<{ sent: number; summary: S | undefined }> {
    const { events, summary } = await this.write(uow, selected);
    return { sent: events.length, summary };
  }

  /**
   * The one statement behind both ways of sending (`writeMessages` in messages/sql.ts). The written
   * events are the transaction's events: the relay publishes them after commit.
   */
  private async write<S>(uow: UnitOfWork, selected: SelectedMessages<S>): Promise<{ events: ReceivedEvent[]; summary: S | undefined }> {
    const rows = await writeMessages(uow.em, selected, uow.now, RECEIVED_TOPIC);
    const events: ReceivedEvent[] = [];
    let summary: S | undefined;
    for (const row of rows) {
      if (row.event_id !== null && row.topic !== null && row.wire !== null) {
        events.push({ channel: row.topic, payload: { eventId: row.event_id }, wire: row.wire });
      } else if (row.summary !== null) {
        summary = row.summary;
      }
    }
    // The driver's row objects are let go now rather than with its result object: held by it, they outlived
    // the young generation and were collected only by full GCs (34 MB of a reminders run's garbage, heap profile).
    rows.length = 0;
    // Already in the outbox (written above): handed to the transaction's sink as `addMany` would, for the relay.
    uow.events.events.push(...events);
    return { events, summary };
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

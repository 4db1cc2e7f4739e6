/**
 * The messages' one set-based statement: messages selected by SQL (a batch given as JSON, or the
 * reminders' page), written with their MESSAGE_RECEIVED events in the outbox. The event payload is the
 * message's wire form, its columns taken from the entity's metadata (`wireObject`).
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { sql, type RawBuilder } from 'kysely';
import { wireObject } from '../../db/columns.js';
import { Message } from '../../entities/Message.js';

/**
 * Messages selected in SQL by the caller (`MessageService.sendSelected`), for one statement:
 * `with <with>, outgoing as (<messages>), … select …`.
 */
export interface SelectedMessages<S> {
  /** The caller's CTEs (`a as (…), b as (…)`). They may write: a data-modifying CTE runs once. */
  with: RawBuilder<unknown>;
  /** Selects (user_id, kind, title, body) from those CTEs, in the order the ids are to be assigned. */
  messages: RawBuilder<unknown>;
  /** One row of the caller's, from its CTEs (the statement's snapshot), returned as a JSON object (dates as strings). */
  summary?: RawBuilder<S>;
}

/** Messages given in JS, as one bound JSON parameter (not a literal escaped in JS), selected in the order given. */
export function givenMessages(messages: ReadonlyArray<{ userId: string; kind: string; title: string; body: string }>): SelectedMessages<never> {
  const rows = messages.map((m) => ({ userId: m.userId, kind: m.kind, title: m.title, body: m.body }));
  return {
    with: sql`given as (
      select r."userId" as user_id, r.kind, r.title, r.body, r.n
        from rows from (jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as ("userId" text, kind text, title text, body text))
             with ordinality as r("userId", kind, title, body, n))`,
    messages: sql`select user_id, kind, title, body from given order by n`,
  };
}

/** A written message's event, or (event columns null) the caller's summary row. */
export interface WrittenRow<S> {
  event_id: string | null;
  topic: string | null;
  wire: string | null;
  summary: S | null;
}

/**
 * The caller's CTEs, the messages they select, their rows, their events' ids (drawn once per message:
 * a materialised CTE, so the row id and the payload's `eventId` are the same draw) and their outbox
 * rows on `<topic>:<user id>` (channelOf). The payloads come back as JSON text, to go to Redis as they
 * are: parsing them here and serialising them again was most of what a reminders run over 1,000,000
 * members left for the GC (+362 MB of RSS; docs/benchmarks.md, "VIP reminders").
 */
export async function writeMessages<S>(em: EntityManager, selected: SelectedMessages<S>, now: Date, topic: string): Promise<Array<WrittenRow<S>>> {
  const { rows } = await sql<WrittenRow<S>>`
    with ${selected.with},
    outgoing as (${selected.messages}),
    sent as (
      insert into messages (user_id, kind, title, body, created_at)
      select user_id, kind, title, body, ${now.toISOString()}::timestamptz from outgoing
      returning *),
    drawn as materialized (select gen_random_uuid() as event_id, sent.* from sent),
    published as (
      insert into outbox_events (id, topic, payload)
      select event_id, ${topic} || ':' || user_id,
             jsonb_build_object('eventId', event_id, 'message', ${wireObject(em, Message)})
        from drawn
      returning id, topic, payload)
    select id::text as event_id, topic, payload::text as wire, null::jsonb as summary from published
    union all
    select null, null, null, to_jsonb(s) from (${selected.summary ?? sql`select 1 where false`}) s`.execute(em.getKysely());
  return rows;
}

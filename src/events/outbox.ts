import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { sql, type RawBuilder } from 'kysely';
import type { PublishedEvent } from './bus.js';
import { channelOf, type DomainEvents, type Topic } from './types.js';

export type EventItem = {
  [T in Topic]: { topic: T; payload: Omit<DomainEvents[T], 'eventId'>; key?: string };
}[Topic];

/** Events an owning statement writes itself: `ref` names the row whose change each one announces. */
export type StagedItem = EventItem & { ref: string };

/**
 * Outbox rows prepared for a set-based statement that inserts them itself, so a batch writes its rows,
 * its money and its events in one round trip. `rows` is a `jsonb_to_recordset` source with the columns
 * `id, topic, payload, ref`; the statement inserts those whose `ref` it changed, then `keep` takes the
 * same ones as the transaction's events (published after commit).
 */
export interface StagedEvents {
  readonly rows: RawBuilder<unknown>;
  keep(refs: ReadonlySet<string>): PublishedEvent[];
}

/**
 * Collects the events of one transaction. The outbox rows are written with the transaction's entity
 * manager, so an event exists if and only if its change committed; after commit the relay publishes
 * `events` as they are (no need to read them back).
 */
export class EventSink {
  readonly events: PublishedEvent[] = [];

  constructor(private readonly em: EntityManager) {}

  async add<T extends Topic>(topic: T, payload: Omit<DomainEvents[T], 'eventId'>, key?: string): Promise<string> {
    const [event] = await this.addMany([{ topic, payload, key } as EventItem]);
    return event.payload.eventId;
  }

  /** Many events in one insert: a settled batch of deadlines writes its events in one round trip. */
  async addMany(items: EventItem[]): Promise<PublishedEvent[]> {
    if (items.length === 0) return [];
    const rows = items.map(outboxRow);
    // A bound parameter, not `em.execute`'s inlined literal: escaping 1 MB of events in JS took
    // longer than the whole insert (CPU profile of `npm run bench:auctions`, 1,000-auction batches).
    await sql`insert into outbox_events (id, topic, payload)
      select id, topic, payload from jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(id uuid, topic text, payload jsonb)`.execute(
      this.em.getKysely(),
    );
    const events = rows.map((r) => ({ channel: r.topic, payload: r.payload }));
    this.events.push(...events);
    return events;
  }

  /** Rows for the caller's own insert (see `StagedEvents`): nothing is written or kept until it runs. */
  stage(items: StagedItem[]): StagedEvents {
    const rows = items.map((item) => ({ ...outboxRow(item), ref: item.ref }));
    return {
      rows: sql`jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) as r(id uuid, topic text, payload jsonb, ref text)`,
      keep: (refs) => {
        const events = rows.filter((r) => refs.has(r.ref)).map((r) => ({ channel: r.topic, payload: r.payload }));
        this.events.push(...events);
        return events;
      },
    };
  }
}

function outboxRow(item: EventItem) {
  const id = randomUUID();
  return { id, topic: channelOf(item.topic, item.key), payload: { ...item.payload, eventId: id } as PublishedEvent['payload'] };
}

import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { sql } from 'kysely';
import type { PublishedEvent } from './bus.js';
import { channelOf, type DomainEvents, type Topic } from './types.js';

export type EventItem = {
  [T in Topic]: { topic: T; payload: Omit<DomainEvents[T], 'eventId'>; key?: string };
}[Topic];

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
    const rows = items.map((item) => {
      const id = randomUUID();
      return { id, topic: channelOf(item.topic, item.key), payload: { ...item.payload, eventId: id } };
    });
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
}

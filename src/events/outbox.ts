import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { channelOf, type DomainEvents, type Topic } from './types.js';

export type EventItem = {
  [T in Topic]: { topic: T; payload: Omit<DomainEvents[T], 'eventId'>; key?: string };
}[Topic];

/**
 * Collects the events of one transaction. `add` writes the outbox row with the transaction's
 * entity manager, so the event exists if and only if the change committed; the ids are
 * handed to the relay after commit.
 */
export class EventSink {
  readonly ids: string[] = [];

  constructor(private readonly em: EntityManager) {}

  async add<T extends Topic>(topic: T, payload: Omit<DomainEvents[T], 'eventId'>, key?: string): Promise<string> {
    const id = randomUUID();
    const body = { ...payload, eventId: id };
    await this.em.execute('insert into outbox_events (id, topic, payload) values (?, ?, ?)', [
      id,
      channelOf(topic, key),
      JSON.stringify(body),
    ]);
    this.ids.push(id);
    return id;
  }

  /** Many events in one insert: a settled batch of 100 deadlines writes its events in one round trip. */
  async addMany(items: EventItem[]): Promise<void> {
    if (items.length === 0) return;
    const rows = items.map((item) => {
      const id = randomUUID();
      return { id, topic: channelOf(item.topic, item.key), payload: { ...item.payload, eventId: id } };
    });
    await this.em.execute(
      `insert into outbox_events (id, topic, payload)
       select id, topic, payload from jsonb_to_recordset(?::jsonb) as r(id uuid, topic text, payload jsonb)`,
      [JSON.stringify(rows)],
    );
    this.ids.push(...rows.map((r) => r.id));
  }
}

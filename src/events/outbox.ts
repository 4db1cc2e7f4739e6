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

/**
 * An outbox row that stands for many events: a set-based statement that changes many rows at once (a
 * batch of auction ends) writes one such row, under a topic of its own that starts with `@` (never a
 * channel), instead of one row per event. Its events are built from the rows the statement changed:
 * right after commit by the statement's caller, and again from the same rows, with the same event ids,
 * whenever the outbox is read back (the sweep after a crash, a subscriber's catch-up). So the rows must
 * not change after the batch: an ended auction never does.
 */
export interface EventBatchKind {
  /** The outbox rows' topic, `@`-prefixed. */
  readonly topic: string;
  /** Whether its events may be on this channel (a subscriber catching up reads only batches that may hold its). */
  covers(channel: string): boolean;
  /** The events of these rows' payloads, in the order they were committed. */
  expand(em: EntityManager, rows: ReadonlyArray<{ id: string; payload: unknown }>): Promise<PublishedEvent[]>;
}

/** An outbox row as read back: its own event, or a batch of them. */
export interface OutboxRow {
  id: string;
  topic: string;
  payload: Record<string, unknown>;
}

/** The event batch kinds of this server, by topic: turns outbox rows back into the events they hold. */
export class EventBatches {
  private readonly kinds: Map<string, EventBatchKind>;

  constructor(kinds: readonly EventBatchKind[]) {
    for (const kind of kinds) if (!kind.topic.startsWith('@')) throw new Error(`event batch topic ${kind.topic} must start with @`);
    this.kinds = new Map(kinds.map((k) => [k.topic, k]));
  }

  /** The batch topics whose events may be on any of these channels. */
  topicsCovering(channels: readonly string[]): string[] {
    return [...this.kinds.values()].filter((k) => channels.some((c) => k.covers(c))).map((k) => k.topic);
  }

  /** Whether this row is an event batch (not an event of its own). */
  holds(row: OutboxRow): boolean {
    return this.kinds.has(row.topic);
  }

  /** The events of these rows, in the rows' order; each carries the id of the row that holds it. */
  async expand(em: EntityManager, rows: readonly OutboxRow[]): Promise<PublishedEvent[]> {
    const expanded = new Map<string, PublishedEvent[]>();
    for (const [topic, kind] of this.kinds) {
      const own = rows.filter((r) => r.topic === topic);
      if (own.length === 0) continue;
      for (const event of await kind.expand(em, own)) {
        const list = expanded.get(event.outboxId!) ?? [];
        list.push(event);
        expanded.set(event.outboxId!, list);
      }
    }
    return rows.flatMap((r) =>
      this.kinds.has(r.topic) ? (expanded.get(r.id) ?? []) : [{ channel: r.topic, payload: r.payload as PublishedEvent['payload'], outboxId: r.id }],
    );
  }
}

function outboxRow(item: EventItem) {
  const id = randomUUID();
  return { id, topic: channelOf(item.topic, item.key), payload: { ...item.payload, eventId: id } as PublishedEvent['payload'] };
}

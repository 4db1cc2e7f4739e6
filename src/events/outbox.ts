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

/** One entity of an event batch: its id, then the ids of its events (null for an event it did not have). */
export type BatchEntry = [string, ...Array<string | null>];

/**
 * An outbox row that stands for many events: a set-based statement that changes many rows at once (a
 * batch of auction ends) writes one such row, under a topic of its own that starts with `@` (never a
 * channel), with the payload `{ entries: BatchEntry[] }`, instead of one row per event. Its events are
 * built from the rows the statement changed: right after commit by the statement's caller, and again
 * from the same rows, with the same event ids, whenever the outbox is read back (the sweep after a
 * crash, a subscriber's catch-up). So the rows must not change after the batch: an ended auction never does.
 */
export interface EventBatchKind {
  /** The outbox rows' topic, `@`-prefixed. */
  readonly topic: string;
  /** For a channel: 'all' (a string like an id) when any entity of the batch may have an event on it, an entity's id when only that one may, null when none. */
  entityOn(channel: string): string | null;
  /** The events of these entries, each held by its `outboxId`, in the entries' order. */
  expand(em: EntityManager, entries: ReadonlyArray<{ outboxId: string; entry: BatchEntry }>): Promise<PublishedEvent[]>;
}

/** `entityOn` for a batch whose events go on `all` (every entity's) and on `each:<entity id>`. */
export function entityOnChannels(all: string, each: string): EventBatchKind['entityOn'] {
  const prefix = `${each}:`;
  return (channel) => (channel === all ? 'all' : channel.startsWith(prefix) ? channel.slice(prefix.length) : null);
}

/** An outbox row as read back: its own event, or a batch of them. */
export interface OutboxRow {
  id: string;
  topic: string;
  payload: Record<string, unknown>;
}

/** Which batches' entries a reader of some channels needs, per batch topic: all of them, or those of some entities. */
export interface BatchWants {
  topic: string;
  all: boolean;
  ids: string[];
}

/** The event batch kinds of this server, by topic: turns outbox rows back into the events they hold. */
export class EventBatches {
  private readonly kinds: Map<string, EventBatchKind>;

  constructor(kinds: readonly EventBatchKind[]) {
    for (const kind of kinds) if (!kind.topic.startsWith('@')) throw new Error(`event batch topic ${kind.topic} must start with @`);
    this.kinds = new Map(kinds.map((k) => [k.topic, k]));
  }

  topics(): string[] {
    return [...this.kinds.keys()];
  }

  /** Per batch topic whose events may be on these channels: whether every entry is wanted, or which entities'. */
  wants(channels: readonly string[]): BatchWants[] {
    const wants: BatchWants[] = [];
    for (const kind of this.kinds.values()) {
      const on = channels.map((c) => kind.entityOn(c)).filter((e) => e !== null);
      if (on.length > 0) wants.push({ topic: kind.topic, all: on.includes('all'), ids: [...new Set(on.filter((e) => e !== 'all'))] });
    }
    return wants;
  }

  /** Whether this row is an event batch (not an event of its own). */
  holds(row: OutboxRow): boolean {
    return this.kinds.has(row.topic);
  }

  /**
   * The events of these rows, in the rows' order; each carries the id of the row that holds it. Given
   * `channels`, a batch's entries are kept to those that may have an event on one of them (a subscriber
   * of one auction catching up reads that auction, not every auction of the batch).
   */
  async expand(em: EntityManager, rows: readonly OutboxRow[], channels?: readonly string[]): Promise<PublishedEvent[]> {
    const wanted = channels && new Map(this.wants(channels).map((w) => [w.topic, w]));
    const expanded = new Map<string, PublishedEvent[]>();
    for (const [topic, kind] of this.kinds) {
      const want = wanted?.get(topic);
      if (wanted && !want) continue;
      const ids = want && !want.all ? new Set(want.ids) : null;
      const entries = rows
        .filter((r) => r.topic === topic)
        .flatMap((r) => ((r.payload.entries ?? []) as BatchEntry[]).map((entry) => ({ outboxId: r.id, entry })))
        .filter(({ entry }) => ids === null || ids.has(entry[0]));
      if (entries.length === 0) continue;
      for (const event of await kind.expand(em, entries)) {
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

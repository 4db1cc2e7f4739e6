import { sql } from 'kysely';
import type { MikroORM } from '@mikro-orm/postgresql';
import { pgArray } from '../db/sql.js';
import type { Logger } from '../logger.js';
import type { CommittedSince, EventBus, PublishedEvent } from './bus.js';
import type { EventBatches, OutboxRow } from './outbox.js';

/**
 * The outbox read back for a subscriber that was cut off: events on these topics committed since
 * `since`, oldest first, including those held by event batches (only the batches, and the entries of
 * them, that may have events on these topics are read and rebuilt).
 */
export function committedSince(orm: MikroORM, batches: EventBatches): CommittedSince {
  return async (topics, since) => {
    const em = orm.em.fork();
    // Event batches that may hold these channels' events: all of a topic's for a channel every entity
    // has events on (AUCTION_ENDED), else only those that hold one of the wanted entities.
    const batchRows = batches
      .wants(topics)
      .map((w) =>
        w.all
          ? sql`topic = ${w.topic}`
          : sql`(topic = ${w.topic} and exists (select 1 from unnest(${w.ids}::text[]) i where payload -> 'entries' @> jsonb_build_array(jsonb_build_array(i))))`,
      );
    const { rows } = await sql<OutboxRow>`
      select id, topic, payload from outbox_events
       where created_at >= ${since} and (topic = any(${topics}::text[]) ${batchRows.length > 0 ? sql`or ${sql.join(batchRows, sql` or `)}` : sql``})
       order by created_at`.execute(em.getKysely());
    const wanted = new Set(topics);
    return (await batches.expand(em, rows, topics)).filter((e) => wanted.has(e.channel));
  };
}

/**
 * Moves committed outbox rows to Redis. Each row is claimed by one conditional update first,
 * so two instances never both publish it; a row claimed by a process that died before marking
 * it published is claimed again by the sweep after `republishAfterSeconds` (and dropped by
 * subscribers that already saw its event id).
 */
export class OutboxRelay {
  private failing = false;

  constructor(
    private readonly orm: MikroORM,
    private readonly bus: EventBus,
    private readonly log: Logger,
    private readonly batches: EventBatches,
    private readonly republishAfterSeconds: number,
    private readonly retentionHours = 24,
  ) {}

  /**
   * Right after commit: hand these events to this instance's listeners, publish them for the others
   * and mark them published. Failures are left to the sweep.
   * No claim first: the sweep only takes events older than `republishAfterSeconds`, and should both
   * ever publish one, subscribers drop the second by its event id.
   */
  async publish(events: readonly PublishedEvent[]): Promise<void> {
    if (events.length === 0) return;
    const outboxIds = [...new Set(events.map((e) => e.outboxId ?? e.payload.eventId))];
    // Which instance sent which rows, for bench:chaos's account of a copy heard twice (debug: off by default).
    if (this.log.isLevelEnabled('debug')) this.log.debug({ outboxIds }, 'outbox: publishing after commit');
    this.bus.deliverLocal(events);
    // Redis's copy is built before this instance's subscribers are written to (they are, in the
    // microtasks after this call): building it after them let 1,000 ends reach the local ones 8–17 ms
    // sooner, but held every other instance's subscribers back by this instance's whole delivery (one
    // event-loop turn, hundreds of ms for a large fan-out). The hardest case is a deployment's watchers
    // spread over its instances.
    try {
      await this.bus.publish(events);
      await this.markPublished(outboxIds);
      if (this.failing) this.log.info('outbox: publishing works again');
      this.failing = false;
    } catch (err) {
      // One warning per outage; each failed batch is a debug line (the sweep republishes them all).
      const line = { err: (err as Error).message, eventIds: events.map((e) => e.payload.eventId) };
      if (this.failing) this.log.debug(line, 'outbox publish failed; the sweep will retry');
      else this.log.warn(line, 'outbox publish failed; the sweep will retry (further failures logged at debug)');
      this.failing = true;
    }
  }

  /**
   * Deletes published events older than OUTBOX_RETENTION_HOURS, oldest first, at most `limit` a run
   * (the sweep runs every few seconds, so a backlog goes in steps). An unpublished event is never
   * deleted, however old. Without this the table grew by every event forever (two rows per expired
   * order). Returns how many.
   */
  async trim(limit = 10_000): Promise<number> {
    const result = await sql`delete from outbox_events where id in (
         select id from outbox_events
          where created_at < now() - make_interval(secs => ${this.retentionHours * 3600}) and published_at is not null
          order by created_at
          limit ${limit})`.execute(this.orm.em.getKysely());
    return Number(result.numAffectedRows ?? 0);
  }

  /**
   * The safety net: publishes what a crash or a Redis outage left behind, oldest first. Returns how
   * many rows. A run takes at most `limit` rows and, an event batch weighing its entries, at most
   * `maxEntities` entities' events (and at least one row): a run stays short, within the time after
   * which another sweep may claim its rows again, and its events are never all in memory at once.
   */
  async sweep(limit = 500, maxEntities = 10_000): Promise<number> {
    // Claim and read in one statement (SKIP LOCKED: two sweeps never take the same rows).
    const em = this.orm.em.fork();
    const { rows } = await sql<OutboxRow & { created_at: Date | string }>`
      update outbox_events set claimed_at = now()
       where id in (
         select id from outbox_events
          where id in (
            select id from (
              select id, sum(weight) over (order by created_at, id) - weight as before
                from (select id, created_at, case when topic = any(${this.batches.topics()}::text[]) then jsonb_array_length(payload -> 'entries') else 1 end as weight
                        from outbox_events
                       where published_at is null
                         and created_at < now() - make_interval(secs => ${this.republishAfterSeconds})
                         and (claimed_at is null or claimed_at < now() - make_interval(secs => ${this.republishAfterSeconds}))
                       order by created_at, id
                       limit ${limit}) candidates) weighed
             where before < ${maxEntities})
          for update skip locked)
       returning id, topic, payload, created_at`.execute(em.getKysely());
    if (rows.length === 0) return 0;
    // As they were committed: an entity's events in order (`returning` keeps none).
    const at = (r: { created_at: Date | string }) => new Date(r.created_at).getTime();
    rows.sort((x, y) => at(x) - at(y) || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
    this.log.info({ count: rows.length }, 'republishing outbox events');
    // Each event batch is expanded, published and marked on its own; rows of their own in groups.
    const groups: OutboxRow[][] = [];
    for (const row of rows) {
      const last = groups.at(-1);
      if (this.batches.holds(row) || !last || this.batches.holds(last[0])) groups.push([row]);
      else last.push(row);
    }
    for (const group of groups) {
      if (this.log.isLevelEnabled('debug')) this.log.debug({ outboxIds: group.map((r) => r.id) }, 'outbox: republishing');
      await this.bus.publish(await this.batches.expand(em, group));
      await this.markPublished(group.map((r) => r.id));
    }
    return rows.length;
  }

  /**
   * Bookkeeping only: were this write lost in a crash, the event would be republished and dropped
   * by its id. So it does not wait for the WAL flush (one fsync saved per batch of events), and it is
   * one round trip: two statements in one simple-query message run as one implicit transaction, which
   * `set local` applies to. As BEGIN, SET, UPDATE and COMMIT, it was 4 of the ~12 statements of a
   * group of payments (docs/benchmarks.md, "Payments").
   */
  private async markPublished(ids: string[]): Promise<void> {
    // No bound parameter: with none, the driver sends the text as one simple-query message, which may
    // hold two statements (a parameter makes it a prepared statement, which may not). The ids are
    // uuids this server wrote, in one array literal (quoted by the tag), not a list of thousands of values.
    await sql`set local synchronous_commit = off; update outbox_events set published_at = now() where id = any(${sql.lit(pgArray(ids))}::uuid[])`.execute(
      this.orm.em.fork().getKysely(),
    );
  }
}

import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from '../logger.js';
import type { EventBus, PublishedEvent } from './bus.js';
import { pgArray } from '../db/sql.js';

interface OutboxRow {
  id: string;
  topic: string;
  payload: { eventId: string } & Record<string, unknown>;
}

/**
 * Moves committed outbox rows to Redis. Each row is claimed by one conditional update first,
 * so two instances never both publish it; a row claimed by a process that died before marking
 * it published is claimed again by the sweep after `republishAfterSeconds` (and dropped by
 * subscribers that already saw its event id).
 */
export class OutboxRelay {
  constructor(
    private readonly orm: MikroORM,
    private readonly bus: EventBus,
    private readonly log: Logger,
    private readonly republishAfterSeconds: number,
  ) {}

  /**
   * Right after commit: publish these events and mark them published. Failures are left to the sweep.
   * No claim first: the sweep only takes events older than `republishAfterSeconds`, and should both
   * ever publish one, subscribers drop the second by its event id.
   */
  async publish(events: readonly PublishedEvent[]): Promise<void> {
    if (events.length === 0) return;
    try {
      await this.bus.publish(events);
      await this.markPublished(events.map((e) => e.payload.eventId));
    } catch (err) {
      this.log.warn({ err, eventIds: events.map((e) => e.payload.eventId) }, 'outbox publish failed; the sweep will retry');
    }
  }

  /** The safety net: publishes what a crash or a Redis outage left behind. Returns how many. */
  async sweep(limit = 500): Promise<number> {
    const rows = await this.orm.em.fork().execute<OutboxRow[]>(
      `update outbox_events set claimed_at = now()
        where id in (
          select id from outbox_events
           where published_at is null
             and created_at < now() - make_interval(secs => ?)
             and (claimed_at is null or claimed_at < now() - make_interval(secs => ?))
           order by created_at
           limit ?
           for update skip locked)
        returning id, topic, payload`,
      [this.republishAfterSeconds, this.republishAfterSeconds, limit],
    );
    if (rows.length > 0) this.log.info({ count: rows.length }, 'republishing outbox events');
    await this.send(rows);
    return rows.length;
  }

  private async send(rows: OutboxRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.bus.publish(rows.map((r) => ({ channel: r.topic, payload: r.payload })));
    await this.markPublished(rows.map((r) => r.id));
  }

  /**
   * Bookkeeping only: were this write lost in a crash, the event would be republished and dropped
   * by its id. So it does not wait for the WAL flush (one fsync saved per batch of events).
   */
  private async markPublished(ids: string[]): Promise<void> {
    await this.orm.em.fork().transactional(async (em) => {
      await em.execute('set local synchronous_commit = off');
      await em.execute('update outbox_events set published_at = now() where id = any(?::uuid[])', [pgArray(ids)]);
    });
  }
}

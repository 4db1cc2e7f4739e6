import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { unavailable } from '../errors.js';
import { RecentIds } from './recent-ids.js';

/** A tiny interface over Redis pub/sub, so every instance hears every event once. */
export interface PublishedEvent {
  channel: string;
  payload: { eventId: string } & Record<string, unknown>;
  /**
   * The payload as JSON text, when its producer has it already (a statement that built it in SQL):
   * sent as is. Such a producer may give only `eventId` in `payload`, and nothing but the bus reads more.
   */
  wire?: string;
  /** The outbox row that holds it, when that is not a row of its own (an event batch: `EventBatchKind`). */
  outboxId?: string;
}

type Listener = (payload: PublishedEvent['payload']) => void;

/** The events committed on these channels (unprefixed) since a time: the outbox, read after an outage. */
export type CommittedSince = (channels: string[], since: Date) => Promise<PublishedEvent[]>;

/**
 * How far before the moment the subscriber's connection was lost the catch-up reads. An event's
 * `created_at` is its transaction's start, so a transaction that began up to this long before the loss
 * and committed during the outage is still found.
 */
const CATCH_UP_MARGIN_MS = 60_000;
const CATCH_UP_RETRY_MS = 1_000;
/**
 * Events one subscription may have waiting (references to payloads every listener shares). WebSocket
 * subscribers hand theirs to the socket at once and are bounded there (WS_MAX_BUFFERED_BYTES); this
 * bounds any other consumer. A burst of 10,000 auction ends is 10,000.
 */
const MAX_QUEUED = 100_000;

/**
 * The top-level `eventId` of an event's JSON text, found without parsing it (both `JSON.stringify`'s
 * `"eventId":"…"` and PostgreSQL's `"eventId": "…"`), or undefined. Inside a JSON string every quote
 * is escaped, so `"eventId":` occurs only as a key, and only the top level has that key.
 */
export function eventIdIn(text: string): string | undefined {
  const at = text.lastIndexOf('"eventId":');
  if (at < 0) return undefined;
  let i = at + 10;
  if (text.charCodeAt(i) === 32) i++;
  if (text.charCodeAt(i) !== 34) return undefined;
  const end = text.indexOf('"', i + 1);
  return end < 0 ? undefined : text.slice(i + 1, end);
}

/** PUBLISH channel message [channel message …] in one call. */
const PUBLISH_MANY = `for i = 1, #ARGV, 2 do redis.call('PUBLISH', ARGV[i], ARGV[i + 1]) end return #ARGV / 2`;
const PUBLISH_CHUNK = 500;
type PublishMany = { publishMany(...args: string[]): Promise<number> };

/**
 * Redis pub/sub between instances, made lossless across a Redis outage: Redis delivers a message only
 * to connections subscribed at that moment, and after a reconnect the publisher's queued commands can
 * reach Redis before the subscriber has re-joined its channels. So when the subscriber's connection comes
 * back, this instance re-subscribes, then reads from the outbox (PostgreSQL, the record) every event on
 * its channels committed since shortly before the loss, and delivers those it has not delivered yet.
 * Copies (a catch-up overlapping live delivery, a sweep's republish) are dropped by event id.
 */
export class EventBus {
  private readonly listeners = new Map<string, Set<Listener>>();
  /** Event ids already delivered here: a republish after a crash is dropped, not delivered twice. */
  private readonly seen: RecentIds;
  private readonly subscribing = new Map<string, Promise<unknown>>();
  /** When the subscriber's connection was lost (ms), until the catch-up after it has finished. */
  private lostAt: number | undefined;
  /** Bumped on every loss, so a catch-up that an outage interrupted does not count as done. */
  private losses = 0;
  private catchingUp = false;
  private closed = false;

  constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    private readonly prefix: string,
    private readonly log: Logger,
    private readonly committedSince: CommittedSince,
    dedupeWindowMs: number,
  ) {
    this.seen = new RecentIds(dedupeWindowMs);
    // EVALSHA, with EVAL when Redis restarted without the script.
    if (!('publishMany' in this.pub)) this.pub.defineCommand('publishMany', { numberOfKeys: 0, lua: PUBLISH_MANY });
    this.sub.on('message', (channel: string, message: string) => this.dispatch(channel, message));
    this.sub.on('close', () => {
      if (this.closed) return;
      this.lostAt ??= Date.now();
      this.losses++;
      this.seen.pause();
    });
    this.sub.on('ready', () => void this.catchUp());
  }

  /** False while the subscriber is cut off or still catching up: events may be late, none is lost. */
  get listening(): boolean {
    return this.sub.status === 'ready' && this.lostAt === undefined;
  }

  /** Stops the catch-up loop (the connections are closed by their owner). */
  close(): void {
    this.closed = true;
  }

  async publish(events: readonly PublishedEvent[]): Promise<void> {
    if (events.length === 0) return;
    // Not queued while the connection is down: the caller (a job settling deadlines) would wait out the
    // reconnects. The outbox keeps the events and its sweep publishes them once Redis is back.
    if (this.pub.status !== 'ready') throw new Error(`redis publisher is ${this.pub.status}`);
    // One script call per chunk instead of one PUBLISH command each: a batch of 2,000 events was 2,000
    // ioredis command objects, the largest share of what a reminders run left for the GC (heap profile,
    // docs/benchmarks.md). Chunks keep each call short for Redis.
    // Sent back to back on the one connection (so in order), awaited together.
    const calls: Array<Promise<number>> = [];
    for (let i = 0; i < events.length; i += PUBLISH_CHUNK) {
      const args: string[] = [];
      for (const e of events.slice(i, i + PUBLISH_CHUNK)) args.push(`${this.prefix}:${e.channel}`, e.wire ?? JSON.stringify(e.payload));
      calls.push((this.pub as Redis & PublishMany).publishMany(...args));
    }
    await Promise.all(calls);
  }

  /**
   * Events this instance has just committed, handed to its own listeners at once rather than after
   * their trip through Redis: the copy Redis brings back is then dropped by its id (see `dispatch`).
   * For 1,000 auctions ending at one instant that trip was ~10 ms before the first event and the
   * parsing of every copy on the way back (docs/benchmarks.md, "Same-instant ends"). Other instances
   * still hear them through Redis. Never throws: the caller is the commit's publication.
   */
  deliverLocal(events: readonly PublishedEvent[]): void {
    for (const e of events) {
      const channel = `${this.prefix}:${e.channel}`;
      if (!this.listeners.has(channel)) continue;
      try {
        this.deliver(channel, e.wire === undefined ? e.payload : (JSON.parse(e.wire) as PublishedEvent['payload']));
      } catch (err) {
        this.log.error({ err, channel }, 'events: a listener failed on a local event');
      }
    }
  }

  /** Listens on one channel; the returned function stops listening. */
  async listen(channel: string, listener: Listener): Promise<() => Promise<void>> {
    const full = `${this.prefix}:${channel}`;
    let set = this.listeners.get(full);
    if (!set) {
      set = new Set();
      this.listeners.set(full, set);
      this.subscribing.set(full, this.sub.subscribe(full));
    }
    // Every listener waits for the channel's SUBSCRIBE, not only the first.
    await this.subscribing.get(full);
    set.add(listener);
    return async () => {
      const current = this.listeners.get(full);
      if (!current) return;
      current.delete(listener);
      if (current.size === 0) {
        this.listeners.delete(full);
        this.subscribing.delete(full);
        await this.sub.unsubscribe(full).catch(() => undefined);
      }
    };
  }

  /** How many local listeners a channel has (health, tests). */
  listenerCount(channel: string): number {
    return this.listeners.get(`${this.prefix}:${channel}`)?.size ?? 0;
  }

  /** An async iterator over one channel, for GraphQL subscriptions. */
  iterate<T extends PublishedEvent['payload']>(channel: string, maxQueued = MAX_QUEUED): AsyncIterableIterator<T> {
    const queue: T[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    let overflowed = false;
    const ready = this.listen(channel, (payload) => {
      if (done) return;
      if (queue.length >= maxQueued) {
        // Its consumer stopped taking events: end it rather than hold an ever longer queue.
        overflowed = true;
        queue.length = 0;
        this.log.warn({ channel, maxQueued }, 'events: a subscription fell too far behind; ending it');
        void stop();
        return;
      }
      queue.push(payload as T);
      wake?.();
    });
    const stop = async () => {
      done = true;
      wake?.();
      await (await ready)();
    };
    const iterator: AsyncIterableIterator<T> = {
      async next() {
        await ready;
        while (!done && queue.length === 0) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        if (overflowed) throw unavailable(`More than ${maxQueued} events were waiting for this subscription; subscribe again`);
        if (queue.length > 0) return { value: queue.shift()!, done: false };
        return { value: undefined, done: true };
      },
      async return() {
        await stop();
        return { value: undefined, done: true };
      },
      async throw(err?: unknown) {
        await stop();
        throw err;
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
    return iterator;
  }

  /**
   * After the subscriber's connection is back: make sure Redis has every channel again (ioredis
   * re-subscribes on its own; this waits for Redis to confirm), then deliver what was committed meanwhile.
   * Retried while it fails (PostgreSQL may be down too); a new loss meanwhile starts it over.
   */
  private async catchUp(): Promise<void> {
    if (this.lostAt === undefined || this.catchingUp || this.closed) return;
    this.catchingUp = true;
    let warned = false;
    try {
      while (this.lostAt !== undefined && !this.closed && this.sub.status === 'ready') {
        const losses = this.losses;
        const since = new Date(this.lostAt - CATCH_UP_MARGIN_MS);
        try {
          const channels = [...this.listeners.keys()];
          if (channels.length > 0) await this.sub.subscribe(...channels);
          const topics = channels.map((c) => c.slice(this.prefix.length + 1));
          const events = topics.length > 0 ? await this.committedSince(topics, since) : [];
          let delivered = 0;
          for (const e of events) if (this.deliver(`${this.prefix}:${e.channel}`, e.payload)) delivered++;
          if (losses !== this.losses) continue;
          this.lostAt = undefined;
          this.seen.resume();
          this.log.info({ since: since.toISOString(), read: events.length, delivered }, 'events: caught up after the subscriber reconnected');
        } catch (err) {
          if (!warned) this.log.warn({ err: (err as Error).message }, 'events: catching up failed; retrying');
          warned = true;
          await new Promise((r) => setTimeout(r, CATCH_UP_RETRY_MS));
        }
      }
    } finally {
      this.catchingUp = false;
    }
  }

  private dispatch(channel: string, message: string): void {
    if (!this.listeners.has(channel)) return;
    // This instance's own events come back from Redis after `deliverLocal` delivered them: dropped by
    // the id in their text, unparsed.
    const id = eventIdIn(message);
    if (id !== undefined && this.seen.has(id)) return;
    let payload: PublishedEvent['payload'];
    try {
      payload = JSON.parse(message) as PublishedEvent['payload'];
    } catch {
      this.log.warn({ channel }, 'dropped a malformed event');
      return;
    }
    this.deliver(channel, payload);
  }

  /** Hands an event to this channel's listeners unless this instance delivered it already. */
  private deliver(channel: string, payload: PublishedEvent['payload']): boolean {
    const set = this.listeners.get(channel);
    if (!set || !this.seen.firstTime(payload.eventId)) return false;
    for (const listener of set) listener(payload);
    return true;
  }
}

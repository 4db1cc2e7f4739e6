import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';

/** A tiny interface over Redis pub/sub, so every instance hears every event once. */
export interface PublishedEvent {
  channel: string;
  payload: { eventId: string } & Record<string, unknown>;
}

type Listener = (payload: PublishedEvent['payload']) => void;

const SEEN_LIMIT = 10_000;

export class EventBus {
  private readonly listeners = new Map<string, Set<Listener>>();
  /** Event ids already delivered here: a republish after a crash is dropped, not delivered twice. */
  private readonly seen = new Set<string>();
  private readonly subscribing = new Map<string, Promise<unknown>>();

  constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    private readonly prefix: string,
    private readonly log: Logger,
  ) {
    this.sub.on('message', (channel: string, message: string) => this.dispatch(channel, message));
  }

  async publish(events: readonly PublishedEvent[]): Promise<void> {
    if (events.length === 0) return;
    const pipeline = this.pub.pipeline();
    for (const e of events) pipeline.publish(`${this.prefix}:${e.channel}`, JSON.stringify(e.payload));
    const results = await pipeline.exec();
    const failed = results?.find(([err]) => err);
    if (failed) throw failed[0];
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
  iterate<T extends PublishedEvent['payload']>(channel: string): AsyncIterableIterator<T> {
    const queue: T[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    const ready = this.listen(channel, (payload) => {
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

  private dispatch(channel: string, message: string): void {
    const set = this.listeners.get(channel);
    if (!set) return;
    let payload: PublishedEvent['payload'];
    try {
      payload = JSON.parse(message);
    } catch {
      this.log.warn({ channel }, 'dropped a malformed event');
      return;
    }
    if (this.seen.has(payload.eventId)) return;
    this.seen.add(payload.eventId);
    if (this.seen.size > SEEN_LIMIT) this.seen.delete(this.seen.values().next().value!);
    for (const listener of set) listener(payload);
  }
}

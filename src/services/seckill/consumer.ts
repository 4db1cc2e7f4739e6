import { Redis } from 'ioredis';
import type { Transactions } from '../../db/transactions.js';
import type { Logger } from '../../logger.js';
import type { EntryOutcome, SeckillBatches, StreamEntry } from './batch.js';
import type { SaleStore } from './store.js';

export interface ConsumerSettings {
  group: string;
  batch: number;
  blockMs: number;
  claimIdleMs: number;
  maxDeliveries: number;
  /** Acknowledged entries beyond a stream's newest this many are trimmed. */
  streamKeep: number;
}

/**
 * A stream is trimmed at most once a second per instance, after acknowledgements, removing at most
 * this many entries at a time: the script reads that many ids to find its bound (~1 ms of Redis for
 * 5,000). A sale's stream grows by the units it sells (the Lua step adds only queued requests), so a
 * second's worth is far below this; a backlog (a server down through a sale) goes 5,000 a second.
 */
const TRIM_EVERY_MS = 1000;
const TRIM_MOST = 5000;

/** The last failure of an entry, kept for its dead letter's `reason`; bounded (failures are rare, a storm is not kept). */
const FAILURES_KEPT = 1000;

type RawEntry = [id: string, fields: string[] | null];

function parse([id, fields]: RawEntry): StreamEntry {
  const get = (name: string) => {
    if (!fields) return null;
    for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
    return null;
  };
  return { id, uid: get('uid'), ts: get('ts'), rid: get('rid') };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * This instance's consumer in the group, on every sale's stream. One blocking XREADGROUP over all
 * streams on a connection of its own (a blocked connection can do nothing else); each stream's part
 * of a read is one transaction (SeckillBatches), acknowledged after commit. Entries a consumer left
 * pending (it died, or its batch failed) are taken over with XAUTOCLAIM once idle for
 * SECKILL_CLAIM_IDLE_MS; one delivered SECKILL_MAX_DELIVERIES times without success moves to the
 * dead-letter stream instead of being tried again.
 */
export class SeckillConsumer {
  private readonly streams = new Map<string, string>();
  private readonly blocking: Redis;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private nextClaim = 0;
  /** Publications of committed batches still under way: `stop` waits for them. */
  private readonly publishing = new Set<Promise<void>>();
  /** The last committed batch's settling in Redis, under way while the next batch is read. */
  private settling: Promise<void> = Promise.resolve();
  /** The blocking connection's CLIENT ID (for CLIENT UNBLOCK), known once asked on this connection. */
  private blockingId: number | undefined;
  /** Bumped by every newly watched stream; `readOf` is the count the read in flight was sent with. */
  private streamsVersion = 0;
  private readOf: number | undefined;
  /** Per stream: when it was last trimmed, and the trim waiting for its turn. */
  private readonly trims = new Map<string, { at: number; timer?: NodeJS.Timeout }>();
  private readonly trimming = new Set<Promise<void>>();
  /** Entry id -> why it last failed here, for the dead letter if it fails too often. */
  private readonly failures = new Map<string, string>();

  constructor(
    redisUrl: string,
    private readonly redis: Redis,
    private readonly store: SaleStore,
    private readonly batches: SeckillBatches,
    private readonly tx: Transactions,
    private readonly settings: ConsumerSettings,
    private readonly name: string,
    private readonly log: Logger,
  ) {
    this.blocking = new Redis(redisUrl, { maxRetriesPerRequest: null, lazyConnect: true });
    this.blocking.on('error', () => undefined); // reconnects on its own; the loop logs what failed
    this.blocking.on('close', () => (this.blockingId = undefined)); // a new connection has a new id
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Consume this sale's stream too (creating the group at the stream's start if need be). Idempotent. */
  async watch(productId: string): Promise<void> {
    if (this.streams.has(productId)) return;
    const stream = this.store.stream(productId);
    await this.createGroup(stream);
    if (this.streams.has(productId)) return;
    this.streams.set(productId, stream);
    this.streamsVersion++;
    this.log.info(
      { productId, stream, group: this.settings.group, consumer: this.name },
      `seckill stream server started: productID=${productId} stream=${stream} group=${this.settings.group} consumer=${this.name}`,
    );
    this.wake?.();
    await this.interruptRead();
  }

  /**
   * A read blocked on the other sales' streams would name this one only after SECKILL_BLOCK_MS: a
   * sale started just before its crowd came would lose up to that much of its first second. CLIENT
   * UNBLOCK ends the read (as a timeout would) and the next one names every stream. A read sent but
   * not yet blocked is unblocked a moment later; after 200 ms the block's own timeout is left to do it.
   */
  private async interruptRead(): Promise<void> {
    for (let tries = 0; tries < 20 && this.readOf !== undefined && this.readOf !== this.streamsVersion; tries++) {
      if (this.blockingId !== undefined && Number(await this.redis.client('UNBLOCK', this.blockingId).catch(() => 0)) === 1) return;
      await sleep(10);
    }
  }

  watching(): string[] {
    return [...this.streams.keys()];
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.wake?.();
    this.blocking.disconnect(); // ends a blocked read at once; a batch being written finishes first
    await this.loop;
    await this.settling;
    await Promise.all(this.publishing);
    for (const t of this.trims.values()) clearTimeout(t.timer);
    await Promise.all(this.trimming);
  }

  private async createGroup(stream: string): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', stream, this.settings.group, '0', 'MKSTREAM');
    } catch (err) {
      if (!String((err as Error).message).includes('BUSYGROUP')) throw err;
    }
  }

  private async run(): Promise<void> {
    // One warning per outage, not one per retry; one line when reading works again.
    let failing = false;
    while (this.running) {
      try {
        if (this.streams.size === 0) {
          await new Promise<void>((resolve) => {
            this.wake = resolve;
            setTimeout(resolve, this.settings.blockMs);
          });
          continue;
        }
        if (Date.now() >= this.nextClaim) {
          await this.reclaim();
          // Half the idle time: an abandoned entry waits at most 1.5 × SECKILL_CLAIM_IDLE_MS.
          this.nextClaim = Date.now() + Math.max(50, this.settings.claimIdleMs / 2);
        }
        await this.read();
        if (failing) this.log.info('seckill: reading the streams works again');
        failing = false;
      } catch (err) {
        if (!this.running) break;
        const message = String((err as Error).message);
        if (message.includes('NOGROUP')) {
          // Redis lost the stream (a restart without persistence): the groups come back empty.
          this.log.warn({ err: message }, 'seckill: a stream or its group is gone; creating them again');
          for (const stream of this.streams.values()) await this.createGroup(stream).catch(() => undefined);
        } else {
          if (!failing) this.log.warn({ err: message }, 'seckill: reading the streams failed; retrying');
          failing = true;
          await sleep(200);
        }
      }
    }
  }

  private async read(): Promise<void> {
    // The streams and their version together, marked before any await: a sale watched from here on
    // ends this read (interruptRead), even one watched while the read is still being sent.
    const keys = [...this.streams.values()];
    this.readOf = this.streamsVersion;
    let res: Array<[string, RawEntry[]]> | null;
    try {
      if (this.blocking.status === 'wait') await this.blocking.connect();
      this.blockingId ??= Number(await this.blocking.client('ID'));
      res = (await this.blocking.xreadgroup(
        'GROUP',
        this.settings.group,
        this.name,
        'COUNT',
        this.settings.batch,
        'BLOCK',
        this.settings.blockMs,
        'STREAMS',
        ...keys,
        ...keys.map(() => '>'),
      )) as Array<[string, RawEntry[]]> | null;
    } finally {
      this.readOf = undefined;
    }
    for (const [stream, entries] of res ?? []) {
      const productId = this.store.productOf(stream);
      if (productId && entries.length > 0) await this.handle(productId, entries.map(parse));
    }
  }

  /** Dead-letters what was delivered too often, then takes over what other (or this) consumers left idle. */
  private async reclaim(): Promise<void> {
    const { group, claimIdleMs, batch, maxDeliveries } = this.settings;
    for (const [productId, stream] of this.streams) {
      const pending = (await this.redis.xpending(stream, group, 'IDLE', claimIdleMs, '-', '+', batch)) as Array<[string, string, number, number]>;
      for (const [id, consumer, , deliveries] of pending) {
        if (deliveries < maxDeliveries) continue;
        // The last failure seen here, if this instance saw one; another instance's is in its log.
        const reason = this.failures.get(id) ?? `failed ${deliveries} deliveries`;
        if (await this.store.deadLetter(productId, group, id, deliveries, reason)) {
          this.log.error({ productId, stream, id, consumer, deliveries, reason }, 'seckill: entry failed too often; moved to the dead-letter stream');
        }
        this.failures.delete(id);
      }
      const [, claimed] = (await this.redis.xautoclaim(stream, group, this.name, claimIdleMs, '0-0', 'COUNT', batch)) as [string, RawEntry[]];
      // Redis 6.2 answers a deleted entry as nil fields; 7.0 lists its id apart (not here).
      const entries = claimed.filter((e) => e && e[1] !== null).map(parse);
      if (entries.length > 0) {
        this.log.warn({ productId, stream, count: entries.length }, 'seckill: took over entries left pending');
        await this.handle(productId, entries);
      }
    }
  }

  /**
   * One transaction for the batch; if it fails (one bad entry must not hold up a hundred good ones),
   * each entry alone. Whatever still fails stays pending: retried after the idle time, dead-lettered
   * after SECKILL_MAX_DELIVERIES.
   */
  private async handle(productId: string, entries: StreamEntry[]): Promise<void> {
    const stream = this.store.stream(productId);
    try {
      await this.persist(productId, stream, entries);
      return;
    } catch (err) {
      if (entries.length === 1) {
        this.failed(entries[0].id, err);
        this.log.error({ err, productId, id: entries[0].id }, 'seckill: entry failed; left pending for a retry');
        return;
      }
      this.log.warn({ err, productId, count: entries.length }, 'seckill: batch failed; trying its entries one by one');
    }
    for (const entry of entries) {
      try {
        await this.persist(productId, stream, [entry]);
      } catch (err) {
        this.failed(entry.id, err);
        this.log.error({ err, productId, id: entry.id }, 'seckill: entry failed; left pending for a retry');
      }
    }
  }

  private failed(id: string, err: unknown): void {
    if (this.failures.size >= FAILURES_KEPT) this.failures.delete(this.failures.keys().next().value!);
    this.failures.set(id, String((err as Error)?.message ?? err).slice(0, 500));
  }

  /**
   * Trims the stream soon: at once if it was not trimmed in the last TRIM_EVERY_MS, else when that
   * has passed (so the last acknowledgements of a sale are trimmed too, without a later one). A trim
   * that removed TRIM_MOST entries may have left more: it asks for the next turn itself.
   */
  private trimSoon(productId: string): void {
    if (!this.running) return;
    let state = this.trims.get(productId);
    if (!state) this.trims.set(productId, (state = { at: 0 }));
    if (state.timer) return;
    const slot = state;
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      slot.at = Date.now();
      const trim = this.store
        .trim(productId, this.settings.streamKeep, TRIM_MOST)
        .then((removed) => {
          if (removed >= TRIM_MOST) this.trimSoon(productId);
        })
        .catch((err) => this.log.warn({ err, productId }, 'seckill: trimming a stream failed; tried again after the next acknowledgement'));
      this.trimming.add(trim);
      void trim.finally(() => this.trimming.delete(trim));
    }, Math.max(0, slot.at + TRIM_EVERY_MS - Date.now()));
  }

  /**
   * One transaction, then the settling in Redis. The events go out, the orders' expiry is armed and
   * the settling runs while the next batch is read: the outbox has the events, so a publication that
   * fails is sent again by the relay, not lost; the next batch's transaction starts only once this
   * settling is done, so batches settle in order. A settling that fails leaves the entries pending
   * (not acknowledged): taken over after SECKILL_CLAIM_IDLE_MS, found logged (SEEN) and only
   * acknowledged then; their buyer-set adoption or release is not redone (as when a batch's settling
   * failed before); `startFlashSale` rebuilds the sale in Redis from PostgreSQL.
   */
  private async persist(productId: string, stream: string, entries: StreamEntry[]): Promise<void> {
    await this.settling;
    const { result, published } = await this.tx.runThenPublish((uow) => this.batches.persist(uow, productId, entries), { tasksAlong: true });
    this.publishing.add(published);
    void published.finally(() => this.publishing.delete(published));
    this.settling = this.settle(productId, stream, result).catch((err) =>
      this.log.warn({ err, productId, count: entries.length }, 'seckill: a committed batch could not be acknowledged; its entries are taken over later'),
    );
  }

  /**
   * After commit: acknowledge, and make Redis agree with what PostgreSQL decided. An order Redis did
   * not count (a BFF's entry, or one queued before a rebuild) takes its unit there too; an entry the
   * Lua step took a unit for (it has a `rid`) and PostgreSQL refused gives it back, and its user stops
   * being a buyer unless PostgreSQL says they hold a live order (DUPLICATE). Each step is guarded by
   * the buyer set, so what a rebuild already counted is not counted twice. A crash before this leaves
   * the entries pending: the next delivery finds them logged (SEEN) and only acknowledges.
   */
  private async settle(productId: string, stream: string, outcomes: EntryOutcome[]): Promise<void> {
    if (this.failures.size > 0) for (const o of outcomes) this.failures.delete(o.entry.id);
    await Promise.all([
      this.redis.xack(stream, this.settings.group, ...outcomes.map((o) => o.entry.id)),
      ...outcomes.map((o) => {
        if (o.status === 'ORDERED') return this.store.adopt(productId, o.entry.uid!);
        if (o.status === 'FAILED' && o.entry.rid && o.entry.uid) return this.store.release(productId, o.entry.uid, o.reason !== 'DUPLICATE', true);
        return null;
      }),
    ]);
    this.trimSoon(productId);
  }
}

import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Product } from '../../entities/Product.js';
import { badInput, conflict, notFound } from '../../errors.js';
import { checkFirst, pageOf, type Page } from '../../pagination.js';
import { validUid } from './batch.js';
import type { FlashSales, SeckillTicket } from './sales.js';
import type { SaleStore } from './store.js';

/** A flash-sale entry that failed SECKILL_MAX_DELIVERIES times, as admins see it. */
export interface DeadLetter {
  /** `{productId}:{its id in the dead-letter stream}`: one id names the sale and the entry. */
  id: string;
  /** Its id in `stream:seckill:{productId}` (when it was queued: the id's time). */
  streamId: string;
  userId: string | null;
  reason: string;
  attempts: number;
  /** When it was moved to the dead-letter stream. */
  at: Date;
}

const STREAM_ID = /^\d{1,20}-\d{1,20}$/;
const DEAD_LETTER_ID = /^([1-9]\d{0,17}):(\d{1,20}-\d{1,20})$/;

function parseDeadLetterId(id: string): { productId: string; deadId: string } {
  const m = DEAD_LETTER_ID.exec(id);
  if (!m) throw badInput('id is not a dead letter id (flashSaleDeadLetters answers them)', 'id');
  return { productId: m[1], deadId: m[2] };
}

const encodeCursor = (deadId: string) => Buffer.from(`dead:${deadId}`).toString('base64url');

function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString();
  const deadId = text.startsWith('dead:') ? text.slice(5) : '';
  if (!STREAM_ID.test(deadId)) throw badInput('after is not a cursor this API returned', 'after');
  return deadId;
}

/**
 * A sale's dead letters (`stream:seckill:{productId}:dead`, written by the consumer's DEAD step):
 * listed, replayed (the request taken again under the sale's rules) or discarded by admins. Redis
 * holds them; PostgreSQL says which sales exist.
 */
export class DeadLetters {
  constructor(
    private readonly store: SaleStore,
    private readonly sales: FlashSales,
  ) {}

  /** Oldest first (the order they died in), `first` at a time. */
  async list(em: EntityManager, productId: string, first: number, after?: string | null): Promise<Page<DeadLetter>> {
    checkFirst(first);
    const product = await this.sales.sale(em, productId);
    const afterId = after == null ? null : decodeCursor(after);
    // Sent together, so the connection pipelines them into one round trip.
    const [entries, previous] = await Promise.all([
      this.store.deadEntries(product.id, afterId, first + 1),
      afterId === null ? false : this.store.hasDeadUpTo(product.id, afterId),
    ]);
    const nodes = entries.slice(0, first).map(
      (e): DeadLetter => ({
        id: `${product.id}:${e.deadId}`,
        streamId: e.streamId,
        userId: e.uid,
        // Dead letters written before reasons were kept have none: all that is known is the count.
        reason: e.reason ?? `failed ${e.deliveries} deliveries`,
        attempts: e.deliveries,
        at: new Date(Number(e.deadId.split('-')[0])),
      }),
    );
    return pageOf(nodes, (_, i) => encodeCursor(entries[i].deadId), { next: entries.length > first, previous });
  }

  /**
   * The dead letter's request taken again through the Lua step, as if its user asked now: QUEUED (and
   * the dead letter removed, atomically with the take, so a second replay finds nothing), or
   * SOLD_OUT / DUPLICATE / CLOSED with the dead letter kept for a later replay or a discard.
   */
  async replay(em: EntityManager, id: string, now: Date): Promise<SeckillTicket> {
    const { productId, deadId } = parseDeadLetterId(id);
    const product = await this.sales.sale(em, productId);
    if (!product.active) throw conflict(`Product ${productId} is not on sale any more`);
    const entry = await this.store.deadEntryOf(productId, deadId);
    if (!entry) throw notFound('Dead letter', id);
    if (!validUid(entry.uid)) throw conflict(`Dead letter ${id} names no valid user: it can only be discarded`);
    const requestId = randomUUID();
    const status = await this.store.replay(productId, deadId, entry.uid, requestId, now);
    if (status === 'GONE') throw notFound('Dead letter', id);
    if (status === 'INACTIVE') throw conflict(`Product ${productId} is not on sale any more`);
    return { requestId, productId, status };
  }

  /** True when it was removed; false when it was gone already (discarded or replayed meanwhile). */
  async discard(em: EntityManager, id: string): Promise<boolean> {
    const { productId, deadId } = parseDeadLetterId(id);
    await this.sales.sale(em, productId);
    return this.store.discardDead(productId, deadId);
  }

  /** Every sale's dead letters (the `deadline_seckill_dead_letters` gauge). */
  async total(em: EntityManager): Promise<number> {
    const sales = await em.find(Product, { kind: 'FLASH_SALE' }, { fields: ['id'] });
    return (await this.store.deadCounts(sales.map((p) => p.id))).reduce((a, b) => a + b, 0);
  }
}

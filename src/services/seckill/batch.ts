import { LockMode } from '@mikro-orm/core';
import type { UnitOfWork } from '../../db/transactions.js';
import type { Order } from '../../entities/Order.js';
import { Product } from '../../entities/Product.js';
import { orderWire } from '../../events/types.js';
import type { OrderCreation } from '../orders/create.js';
import { batchFacts, writeBatch, type LogRow } from './sql.js';

/** One stream entry as the consumer read it: the Lua step's `uid`, `ts`, `rid`, or a BFF's `uid`, `ts`. */
export interface StreamEntry {
  id: string;
  uid: string | null;
  ts: string | null;
  rid: string | null;
}

/**
 * Why an entry made no order. SOLD_OUT, DUPLICATE and CLOSED are the ticket's words; INVALID a
 * malformed entry; INACTIVE a product withdrawn (`updateProduct`) before its entry was ordered.
 */
export type FailReason = 'SOLD_OUT' | 'DUPLICATE' | 'CLOSED' | 'INVALID' | 'NOT_A_SALE' | 'INACTIVE';

export type EntryOutcome =
  | { entry: StreamEntry; status: 'ORDERED'; orderId: string }
  | { entry: StreamEntry; status: 'FAILED'; reason: FailReason }
  /** Recorded by an earlier delivery: acknowledged, nothing else. */
  | { entry: StreamEntry; status: 'SEEN' };

/** The time Redis added an entry (the first part of its id): the sale window is judged by it, however late it is consumed. */
export const entryTime = (id: string) => Number(id.split('-')[0]);

/** User ids are 1 to 200 characters without surrounding spaces, as everywhere (`checkUserId`). */
export const validUid = (uid: string | null): uid is string => uid !== null && uid.length > 0 && uid.length <= 200 && uid === uid.trim();

/**
 * A batch of one sale's stream entries, made into orders in the caller's transaction. The rules are
 * checked again here against PostgreSQL (the record), because an entry may come from a BFF that
 * skipped the Lua step, or from before a Redis rebuild: window, one live order per user, stock.
 * The product row is locked first, so batches of one sale (any consumer, any instance) run one at a
 * time and each sees the last one's orders; the unique partial index is the backstop.
 */
export class SeckillBatches {
  constructor(
    private readonly creation: OrderCreation,
    /** After the batch committed: its orders need a way to be paid (their payment is started then). */
    private readonly ordered: (orders: Order[]) => void = () => undefined,
  ) {}

  async persist(uow: UnitOfWork, productId: string, entries: StreamEntry[]): Promise<EntryOutcome[]> {
    const { em } = uow;
    const product = await em.findOne(Product, { id: productId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!product) throw new Error(`product ${productId} of a seckill stream does not exist`);
    const { seen, buyers, ids } = await batchFacts(
      em,
      productId,
      entries.map((e) => e.id),
      [...new Set(entries.map((e) => e.uid).filter(validUid))],
      Math.min(entries.length, Math.max(0, product.stock ?? 0)),
    );
    const fresh = entries.filter((e) => !seen.has(e.id));
    let left = product.stock ?? 0;

    const decided: Array<{ entry: StreamEntry; reason: FailReason | null }> = [];
    for (const entry of fresh) {
      const at = entryTime(entry.id);
      let reason: FailReason | null = null;
      if (product.kind !== 'FLASH_SALE' || !product.saleStartsAt || !product.saleEndsAt) reason = 'NOT_A_SALE';
      else if (!validUid(entry.uid)) reason = 'INVALID';
      else if (!product.active) reason = 'INACTIVE';
      else if (at < product.saleStartsAt.getTime() || at >= product.saleEndsAt.getTime()) reason = 'CLOSED';
      else if (buyers.has(entry.uid)) reason = 'DUPLICATE';
      else if (left <= 0) reason = 'SOLD_OUT';
      else {
        buyers.add(entry.uid);
        left--;
      }
      decided.push({ entry, reason });
    }

    const winners = decided.filter((d) => d.reason === null);
    const orders = this.creation.seckillOrders(uow, product, winners.map((d) => d.entry.uid!), ids);
    if (orders.length > 0) {
      uow.afterCommit(() => {
        this.ordered(orders);
        return Promise.resolve();
      });
    }
    const orderOf = new Map(winners.map((d, i) => [d.entry.id, orders[i].id]));
    const reasonOf = new Map(decided.map((d) => [d.entry.id, d.reason]));
    const outcomes: EntryOutcome[] = entries.map((entry): EntryOutcome => {
      if (seen.has(entry.id)) return { entry, status: 'SEEN' };
      const reason = reasonOf.get(entry.id) ?? null;
      return reason === null ? { entry, status: 'ORDERED', orderId: orderOf.get(entry.id)! } : { entry, status: 'FAILED', reason };
    });
    await this.write(uow, productId, orders, outcomes.filter((o) => o.status !== 'SEEN'));
    return outcomes;
  }

  /**
   * The batch's writes in one statement (`writeBatch` in seckill/sql.ts), with its events: each
   * order's ORDER_UPDATED, each user's SECKILL_RESULT.
   */
  private async write(uow: UnitOfWork, productId: string, orders: Order[], recorded: EntryOutcome[]): Promise<void> {
    if (recorded.length === 0) return;
    const staged = uow.events.stage([
      ...orders.map((o) => ({ topic: 'ORDER_UPDATED' as const, payload: { order: orderWire(o) }, key: o.id, ref: '' })),
      ...recorded
        .filter((o) => validUid(o.entry.uid))
        .map((o) => ({
          topic: 'SECKILL_RESULT' as const,
          payload: {
            productId,
            userId: o.entry.uid!,
            status: o.status === 'ORDERED' ? ('ORDERED' as const) : ('FAILED' as const),
            orderId: o.status === 'ORDERED' ? o.orderId : null,
            reason: o.status === 'FAILED' ? o.reason : null,
          },
          key: `${productId}:${o.entry.uid}`,
          ref: '',
        })),
    ]);
    const logs: LogRow[] = recorded.map((o) => ({
      streamId: o.entry.id,
      productId,
      userId: (o.entry.uid ?? '').slice(0, 200),
      requestId: o.entry.rid?.slice(0, 100) ?? null,
      status: o.status === 'ORDERED' ? 'ORDERED' : 'FAILED',
      reason: o.status === 'FAILED' ? o.reason : null,
      orderId: o.status === 'ORDERED' ? o.orderId : null,
      createdAt: uow.now,
    }));
    const taken = await writeBatch(uow.em, productId, orders, logs, staged.rows);
    // Locked and counted above: the stock cannot be short here; if it were, nothing of this batch stays.
    if (orders.length > 0 && !taken) throw new Error(`product ${productId} had fewer than ${orders.length} units left`);
    staged.keep(new Set(['']));
  }
}

import { randomUUID } from 'node:crypto';
import { LockMode, raw } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { UnitOfWork } from '../../db/transactions.js';
import { Order } from '../../entities/Order.js';
import { Product } from '../../entities/Product.js';
import { SeckillLog } from '../../entities/SeckillLog.js';
import { badInput, conflict, notFound } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { parseId } from '../ids.js';
import type { ProductChange } from '../products.js';
import type { Identity } from '../users.js';
import type { SaleStore, TicketStatus } from './store.js';
import { LIVE_ORDER_STATUSES } from './sql.js';

export interface SeckillTicket {
  requestId: string;
  productId: string;
  status: TicketStatus;
}

export type SeckillResultStatus = 'QUEUED' | 'ORDERED' | 'FAILED' | 'NONE';

export interface SeckillResult {
  status: SeckillResultStatus;
  orderId: string | null;
  reason: string | null;
}

/** `left`: units still to sell; `sold`: units in orders neither cancelled nor expired; total = what the sale began with. */
export interface FlashSaleView {
  productId: string;
  total: number;
  left: number;
  sold: number;
  queued: number;
  deadLetters: number;
}

const withdrawn = (productId: string) => conflict(`Product ${productId} is not on sale any more`);

/** How long after its end a sale's stream is still consumed (late BFF entries are recorded as CLOSED). */
const CONSUME_AFTER_END_MS = 24 * 3_600_000;

/** Orders that hold a unit of the sale and their buyer's place (the unique index's states). */
const LIVE = [...LIVE_ORDER_STATUSES];

/**
 * Flash sales: PostgreSQL is the record (stock left in `products.stock`, units sold in live orders),
 * Redis the fast copy the Lua step sells from. Loading (startFlashSale, start-up, the periodic check)
 * copies PostgreSQL's numbers into Redis; the consumer (SeckillConsumer) turns queued entries into
 * orders; a closed flash-sale order gives its unit back to both.
 */
export class FlashSales {
  constructor(
    private readonly store: SaleStore,
    private readonly group: string,
    private readonly watch: (productId: string) => Promise<void>,
    private readonly log: Logger,
    /** Whether WeChat Pay (or the sandbox standing in for it) takes payments here: flash-sale orders are WECHAT. */
    private readonly wechatPays: () => boolean = () => true,
  ) {}

  /** Admins: loads the sale into Redis from PostgreSQL, replacing whatever Redis held, and consumes its stream. */
  async start(em: EntityManager, productId: string): Promise<FlashSaleView> {
    const product = await this.sale(em, productId);
    if (!product.active) throw withdrawn(product.id);
    // Otherwise every unit sold would become an order nobody can pay, expired with an error each.
    if (!this.wechatPays()) throw conflict('Flash-sale orders are paid with WECHAT, and WECHAT payments are not available on this server');
    await this.load(em, product, 'replace');
    await this.watch(product.id);
    return this.view(em, product.id);
  }

  /**
   * Start-up and every SECKILL_DISCOVER_SECONDS: every sale not long over is consumed here, and one
   * Redis lost (restarted empty) is loaded again from PostgreSQL. A sale Redis holds is left alone; a
   * withdrawn one is not loaded (its stream is still consumed: what was queued is refused).
   */
  async discover(em: EntityManager, now: Date): Promise<void> {
    const sales = await em.find(Product, { kind: 'FLASH_SALE', saleEndsAt: { $gt: new Date(now.getTime() - CONSUME_AFTER_END_MS) } }, { orderBy: { id: 'asc' } });
    for (const product of sales) {
      if (product.active && product.saleEndsAt!.getTime() > now.getTime() && (await this.load(em, product, 'missing'))) {
        this.log.warn({ productId: product.id }, 'flash sale missing from Redis: rebuilt from PostgreSQL');
      }
      await this.watch(product.id);
    }
  }

  /** The Lua step: an answer at once, the order later (`seckillResult`, `seckillResultReady`). */
  /** `emOf` is asked for an entity manager only off the hot path (a sale Redis does not hold). */
  async request(emOf: () => EntityManager, user: Identity, productId: string, now: Date): Promise<SeckillTicket> {
    const id = parseId(productId, 'a product', 'productId');
    const requestId = randomUUID();
    const status = await this.store.take(id, user.id, requestId, now);
    if (status === 'INACTIVE') throw withdrawn(id);
    // A sale Redis does not hold answers CLOSED: tell an unknown or withdrawn product apart (only then, off the hot path).
    if (status === 'CLOSED' && !(await this.sale(emOf(), id)).active) throw withdrawn(id);
    return { requestId, productId: id, status };
  }

  /**
   * Admins: the sale's window closes now, in PostgreSQL (the consumer judges entries by it) and in
   * Redis (the Lua step answers CLOSED from then on, on every instance). Redis is told before the
   * commit: if it cannot be, the stop fails and the window is as it was, never open in Redis alone
   * after the admin was told it closed. A sale not yet open closes too (its window becomes the last
   * millisecond: start before end is a rule of the table); one already over is left as it is.
   */
  async stop(uow: UnitOfWork, productId: string): Promise<FlashSaleView> {
    const product = await this.sale(uow.em, productId, true);
    const now = uow.now.getTime();
    if (product.saleEndsAt!.getTime() > now) {
      if (product.saleStartsAt!.getTime() >= now) product.saleStartsAt = new Date(now - 1);
      product.saleEndsAt = uow.now;
      await uow.em.flush();
    }
    await this.store.setWindow(product.id, { startsAt: product.saleStartsAt!, endsAt: product.saleEndsAt! });
    return this.view(uow.em, product.id);
  }

  /**
   * `updateProduct` of a FLASH_SALE, in its transaction. Withdrawn: Redis refuses requests before the
   * commit, so once the admin has the answer none is queued. Brought back: after the commit (an
   * update rolled back must not open it); a sale Redis lost meanwhile is loaded again by the periodic
   * discovery (or startFlashSale). New stock: Redis sells the difference too, after the commit; the
   * consumer checks every entry against PostgreSQL's stock anyway, so the copies never oversell.
   */
  readonly onProductChanged = async (uow: UnitOfWork, { before, product }: ProductChange): Promise<void> => {
    if (before.active && !product.active) await this.store.withdraw(product.id);
    const units = (product.stock ?? 0) - (before.stock ?? 0);
    const restored = !before.active && product.active;
    if (units === 0 && !restored) return;
    uow.afterCommit(async () => {
      if (units !== 0) await this.store.addLeft(product.id, units);
      if (restored) await this.store.restore(product.id);
    });
  };

  /** The caller's latest outcome in this sale: ORDERED (a live order), QUEUED (taken, not yet ordered), FAILED, or NONE. */
  async result(em: EntityManager, user: Identity, productId: string): Promise<SeckillResult> {
    const id = parseId(productId, 'a product', 'productId');
    const live = await em.findOne(Order, { productId: id, userId: user.id, channel: 'SECKILL', status: { $in: LIVE } }, { fields: ['id'] });
    if (live) return { status: 'ORDERED', orderId: live.id, reason: null };
    if (await this.store.isBuyer(id, user.id)) return { status: 'QUEUED', orderId: null, reason: null };
    const last = await em.findOne(SeckillLog, { productId: id, userId: user.id }, { orderBy: { id: 'desc' } });
    if (!last) return { status: 'NONE', orderId: null, reason: null };
    // An order made and since cancelled or expired is still the outcome of the request: its status says the rest.
    return last.status === 'ORDERED'
      ? { status: 'ORDERED', orderId: last.orderId, reason: null }
      : { status: 'FAILED', orderId: null, reason: last.reason };
  }

  async view(em: EntityManager, productId: string): Promise<FlashSaleView> {
    const product = await this.sale(em, productId);
    const { sold } = await this.soldAndBuyers(em, product.id, false);
    const stock = product.stock ?? 0;
    const [redisLeft, queued, deadLetters] = await Promise.all([
      this.store.left(product.id),
      this.store.queued(product.id, this.group),
      this.store.deadLetters(product.id),
    ]);
    return { productId: product.id, total: stock + sold, left: redisLeft ?? stock, sold, queued, deadLetters };
  }

  /**
   * The per-kind "closed" effect: a flash-sale order that was cancelled or expired gives its unit back
   * in Redis (PostgreSQL's stock came back in the same statement that closed it), after the commit.
   */
  readonly onClosed = (uow: UnitOfWork, orders: Order[]): Promise<void> => {
    const units = orders.filter((o) => o.channel === 'SECKILL');
    if (units.length > 0) {
      uow.afterCommit(async () => {
        for (const o of units) await this.store.release(o.productId, o.userId, true, true);
      });
    }
    return Promise.resolve();
  };

  private async load(em: EntityManager, product: Product, mode: 'replace' | 'missing'): Promise<boolean> {
    const { buyers } = await this.soldAndBuyers(em, product.id, true);
    const window = { startsAt: product.saleStartsAt!, endsAt: product.saleEndsAt! };
    return this.store.load(product.id, mode, product.stock ?? 0, window, buyers);
  }

  private async soldAndBuyers(em: EntityManager, productId: string, withBuyers: boolean): Promise<{ sold: number; buyers: string[] }> {
    const qb = em.createQueryBuilder(Order).select(['userId', 'quantity']).where({ productId, status: { $in: LIVE } });
    if (!withBuyers) {
      const [row] = await em
        .createQueryBuilder(Order)
        .select(raw('coalesce(sum(quantity), 0)::int as sold'))
        .where({ productId, status: { $in: LIVE } })
        .execute<Array<{ sold: number }>>('all');
      return { sold: Number(row?.sold ?? 0), buyers: [] };
    }
    const rows = await qb.execute<Array<{ userId: string; quantity: number }>>('all');
    return { sold: rows.reduce((n, r) => n + r.quantity, 0), buyers: [...new Set(rows.map((r) => r.userId))] };
  }

  /** A FLASH_SALE product: NOT_FOUND, or BAD_USER_INPUT for another kind. `lock`: FOR UPDATE, in a transaction. */
  async sale(em: EntityManager, productId: string, lock = false): Promise<Product> {
    const product = await em.findOne(Product, { id: parseId(productId, 'a product', 'productId') }, lock ? { lockMode: LockMode.PESSIMISTIC_WRITE } : {});
    if (!product) throw notFound('Product', productId);
    if (product.kind !== 'FLASH_SALE') throw badInput(`Product ${productId} is not a FLASH_SALE`, 'productId');
    return product;
  }
}

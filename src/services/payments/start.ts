import type { Transactions } from '../../db/transactions.js';
import type { Order } from '../../entities/Order.js';
import { PaymentIntent } from '../../entities/PaymentIntent.js';
import { unavailable } from '../../errors.js';
import type { Logger } from '../../logger.js';
import type { Providers } from '../../payments/registry.js';
import type { PaymentProvider, ProviderIntent } from '../../payments/provider.js';
import type { OrderSettlement } from '../orders/settle.js';
import { GroupQueue, type Waiting } from '../group-queue.js';
import { onlinePart } from './online.js';

/**
 * How the payments of flash-sale orders start: `concurrency` provider calls at a time, each once no
 * new flash-sale orders have come for `quietMs`, or once its order is `maxDelayMs` old.
 */
export interface BulkStarts {
  concurrency: number;
  quietMs: number;
  maxDelayMs: number;
}

/**
 * Starting online payments at their provider: one at a time for an order just made (`start`), or in
 * the background for orders made in bulk (`startLater`). A provider that cannot be reached expires
 * the order, so nothing waits for a payment that never began.
 */
export class PaymentStarts {
  constructor(
    private readonly providers: Providers,
    private readonly settlement: OrderSettlement,
    private readonly log: Logger,
    /** This server's public base URL (known once it listens): callbacks come to `<it>/api/payments/<provider>/notify`. */
    private readonly publicBaseUrl: () => string,
    private readonly bulkStarts: BulkStarts = { concurrency: 5, quietMs: 0, maxDelayMs: 0 },
  ) {}

  /**
   * After the order committed: asks its provider for a payment (no transaction is open during the
   * call) and stores what the client needs. If the provider cannot be reached the order is expired
   * at once (its wallet part given back) and the caller gets SERVICE_UNAVAILABLE.
   */
  async start(tx: Transactions, order: Order, clientIp?: string): Promise<PaymentIntent> {
    const intent = await this.createAtProvider(tx, order, clientIp);
    return tx.run(async (uow) => {
      const row = uow.em.create(PaymentIntent, intentRow(order, intent, uow.now));
      await uow.em.flush();
      return row;
    });
  }

  /** The provider's payment for the order; a provider that cannot be reached expires the order. */
  private async createAtProvider(tx: Transactions, order: Order, clientIp?: string): Promise<ProviderIntent> {
    let provider: PaymentProvider | undefined;
    try {
      provider = await this.providers.forMethod(order.paymentMethod);
      return await provider.create({
        orderNo: order.orderNo,
        amount: onlinePart(order),
        description: `Order ${order.orderNo}`,
        expiresAt: order.expiresAt!,
        notifyUrl: `${this.publicBaseUrl()}/api/payments/${provider.name}/notify`,
        clientIp,
      });
    } catch (err) {
      const name = provider?.name ?? `the ${order.paymentMethod} provider`;
      this.log.error({ err, orderId: order.id, orderNo: order.orderNo, provider: name }, 'payment could not be started: order expired');
      await tx.run((uow) => this.settlement.expireNow(uow, order.id, `The payment could not be started at ${name}`));
      throw unavailable(`The payment provider could not be reached; order ${order.id} was closed and nothing was taken`);
    }
  }

  private readonly waiting: Array<{ tx: Transactions; order: Order; due: number }> = [];
  private starting = 0;
  /** When the last bulk orders came (performance.now()), and the timer that looks again once the sale may be quiet. */
  private lastArrival = -Infinity;
  private wake?: NodeJS.Timeout;
  /**
   * Intents of bulk-started payments, stored many per transaction: the intents that come back while
   * one group is written go in the next. One transaction per intent was three round trips each on
   * the event loop of a flash sale (bench:seckill). A group that fails is written again one by one.
   */
  private readonly intents = new GroupQueue<{ tx: Transactions; order: Order; intent: ProviderIntent }, void>((group) => this.storeIntents(group), {
    maxGroup: 100,
    inFlight: 1,
  });

  /**
   * Starts the payments of orders made in bulk (flash-sale batches) in the background, a few provider
   * calls at a time, so the batch that made them never waits on a provider. An order whose provider
   * cannot be reached is expired (its unit goes back); the intents are stored in groups.
   *
   * The starts give way to the sale: they begin once no new bulk orders have come for
   * `bulkStarts.quietMs`, or once their order is `bulkStarts.maxDelayMs` old, whichever is first. A
   * start is a signed provider call on the same event loop as the sale's requests and its consumer;
   * in a sale's first second they took the time the next orders needed (bench:seckill).
   */
  startLater(tx: Transactions, orders: readonly Order[]): void {
    const now = performance.now();
    this.lastArrival = now;
    for (const order of orders) this.waiting.push({ tx, order, due: now + this.bulkStarts.maxDelayMs });
    this.pump();
  }

  /** The next waiting start may go: the sale is quiet, its order has waited long enough, or the server is stopping. */
  private mayStart(now: number): boolean {
    const next = this.waiting[0];
    return next !== undefined && (this.stopping || now >= this.lastArrival + this.bulkStarts.quietMs || now >= next.due);
  }

  private pump(): void {
    const now = performance.now();
    if (this.mayStart(now)) return this.openLanes();
    const next = this.waiting[0];
    if (next && !this.wake) {
      const at = Math.min(this.lastArrival + this.bulkStarts.quietMs, next.due);
      this.wake = setTimeout(() => {
        this.wake = undefined;
        this.pump();
      }, Math.max(1, Math.ceil(at - now)));
    }
  }

  private openLanes(): void {
    while (this.starting < this.bulkStarts.concurrency && this.mayStart(performance.now())) {
      this.starting++;
      this.track(this.startWaiting());
    }
  }

  /** One of the `concurrency` lanes: starts waiting payments one after the other while they may go. */
  private async startWaiting(): Promise<void> {
    try {
      while (this.mayStart(performance.now())) {
        const { tx, order } = this.waiting.shift()!;
        try {
          const intent = await this.createAtProvider(tx, order);
          this.track(this.intents.add({ tx, order, intent }).catch((err) => this.log.warn({ err, orderId: order.id }, 'flash-sale order payment not stored')));
        } catch (err) {
          this.log.warn({ err, orderId: order.id }, 'flash-sale order payment not started');
        }
      }
    } finally {
      this.starting--;
      if (!this.stopping && this.waiting.length > 0) this.pump();
    }
  }

  private stopping = false;
  private readonly inFlight = new Set<Promise<unknown>>();

  private track(work: Promise<unknown>): void {
    this.inFlight.add(work);
    void work.finally(() => this.inFlight.delete(work));
  }

  /**
   * At shutdown: the payments still waiting for the sale to go quiet start at once, and the server
   * waits for every start and its stored intent (each provider call is bounded by its client's
   * timeout; one that fails expires its order, as at any time).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.wake);
    this.wake = undefined;
    this.openLanes();
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  private async storeIntents(group: Array<Waiting<{ tx: Transactions; order: Order; intent: ProviderIntent }, void>>): Promise<void> {
    const { tx } = group[0].item;
    try {
      await tx.run(async (uow) => {
        for (const { item } of group) uow.em.create(PaymentIntent, intentRow(item.order, item.intent, uow.now));
        await uow.em.flush();
      });
      for (const w of group) w.resolve();
      return;
    } catch (err) {
      if (group.length === 1) throw err;
    }
    for (const w of group) {
      await tx
        .run(async (uow) => {
          uow.em.create(PaymentIntent, intentRow(w.item.order, w.item.intent, uow.now));
          await uow.em.flush();
        })
        .then(() => w.resolve(), w.reject);
    }
  }
}

/** The row a provider's intent for an order is stored as. */
function intentRow(order: Order, intent: ProviderIntent, now: Date) {
  return {
    orderId: order.id,
    provider: intent.provider,
    prepayId: intent.prepayId,
    h5Url: intent.h5Url,
    codeUrl: intent.codeUrl,
    expiresAt: intent.expiresAt,
    createdAt: now,
  };
}

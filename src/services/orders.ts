import type { EntityManager } from '@mikro-orm/postgresql';
import type { UnitOfWork } from '../db/transactions.js';
import { pgArray } from '../db/sql.js';
import { ORDER_TRANSITIONS, type OrderStatus, type PaymentMethod } from '../entities/Order.js';
import { badInput, conflict, forbidden, notFound } from '../errors.js';
import type { EventItem } from '../events/outbox.js';
import type { Deadlines, SettleFailure } from '../jobs/deadlines.js';
import type { Logger } from '../logger.js';
import { frozenPart, toOrderSnapshot, toOrderView, type OrderRow, type OrderView } from './order-rows.js';
import { decodeCursor, toPage, type Page } from './pagination.js';
import { parseId } from './ids.js';
import type { ProductService } from './products.js';
import type { Identity, UserService } from './users.js';
import { checkUserId, MAX_CENTS, type WalletService } from './wallets.js';

export const ORDER_EXPIRY = 'order-expiry';

export interface CreateOrderInput {
  productId: string;
  quantity: number;
  paymentMethod: PaymentMethod;
  walletAmount?: number | null;
}

export interface AdminCreateOrderInput {
  userId: string;
  productId: string;
  quantity: number;
  paymentMethod: PaymentMethod;
}

export interface OrderFilter {
  status?: OrderStatus | null;
  isExpired?: boolean | null;
  userId?: string | null;
}

type Closing = Extract<OrderStatus, 'CANCELLED' | 'EXPIRED'>;

const ONLINE_METHODS: readonly PaymentMethod[] = ['WECHAT', 'ALIPAY'];

function assertTransition(row: OrderRow, to: OrderStatus): void {
  if (!ORDER_TRANSITIONS[row.status].includes(to)) throw conflict(`Order ${row.id} is ${row.status}, not PENDING`);
}

/**
 * Orders and the wallet money they hold. An H5 order is PENDING until paid, cancelled or expired;
 * its wallet part is frozen at creation and either debited (paid) or unfrozen (cancelled, expired),
 * exactly once, in the transaction that changes its status.
 */
export class OrderService {
  constructor(
    private readonly deadlines: Deadlines,
    private readonly products: ProductService,
    private readonly wallets: WalletService,
    private readonly users: UserService,
    private readonly log: Logger,
    private readonly expireMinutes: number,
  ) {}

  /** The H5 two-step flow: PENDING, the wallet part frozen, a deadline at now + ORDER_EXPIRE_MINUTES. */
  async create(uow: UnitOfWork, user: Identity, input: CreateOrderInput): Promise<OrderView> {
    if (input.paymentMethod === 'OFFLINE') throw badInput('OFFLINE orders are created by admins (adminCreateOrder)', 'paymentMethod');
    const product = await this.products.row(uow.em, input.productId);
    if (product.kind === 'FLASH_SALE') throw badInput('Flash-sale products are sold through the flash sale, not createOrder', 'productId');
    const amount = this.amountOf(product.price, input.quantity);
    const walletAmount = this.walletPart(input.paymentMethod, amount, input.walletAmount);
    // Wallet before product, in every transaction that takes both: no two of them wait on each other.
    if (walletAmount > 0) await this.wallets.freeze(uow, user.id, walletAmount);
    await this.products.take(uow, product, input.quantity);
    const expiresAt = new Date(uow.now.getTime() + Math.round(this.expireMinutes * 60_000));
    const row = await this.insert(uow, {
      userId: user.id,
      productId: product.id,
      quantity: input.quantity,
      amount,
      walletAmount,
      paymentMethod: input.paymentMethod,
      channel: 'H5',
      status: 'PENDING',
      expiresAt,
    });
    if (walletAmount > 0) await this.wallets.record(uow, [{ userId: user.id, orderId: row.id, entry: 'FREEZE', amount: walletAmount }]);
    await this.announce(uow, [row]);
    uow.afterCommit(() => this.deadlines.arm(ORDER_EXPIRY, expiresAt));
    return toOrderView(toOrderSnapshot(row), uow.now);
  }

  /** Admins: a WALLET (debited from the balance at once) or OFFLINE order, PAID, with no deadline. */
  async adminCreate(uow: UnitOfWork, input: AdminCreateOrderInput): Promise<OrderView> {
    if (input.paymentMethod !== 'WALLET' && input.paymentMethod !== 'OFFLINE') {
      throw badInput('adminCreateOrder takes WALLET or OFFLINE orders only', 'paymentMethod');
    }
    checkUserId(input.userId);
    const product = await this.products.row(uow.em, input.productId);
    const amount = this.amountOf(product.price, input.quantity);
    await this.users.ensureExists(uow.em, input.userId);
    const walletAmount = input.paymentMethod === 'WALLET' ? amount : 0;
    if (walletAmount > 0) await this.wallets.debitBalance(uow, input.userId, walletAmount);
    await this.products.take(uow, product, input.quantity);
    const row = await this.insert(uow, {
      userId: input.userId,
      productId: product.id,
      quantity: input.quantity,
      amount,
      walletAmount,
      paymentMethod: input.paymentMethod,
      channel: 'ADMIN',
      status: 'PAID',
      expiresAt: null,
    });
    if (walletAmount > 0) await this.wallets.record(uow, [{ userId: input.userId, orderId: row.id, entry: 'DEBIT', amount: walletAmount }]);
    await this.announce(uow, [row]);
    return toOrderView(toOrderSnapshot(row), uow.now);
  }

  /** The owner (or an admin) pays a WALLET order: PAID, its frozen money debited, its deadline gone. */
  async payWithWallet(uow: UnitOfWork, user: Identity, orderId: string): Promise<OrderView> {
    const row = await this.lockOwn(uow.em, user, orderId);
    assertTransition(row, 'PAID');
    this.assertNotExpired(row, uow.now);
    if (row.payment_method !== 'WALLET') {
      throw badInput(`Order ${row.id} is paid by ${row.payment_method}; only WALLET orders are paid with the wallet`, 'orderId');
    }
    const frozen = await this.wallets.lockFrozen(uow.em, [row.user_id]);
    const problem = this.frozenProblem(row, frozen.get(row.user_id));
    if (problem) this.refuse(row, 'pay', problem);
    const [paid] = await uow.em.execute<OrderRow[]>(
      `with paid as (
         update orders set status = 'PAID', paid_at = ?, expires_at = null where id = ? and status = 'PENDING' returning *),
       w as (
         update wallets set frozen = frozen - p.wallet_amount, updated_at = ? from paid p where wallets.user_id = p.user_id)
       select * from paid`,
      [uow.now, row.id, uow.now],
    );
    await this.wallets.record(uow, [{ userId: row.user_id, orderId: row.id, entry: 'DEBIT', amount: row.wallet_amount }]);
    await this.announce(uow, [paid]);
    return toOrderView(toOrderSnapshot(paid), uow.now);
  }

  /** The owner or an admin cancels a PENDING order that has not yet expired; its frozen money comes back. */
  async cancel(uow: UnitOfWork, user: Identity, orderId: string, reason?: string | null): Promise<OrderView> {
    if (reason && reason.length > 500) throw badInput('reason is longer than 500 characters', 'reason');
    const row = await this.lockOwn(uow.em, user, orderId);
    assertTransition(row, 'CANCELLED');
    this.assertNotExpired(row, uow.now);
    const why = reason?.trim() || (user.role === 'admin' && user.id !== row.user_id ? 'Cancelled by an admin' : 'Cancelled by the buyer');
    const { closed, failed } = await this.close(uow, [row], 'CANCELLED', why);
    if (failed.length > 0) this.refuse(row, 'cancel', failed[0].reason);
    return toOrderView(closed[0], uow.now);
  }

  /**
   * The expiry deadline: at most `limit` PENDING orders whose `expiresAt` has come, oldest first,
   * become EXPIRED with their frozen money unfrozen. Orders another transaction holds (being paid or
   * cancelled) are skipped and looked at again in the next batch.
   */
  async expireDue(uow: UnitOfWork, limit: number, skip: readonly string[]): Promise<{ settled: string[]; failed: SettleFailure[] }> {
    const due = await uow.em.execute<OrderRow[]>(
      `select * from orders
        where status = 'PENDING' and expires_at <= ? and id <> all(?::bigint[])
        order by expires_at
        limit ?
        for update skip locked`,
      [uow.now, pgArray(skip), limit],
    );
    const minutes = Number(this.expireMinutes.toFixed(3));
    const { closed, failed } = await this.close(uow, due, 'EXPIRED', `Not paid within ${minutes} minute${minutes === 1 ? '' : 's'}`);
    return { settled: closed.map((o) => o.id), failed };
  }

  async get(em: EntityManager, user: Identity, orderId: string, now: Date): Promise<OrderView> {
    const [row] = await em.execute<OrderRow[]>('select * from orders where id = ?', [parseId(orderId, 'an order', 'orderId')]);
    if (!row) throw notFound('Order', orderId);
    this.assertMayAccess(user, row);
    return toOrderView(toOrderSnapshot(row), now);
  }

  /**
   * Newest first. Users see their own orders; admins anyone's (all, or `userId`'s). `isExpired` is the
   * same rule as the field: PENDING and `expires_at <= now`, with the same `now`.
   */
  async list(em: EntityManager, user: Identity, filter: OrderFilter, first: number, after: string | undefined, now: Date): Promise<Page<OrderView>> {
    if (!Number.isInteger(first) || first < 1 || first > 100) throw badInput('first must be between 1 and 100', 'first');
    if (user.role !== 'admin' && filter.userId != null && filter.userId !== user.id) {
      throw forbidden("Only admins can list other users' orders");
    }
    const userId = user.role === 'admin' ? filter.userId : user.id;
    const where: string[] = [];
    const params: unknown[] = [];
    if (userId != null) {
      where.push('user_id = ?');
      params.push(userId);
    }
    if (filter.status) {
      where.push('status = ?');
      params.push(filter.status);
    }
    if (filter.isExpired != null) {
      where.push(filter.isExpired ? `(status = 'PENDING' and expires_at <= ?)` : `not (status = 'PENDING' and expires_at <= ?)`);
      params.push(now);
    }
    if (after !== undefined) {
      where.push('id < ?');
      params.push(decodeCursor(after));
    }
    params.push(first + 1);
    const rows = await em.execute<OrderRow[]>(
      `select * from orders ${where.length ? `where ${where.join(' and ')}` : ''} order by id desc limit ?`,
      params,
    );
    return toPage(rows, first, (row) => toOrderView(toOrderSnapshot(row), now));
  }

  /** For `orderUpdated`: the order must exist and be the caller's (or the caller an admin). */
  async assertMayWatch(em: EntityManager, user: Identity, orderId: string): Promise<void> {
    const [row] = await em.execute<Array<Pick<OrderRow, 'user_id'>>>('select user_id from orders where id = ?', [
      parseId(orderId, 'an order', 'orderId'),
    ]);
    if (!row) throw notFound('Order', orderId);
    this.assertMayAccess(user, row);
  }

  /**
   * Closes locked PENDING orders: status, reason, no deadline, frozen money back, stock back, ledger
   * lines and events, in the caller's transaction. An order whose wallet is missing or holds too little
   * frozen money is left exactly as it was and returned as failed with the reason.
   */
  private async close(uow: UnitOfWork, rows: OrderRow[], status: Closing, reason: string) {
    const frozen = await this.wallets.lockFrozen(
      uow.em,
      rows.filter((r) => frozenPart(r) > 0).map((r) => r.user_id),
    );
    const ok: OrderRow[] = [];
    const failed: SettleFailure[] = [];
    for (const row of rows) {
      const problem = this.frozenProblem(row, frozen.get(row.user_id));
      if (problem) {
        failed.push({ id: String(row.id), reason: problem });
        continue;
      }
      if (frozenPart(row) > 0) frozen.set(row.user_id, frozen.get(row.user_id)! - frozenPart(row));
      ok.push(row);
    }
    if (ok.length === 0) return { closed: [], failed };
    // Stock rows are updated below in no particular order: two batches touching the same products
    // could deadlock, so several products are locked first, in id order (wallets, above, likewise).
    const productIds = [...new Set(ok.map((r) => String(r.product_id)))].sort((a, b) => Number(a) - Number(b));
    if (productIds.length > 1) {
      await uow.em.execute('select id from products where id = any(?::bigint[]) and stock is not null order by id for update', [
        pgArray(productIds),
      ]);
    }
    // One statement: the orders (still PENDING: the update is conditional), their wallets, their stock.
    const updated = await uow.em.execute<OrderRow[]>(
      `with closed as (
         update orders set status = ?, cancel_reason = ?, expires_at = null, closed_at = ?
          where id = any(?::bigint[]) and status = 'PENDING'
          returning *),
       released as (
         select user_id, sum(wallet_amount)::int as amount from closed
          where payment_method in ('WALLET', 'MIXED') and wallet_amount > 0 group by user_id),
       w as (
         update wallets set frozen = wallets.frozen - r.amount, balance = wallets.balance + r.amount, updated_at = ?
           from released r where wallets.user_id = r.user_id),
       returned as (
         select product_id, sum(quantity)::int as quantity from closed group by product_id),
       s as (
         update products set stock = products.stock + r.quantity
           from returned r where products.id = r.product_id and products.stock is not null)
       select * from closed order by id`,
      [status, reason, uow.now, pgArray(ok.map((r) => r.id)), uow.now],
    );
    await this.wallets.record(
      uow,
      updated.filter((r) => frozenPart(r) > 0).map((r) => ({ userId: r.user_id, orderId: String(r.id), entry: 'UNFREEZE' as const, amount: r.wallet_amount })),
    );
    const closed = await this.announce(uow, updated, status === 'EXPIRED');
    return { closed, failed };
  }

  /** Why an order's frozen money cannot be released, or null when it can. */
  private frozenProblem(row: OrderRow, walletFrozen: number | undefined): string | null {
    const part = frozenPart(row);
    if (part === 0) return null;
    if (walletFrozen === undefined) return `the wallet of user ${row.user_id} is missing`;
    if (walletFrozen < part) return `the wallet of user ${row.user_id} holds ${walletFrozen} frozen cents, the order needs ${part}`;
    return null;
  }

  /** Rolls the transaction back (by throwing) after logging what an operator needs to repair it. */
  private refuse(row: OrderRow, action: string, reason: string): never {
    this.log.error({ orderId: String(row.id), action, reason }, 'order left unchanged: its wallet does not match');
    throw conflict(`Order ${row.id} cannot be ${action === 'pay' ? 'paid' : 'cancelled'}: ${reason}`);
  }

  /** ORDER_UPDATED for every order (and ORDER_EXPIRED for expiries) into the transaction's outbox. */
  private async announce(uow: UnitOfWork, rows: OrderRow[], expired = false) {
    const orders = rows.map(toOrderSnapshot);
    const items: EventItem[] = orders.flatMap((order) => [
      ...(expired ? [{ topic: 'ORDER_EXPIRED' as const, payload: { order } }] : []),
      { topic: 'ORDER_UPDATED' as const, payload: { order }, key: order.id },
    ]);
    await uow.events.addMany(items);
    return orders;
  }

  private async insert(
    uow: UnitOfWork,
    o: {
      userId: string;
      productId: string;
      quantity: number;
      amount: number;
      walletAmount: number;
      paymentMethod: PaymentMethod;
      channel: 'H5' | 'ADMIN';
      status: 'PENDING' | 'PAID';
      expiresAt: Date | null;
    },
  ): Promise<OrderRow> {
    // orderNo: "DL", the UTC day, the id (padded to at least 10 digits): unique without a retry loop.
    const [row] = await uow.em.execute<OrderRow[]>(
      `with n as (select nextval(pg_get_serial_sequence('orders', 'id')) as id)
       insert into orders (id, order_no, user_id, product_id, quantity, amount, wallet_amount, payment_method, channel,
                           status, expires_at, paid_at, created_at)
       select n.id, 'DL' || to_char(?::timestamptz at time zone 'UTC', 'YYYYMMDD') || case when n.id < 10000000000 then lpad(n.id::text, 10, '0') else n.id::text end,
              ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
         from n
       returning *`,
      [
        uow.now,
        o.userId,
        o.productId,
        o.quantity,
        o.amount,
        o.walletAmount,
        o.paymentMethod,
        o.channel,
        o.status,
        o.expiresAt,
        o.status === 'PAID' ? uow.now : null,
        uow.now,
      ],
    );
    return row;
  }

  private amountOf(price: number, quantity: number): number {
    if (!Number.isInteger(quantity) || quantity < 1) throw badInput('quantity must be a positive integer', 'quantity');
    const amount = price * quantity;
    if (amount > MAX_CENTS) throw badInput(`The order would cost more than ${MAX_CENTS} cents`, 'quantity');
    return amount;
  }

  /** The wallet part a payment method allows: all of it (WALLET), some (MIXED) or none (online). */
  private walletPart(method: PaymentMethod, amount: number, requested: number | null | undefined): number {
    if (requested != null && (!Number.isInteger(requested) || requested < 0)) {
      throw badInput('walletAmount must be a non-negative number of cents', 'walletAmount');
    }
    if (method === 'WALLET') {
      if (requested != null && requested !== amount) throw badInput(`A WALLET order pays all ${amount} cents from the wallet`, 'walletAmount');
      return amount;
    }
    if (method === 'MIXED') {
      if (requested == null || requested < 1 || requested >= amount) {
        throw badInput(`A MIXED order needs a walletAmount between 1 and ${amount - 1} cents`, 'walletAmount');
      }
      return requested;
    }
    if (ONLINE_METHODS.includes(method) && requested) throw badInput(`A ${method} order takes nothing from the wallet`, 'walletAmount');
    return 0;
  }

  private assertNotExpired(row: OrderRow, now: Date): void {
    if (row.expires_at !== null && new Date(row.expires_at).getTime() <= now.getTime()) {
      throw conflict(`Order ${row.id} has expired`);
    }
  }

  private assertMayAccess(user: Identity, row: Pick<OrderRow, 'user_id'>): void {
    if (user.role !== 'admin' && row.user_id !== user.id) throw forbidden("Not your order");
  }

  private async lockOwn(em: EntityManager, user: Identity, orderId: string): Promise<OrderRow> {
    const [row] = await em.execute<OrderRow[]>('select * from orders where id = ? for update', [parseId(orderId, 'an order', 'orderId')]);
    if (!row) throw notFound('Order', orderId);
    this.assertMayAccess(user, row);
    return row;
  }
}

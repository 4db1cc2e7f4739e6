import type { UnitOfWork } from '../../db/transactions.js';
import { Order, type PaymentMethod } from '../../entities/Order.js';
import type { Product } from '../../entities/Product.js';
import { badInput, conflict } from '../../errors.js';
import type { Providers } from '../../payments/registry.js';
import type { ArmDeadline } from '../deadline-handle.js';
import type { ProductService } from '../products.js';
import type { Identity, UserService } from '../users.js';
import { checkUserId, MAX_CENTS, type WalletService } from '../wallets.js';
import { announceCreated, type OrderSettlement } from './settle.js';
import { lockUserPendingOrders, nextOrderId } from './sql.js';

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

const ONLINE_METHODS: readonly PaymentMethod[] = ['WECHAT', 'ALIPAY'];
/** Paid (at least in part) at a provider: refused when no provider pays them here. */
const PROVIDER_METHODS: readonly PaymentMethod[] = ['WECHAT', 'ALIPAY', 'MIXED'];

/** What one user may ask of `createOrder` (ORDER_MAX_PENDING_PER_USER, ORDER_MAX_QUANTITY). */
export interface OrderLimits {
  maxPendingPerUser: number;
  maxQuantity: number;
}

/** Creating orders: H5 (PENDING with a deadline, the wallet part frozen) and admin (PAID at once). */
export class OrderCreation {
  constructor(
    private readonly armExpiry: ArmDeadline,
    private readonly products: ProductService,
    private readonly wallets: WalletService,
    private readonly users: UserService,
    private readonly settlement: OrderSettlement,
    private readonly expireMinutes: number,
    private readonly providers: Pick<Providers, 'routeOf'>,
    private readonly limits: OrderLimits,
  ) {}

  /** The H5 two-step flow: PENDING, the wallet part frozen, a deadline at now + ORDER_EXPIRE_MINUTES. */
  async create(uow: UnitOfWork, user: Identity, input: CreateOrderInput): Promise<Order> {
    if (input.paymentMethod === 'OFFLINE') throw badInput('OFFLINE orders are created by admins (adminCreateOrder)', 'paymentMethod');
    // Before anything is frozen or written: an order no provider could take the money for.
    if (PROVIDER_METHODS.includes(input.paymentMethod) && !this.providers.routeOf(input.paymentMethod)) {
      throw badInput(`${input.paymentMethod} payments are not available on this server`, 'paymentMethod');
    }
    if (input.quantity > this.limits.maxQuantity) throw badInput(`quantity must be at most ${this.limits.maxQuantity}`, 'quantity');
    const product = await this.products.get(uow.em, input.productId);
    if (product.kind === 'FLASH_SALE') throw badInput('Flash-sale products are sold through the flash sale, not createOrder', 'productId');
    const amount = this.amountOf(product.price, input.quantity);
    const walletAmount = this.walletPart(input.paymentMethod, amount, input.walletAmount);
    await this.holdPendingSlot(uow, user.id);
    // Wallet before product, in every transaction that takes both: no two of them wait on each other.
    if (walletAmount > 0) await this.wallets.freeze(uow, user.id, walletAmount);
    await this.products.take(uow, product, input.quantity);
    const expiresAt = new Date(uow.now.getTime() + Math.round(this.expireMinutes * 60_000));
    const order = await this.insert(uow, {
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
    if (walletAmount > 0) await this.wallets.record(uow, [{ userId: user.id, orderId: order.id, entry: 'FREEZE', amount: walletAmount }]);
    await announceCreated(uow, order);
    uow.afterCommit(() => this.armExpiry(expiresAt));
    return order;
  }

  /** Admins: a WALLET (debited from the balance at once) or OFFLINE order, PAID, with no deadline. */
  async adminCreate(uow: UnitOfWork, input: AdminCreateOrderInput): Promise<Order> {
    if (input.paymentMethod !== 'WALLET' && input.paymentMethod !== 'OFFLINE') {
      throw badInput('adminCreateOrder takes WALLET or OFFLINE orders only', 'paymentMethod');
    }
    checkUserId(input.userId);
    const product = await this.products.get(uow.em, input.productId);
    const amount = this.amountOf(product.price, input.quantity);
    await this.users.ensureExists(uow.em, input.userId);
    const walletAmount = input.paymentMethod === 'WALLET' ? amount : 0;
    if (walletAmount > 0) await this.wallets.debitBalance(uow, input.userId, walletAmount);
    await this.products.take(uow, product, input.quantity);
    const order = await this.insert(uow, {
      userId: input.userId,
      productId: product.id,
      quantity: input.quantity,
      amount,
      walletAmount,
      paymentMethod: input.paymentMethod,
      channel: 'ADMIN',
      status: 'PAID',
      expiresAt: null,
      paidAt: uow.now,
      paidVia: 'ADMIN',
    });
    if (walletAmount > 0) await this.wallets.record(uow, [{ userId: input.userId, orderId: order.id, entry: 'DEBIT', amount: walletAmount }]);
    await this.settlement.runPaidEffects(uow, [order]);
    await announceCreated(uow, order);
    return order;
  }

  /**
   * Flash-sale orders, made but not written: one unit each at the product's price, PENDING, paid
   * online (WECHAT: a flash sale is paid at the provider, nothing is frozen), expiring like any H5
   * order, numbered with ids the caller drew from the orders' sequence. The caller (the seckill
   * consumer) has locked the product and checked the buyers and the stock against it; it writes these
   * orders with the units they take in its own statement and announces them (SeckillBatches). Their
   * deadline is armed after commit.
   */
  seckillOrders(uow: UnitOfWork, product: Product, userIds: readonly string[], ids: readonly string[]): Order[] {
    if (userIds.length === 0) return [];
    const expiresAt = new Date(uow.now.getTime() + Math.round(this.expireMinutes * 60_000));
    const orders = userIds.map((userId, i) =>
      Object.assign(new Order(), {
        id: ids[i],
        orderNo: orderNumber(uow.now, ids[i]),
        userId,
        productId: product.id,
        quantity: 1,
        amount: product.price,
        walletAmount: 0,
        paymentMethod: 'WECHAT' as const,
        channel: 'SECKILL' as const,
        status: 'PENDING' as const,
        expiresAt,
        cancelReason: null,
        paidAt: null,
        paidVia: null,
        closedAt: null,
        createdAt: uow.now,
      }),
    );
    uow.afterCommit(() => this.armExpiry(expiresAt));
    return orders;
  }

  /**
   * Refuses (CONFLICT) a user who already has ORDER_MAX_PENDING_PER_USER unpaid createOrder orders:
   * each holds stock, frozen money and a provider trade until it expires. Counted under the user's
   * advisory lock, held to commit, so concurrent requests of one user are counted one after the
   * other. Flash-sale orders (channel SECKILL) have their own one-per-sale rule and are not counted.
   * `orders_user_pending_idx` keeps the count to the user's pending orders, however many others.
   */
  private async holdPendingSlot(uow: UnitOfWork, userId: string): Promise<void> {
    await lockUserPendingOrders(uow.em, userId);
    const pending = await uow.em.count(Order, { userId, status: 'PENDING', channel: 'H5' });
    if (pending >= this.limits.maxPendingPerUser) {
      throw conflict(`${pending} orders are waiting to be paid (at most ${this.limits.maxPendingPerUser}): pay or cancel one first`);
    }
  }

  private async insert(
    uow: UnitOfWork,
    o: Pick<Order, 'userId' | 'productId' | 'quantity' | 'amount' | 'walletAmount' | 'paymentMethod' | 'channel' | 'status' | 'expiresAt'> &
      Partial<Pick<Order, 'paidAt' | 'paidVia'>>,
  ): Promise<Order> {
    const id = await nextOrderId(uow.em);
    const order = uow.em.create(Order, { ...o, id, orderNo: orderNumber(uow.now, id), createdAt: uow.now });
    await uow.em.flush();
    return order;
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
}

/** orderNo: "DL", the UTC day, the id (padded to at least 10 digits): unique without a retry loop. */
function orderNumber(now: Date, id: string): string {
  return `DL${now.toISOString().slice(0, 10).replaceAll('-', '')}${id.padStart(10, '0')}`;
}

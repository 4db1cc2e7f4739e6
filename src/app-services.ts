import type { MikroORM } from '@mikro-orm/postgresql';
import type { TokenKeys } from './auth.js';
import type { Clock } from './clock.js';
import type { Config } from './config.js';
import type { Transactions } from './db/transactions.js';
import type { EventBus } from './events/bus.js';
import type { Logger } from './logger.js';
import type { JobControl } from './scheduling/job-control.js';
import type { AuctionService } from './services/auctions.js';
import type { AuditLog } from './services/audit.js';
import type { MessageService } from './services/messages.js';
import type { OrderCreation } from './services/orders/create.js';
import type { OrderQueries } from './services/orders/queries.js';
import type { OrderSettlement } from './services/orders/settle.js';
import type { PaymentRecorder } from './services/payments/record.js';
import type { PaymentService } from './services/payments.js';
import type { PaymentCallbacks } from './services/payments/callbacks.js';
import type { RefundService } from './services/refunds/service.js';
import type { Providers } from './payments/registry.js';
import type { VipService } from './services/vip.js';
import type { FlashSales } from './services/seckill/sales.js';
import type { DeadLetters } from './services/seckill/dead-letters.js';
import type { ProductService } from './services/products.js';
import type { UserService } from './services/users.js';
import type { WalletService } from './services/wallets.js';

/** The composition root's product: infrastructure and domain services the edges (resolvers, routes) reach. */
export interface AppServices {
  config: Config;
  /** The keys tokens are checked with (JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE). */
  tokens: TokenKeys;
  orm: MikroORM;
  clock: Clock;
  log: Logger;
  tx: Transactions;
  bus: EventBus;
  jobs: JobControl;
  audit: AuditLog;
  auctions: AuctionService;
  users: UserService;
  products: ProductService;
  wallets: WalletService;
  orderCreation: OrderCreation;
  orderSettlement: OrderSettlement;
  orderQueries: OrderQueries;
  payments: PaymentService;
  /** Callbacks and reconciliation record provider payments through it, in groups. */
  paymentRecorder: PaymentRecorder;
  /** The provider deliveries' protocol (verify, refuse replays, apply once, answer): the REST routes hand it the bytes. */
  paymentCallbacks: PaymentCallbacks;
  /** Admin refunds, their settlement (provider answers, notifications, reconciliation) and the refund gauges. */
  refunds: RefundService;
  providers: Providers;
  messages: MessageService;
  vip: VipService;
  flashSales: FlashSales;
  seckillDeadLetters: DeadLetters;
}

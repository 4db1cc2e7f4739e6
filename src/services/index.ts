import type { MikroORM } from '@mikro-orm/postgresql';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { Transactions } from '../db/transactions.js';
import type { EventBus } from '../events/bus.js';
import type { Logger } from '../logger.js';
import type { AuctionService } from './auctions.js';
import type { UserService } from './users.js';
import type { OrderService } from './orders.js';
import type { ProductService } from './products.js';
import type { WalletService } from './wallets.js';

/** What the edges (resolvers, routes, job handlers) reach the domain through. */
export interface Services {
  config: Config;
  orm: MikroORM;
  clock: Clock;
  log: Logger;
  tx: Transactions;
  bus: EventBus;
  auctions: AuctionService;
  users: UserService;
  products: ProductService;
  wallets: WalletService;
  orders: OrderService;
}

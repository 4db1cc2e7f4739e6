import type { EntityManager } from '@mikro-orm/postgresql';
import type { Transactions, UnitOfWork } from '../db/transactions.js';
import type { Order } from '../entities/Order.js';
import type { Payment } from '../entities/Payment.js';
import type { PaymentIntent } from '../entities/PaymentIntent.js';
import type { Logger } from '../logger.js';
import type { Page } from '../pagination.js';
import type { Providers } from '../payments/registry.js';
import type { OrderSettlement } from './orders/settle.js';
import { PaymentQueries, type PaymentFilter } from './payments/queries.js';
import { PaymentRecords, type PaymentToRecord, type RecordOutcome } from './payments/record.js';
import { PaymentStarts, type BulkStarts } from './payments/start.js';
import type { Identity } from './users.js';

export { isOnline, onlinePart } from './payments/online.js';
export type { PaymentFilter } from './payments/queries.js';
export type { PaymentToRecord, ProviderPayment, RecordOutcome } from './payments/record.js';
export type { BulkStarts } from './payments/start.js';

/**
 * Online payments, one handle for the edges: starting one at the provider (payments/start.ts),
 * recording what a provider took (payments/record.ts) and reading them (payments/queries.ts).
 */
export class PaymentService {
  private readonly starts: PaymentStarts;
  private readonly records: PaymentRecords;
  private readonly queries = new PaymentQueries();

  constructor(
    providers: Providers,
    settlement: OrderSettlement,
    log: Logger,
    /** This server's public base URL (known once it listens): callbacks come to `<it>/api/payments/<provider>/notify`. */
    publicBaseUrl: () => string,
    bulkStarts?: BulkStarts,
  ) {
    this.starts = new PaymentStarts(providers, settlement, log, publicBaseUrl, bulkStarts);
    this.records = new PaymentRecords(providers, settlement, log);
  }

  /** See `PaymentStarts.start`. */
  start(tx: Transactions, order: Order, clientIp?: string): Promise<PaymentIntent> {
    return this.starts.start(tx, order, clientIp);
  }

  /** See `PaymentStarts.startLater`. */
  startLater(tx: Transactions, orders: readonly Order[]): void {
    this.starts.startLater(tx, orders);
  }

  /** See `PaymentStarts.stop`. */
  stop(): Promise<void> {
    return this.starts.stop();
  }

  /** See `PaymentRecords.recordMany`. */
  recordMany(uow: UnitOfWork, items: readonly PaymentToRecord[]): Promise<RecordOutcome[]> {
    return this.records.recordMany(uow, items);
  }

  intentsOf(em: EntityManager, orderIds: readonly string[]): Promise<Map<string, PaymentIntent | null>> {
    return this.queries.intentsOf(em, orderIds);
  }

  list(em: EntityManager, user: Identity, filter: PaymentFilter, first: number, after?: string | null): Promise<Page<Payment>> {
    return this.queries.list(em, user, filter, first, after);
  }
}

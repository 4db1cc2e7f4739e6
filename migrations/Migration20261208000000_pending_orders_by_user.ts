import { Migration } from '@mikro-orm/migrations';

/**
 * createOrder refuses a user's order past ORDER_MAX_PENDING_PER_USER unpaid ones, counting them on
 * every call. `orders_user_id_idx` would walk the user's whole history (a buyer with thousands of
 * paid orders, thousands of index entries per order); this partial index holds only pending orders,
 * so the count reads at most a few entries. A settled order's new row version leaves it.
 */
export class Migration20261208000000_pending_orders_by_user extends Migration {
  override name = 'Migration20261208000000_pending_orders_by_user';

  override up(): void {
    this.addSql(`create index "orders_user_pending_idx" on "orders" ("user_id") where "status" = 'PENDING'`);
  }

  override down(): void {
    this.addSql('drop index if exists "orders_user_pending_idx"');
  }
}

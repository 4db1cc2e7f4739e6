import { Migration } from '@mikro-orm/migrations';

/**
 * Flash sales. `products.sale_starts_at`/`sale_ends_at`: the window (a FLASH_SALE needs both, start
 * before end). Orders get the SECKILL channel, and one unique partial index makes "one live order per
 * user per sale" a fact of the table (a cancelled or expired order frees the user to buy again).
 * `seckill_logs`: one row per stream entry consumed, unique by its stream id, so a message delivered
 * twice (a claim race, a crash between commit and XACK) is recorded and ordered once.
 */
export class Migration20261123000400_flash_sales extends Migration {
  override name = 'Migration20261123000400_flash_sales';

  override up(): void {
    this.addSql(`alter table "products" add column "sale_starts_at" timestamptz(3) null, add column "sale_ends_at" timestamptz(3) null`);
    this.addSql(`alter table "products" add constraint "products_sale_window_check" check ("sale_starts_at" < "sale_ends_at")`);
    this.addSql(`alter table "orders" drop constraint "orders_channel_check"`);
    this.addSql(`alter table "orders" add constraint "orders_channel_check" check ("channel" in ('H5', 'ADMIN', 'SECKILL'))`);
    this.addSql(
      `create unique index "orders_seckill_buyer_key" on "orders" ("product_id", "user_id") where "channel" = 'SECKILL' and "status" in ('PENDING', 'PAID')`,
    );
    this.addSql(`create table "seckill_logs" (
      "id" bigserial primary key,
      "stream_id" text not null,
      "product_id" bigint not null references "products" ("id"),
      "user_id" text not null,
      "request_id" text null,
      "status" text not null check ("status" in ('ORDERED', 'FAILED')),
      "reason" text null,
      "order_id" bigint null references "orders" ("id"),
      "created_at" timestamptz(3) not null default now(),
      constraint "seckill_logs_stream_id_key" unique ("stream_id")
    )`);
    // seckillResult: a user's latest entry for a sale.
    this.addSql(`create index "seckill_logs_product_id_user_id_idx" on "seckill_logs" ("product_id", "user_id", "id")`);
  }

  override down(): void {
    this.addSql('drop table if exists "seckill_logs"');
    this.addSql('drop index if exists "orders_seckill_buyer_key"');
    this.addSql(`alter table "orders" drop constraint "orders_channel_check"`);
    this.addSql(`alter table "orders" add constraint "orders_channel_check" check ("channel" in ('H5', 'ADMIN'))`);
    this.addSql('alter table "products" drop constraint if exists "products_sale_window_check"');
    this.addSql('alter table "products" drop column if exists "sale_starts_at", drop column if exists "sale_ends_at"');
  }
}

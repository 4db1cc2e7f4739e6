import { Migration } from '@mikro-orm/migrations';

/** Products, orders (their expiry is a deadline: `expires_at` indexed with `status`) and the wallet ledger. */
export class Migration20261121000200_orders extends Migration {
  override name = 'Migration20261121000200_orders';

  override up(): void {
    this.addSql(`create table "products" (
      "id" bigserial primary key,
      "name" text not null,
      "price" integer not null check ("price" > 0),
      "kind" text not null check ("kind" in ('GOODS', 'VIP_PLAN', 'FLASH_SALE')),
      "vip_days" integer null check ("vip_days" > 0),
      "vip_level" integer null check ("vip_level" > 0),
      "stock" integer null check ("stock" >= 0),
      "created_at" timestamptz(3) not null default now()
    )`);
    this.addSql(`create table "orders" (
      "id" bigserial primary key,
      "order_no" text not null unique,
      "user_id" text not null references "users" ("id"),
      "product_id" bigint not null references "products" ("id"),
      "quantity" integer not null check ("quantity" > 0),
      "amount" integer not null check ("amount" > 0),
      "wallet_amount" integer not null default 0 check ("wallet_amount" >= 0 and "wallet_amount" <= "amount"),
      "payment_method" text not null check ("payment_method" in ('WECHAT', 'ALIPAY', 'WALLET', 'MIXED', 'OFFLINE')),
      "channel" text not null check ("channel" in ('H5', 'ADMIN')),
      "status" text not null check ("status" in ('PENDING', 'PAID', 'CANCELLED', 'EXPIRED')),
      "expires_at" timestamptz(3) null,
      "cancel_reason" text null,
      "paid_at" timestamptz(3) null,
      "closed_at" timestamptz(3) null,
      "created_at" timestamptz(3) not null default now(),
      -- A pending order has a deadline; a settled one never does.
      constraint "orders_expiry_matches_status" check (("status" = 'PENDING') = ("expires_at" is not null))
    )`);
    // The deadline query is "status = 'PENDING' and expires_at <= now order by expires_at limit n".
    // Settled orders have a null expires_at, so the range scan never walks them (EXPLAIN in docs/benchmarks.md).
    this.addSql(`create index "orders_expires_at_status_idx" on "orders" ("expires_at", "status")`);
    this.addSql(`create index "orders_user_id_idx" on "orders" ("user_id", "id")`);
    // Every movement of wallet money, so sums can be checked: balance + frozen = credits - debits.
    this.addSql(`create table "wallet_ledger" (
      "id" bigserial primary key,
      "user_id" text not null references "users" ("id"),
      "order_id" bigint null references "orders" ("id"),
      "entry" text not null check ("entry" in ('CREDIT', 'FREEZE', 'UNFREEZE', 'DEBIT')),
      "amount" integer not null check ("amount" > 0),
      "created_at" timestamptz(3) not null default now()
    )`);
    // An order's money is frozen once and released (unfrozen or debited) at most once.
    this.addSql(`create unique index "wallet_ledger_freeze_once" on "wallet_ledger" ("order_id") where "entry" = 'FREEZE'`);
    this.addSql(
      `create unique index "wallet_ledger_release_once" on "wallet_ledger" ("order_id") where "entry" in ('UNFREEZE', 'DEBIT')`,
    );
    this.addSql(`create index "wallet_ledger_user_id_idx" on "wallet_ledger" ("user_id")`);
  }

  override down(): void {
    for (const table of ['wallet_ledger', 'orders', 'products']) this.addSql(`drop table if exists "${table}"`);
  }
}

import { Migration } from '@mikro-orm/migrations';

/**
 * Online payments. `payment_intents`: what a client needs to pay an order at its provider (one per
 * order). `payments`: money a provider says it took, one row per provider transaction (the unique key
 * makes a callback and a reconciliation of the same transaction record it once); a payment that cannot
 * pay its order (no longer PENDING, wrong amount, unknown order) is kept with `needs_refund`.
 * `payment_notifications`: every callback id seen, so a replay is recognised before anything else.
 * `orders.paid_via`: how a PAID order was paid.
 */
export class Migration20261123000100_payments extends Migration {
  override name = 'Migration20261123000100_payments';

  override up(): void {
    this.addSql(`alter table "orders" add column "paid_via" text null check ("paid_via" in ('WALLET', 'CALLBACK', 'COMPENSATE', 'ADMIN'))`);
    this.addSql(`update "orders" set "paid_via" = case when "channel" = 'ADMIN' then 'ADMIN' else 'WALLET' end where "status" = 'PAID'`);
    this.addSql(`create table "payment_intents" (
      "order_id" bigint primary key references "orders" ("id"),
      "provider" text not null check ("provider" in ('wechat', 'alipay', 'sandbox')),
      "prepay_id" text null,
      "h5_url" text null,
      "code_url" text null,
      "expires_at" timestamptz(3) null,
      "created_at" timestamptz(3) not null default now()
    )`);
    this.addSql(`create table "payments" (
      "id" bigserial primary key,
      "order_id" bigint null references "orders" ("id"),
      "order_no" text not null,
      "provider" text not null check ("provider" in ('wechat', 'alipay', 'sandbox')),
      "transaction_id" text not null,
      "amount" integer not null check ("amount" >= 0),
      "paid_at" timestamptz(3) not null,
      "source" text not null check ("source" in ('CALLBACK', 'COMPENSATE')),
      "needs_refund" boolean not null default false,
      "refund_reason" text null,
      "created_at" timestamptz(3) not null default now(),
      constraint "payments_provider_transaction_id_key" unique ("provider", "transaction_id")
    )`);
    this.addSql(`create index "payments_order_id_idx" on "payments" ("order_id")`);
    this.addSql(`create index "payments_needs_refund_idx" on "payments" ("id") where "needs_refund"`);
    this.addSql(`create table "payment_notifications" (
      "provider" text not null,
      "notification_id" text not null,
      "order_no" text not null,
      "received_at" timestamptz(3) not null default now(),
      constraint "payment_notifications_pkey" primary key ("provider", "notification_id")
    )`);
    // Reconciliation looks for PENDING online orders oldest first: created_at among the pending ones.
    this.addSql(`create index "orders_pending_created_at_idx" on "orders" ("created_at") where "status" = 'PENDING'`);
  }

  override down(): void {
    this.addSql('drop index if exists "orders_pending_created_at_idx"');
    this.addSql('drop table if exists "payment_notifications"');
    this.addSql('drop table if exists "payments"');
    this.addSql('drop table if exists "payment_intents"');
    this.addSql('alter table "orders" drop column if exists "paid_via"');
  }
}

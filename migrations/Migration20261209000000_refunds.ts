import { Migration } from '@mikro-orm/migrations';

/**
 * Refunds (issue 28):
 * - `refunds`: money an admin gives back, refunded at the payment's provider under `out_refund_no`
 *   (`R{paymentId}-{attempt}`) and/or into the wallet. One live refund (PENDING or SUCCEEDED) per
 *   payment and per refunded order: partial unique keys, so two racing refunds make one row.
 * - `orders.status` REFUNDED; a refunded flash-sale order keeps its buyer's place in the sale.
 * - The ledger's `REFUND` line: a refunded order's wallet part back in the balance, once per order.
 */
export class Migration20261209000000_refunds extends Migration {
  override name = 'Migration20261209000000_refunds';

  override up(): void {
    this.addSql(`alter table "orders" drop constraint "orders_status_check"`);
    this.addSql(`alter table "orders" add constraint "orders_status_check" check ("status" in ('PENDING', 'PAID', 'CANCELLED', 'EXPIRED', 'REFUNDED'))`);
    this.addSql(`drop index "orders_seckill_buyer_key"`);
    this.addSql(
      `create unique index "orders_seckill_buyer_key" on "orders" ("product_id", "user_id") where "channel" = 'SECKILL' and "status" in ('PENDING', 'PAID', 'REFUNDED')`,
    );
    this.addSql(`alter table "wallet_ledger" drop constraint "wallet_ledger_entry_check"`);
    this.addSql(`alter table "wallet_ledger" add constraint "wallet_ledger_entry_check" check ("entry" in ('CREDIT', 'FREEZE', 'UNFREEZE', 'DEBIT', 'ADJUST', 'REFUND'))`);
    this.addSql(`create unique index "wallet_ledger_refund_once" on "wallet_ledger" ("order_id") where "entry" = 'REFUND'`);
    this.addSql(`create table "refunds" (
      "id" bigserial primary key,
      "kind" text not null check ("kind" in ('ORDER', 'PAYMENT')),
      "payment_id" bigint null,
      "order_id" bigint null,
      "provider" text null check ("provider" in ('wechat', 'alipay', 'sandbox')),
      "out_refund_no" text null,
      "attempt" integer not null,
      "amount" integer not null,
      "wallet_amount" integer not null default 0,
      "status" text not null check ("status" in ('PENDING', 'SUCCEEDED', 'FAILED')),
      "reason" text not null,
      "failure_reason" text null,
      "actor_id" text not null,
      "created_at" timestamptz(3) not null default now(),
      "finished_at" timestamptz(3) null,
      constraint "refunds_out_refund_no_key" unique ("out_refund_no"),
      constraint "refunds_payment_id_fkey" foreign key ("payment_id") references "payments" ("id"),
      constraint "refunds_order_id_fkey" foreign key ("order_id") references "orders" ("id"),
      constraint "refunds_attempt_check" check ("attempt" > 0),
      constraint "refunds_amount_check" check ("amount" >= 0),
      constraint "refunds_wallet_amount_check" check ("wallet_amount" >= 0),
      constraint "refunds_finished_matches_status" check (("status" = 'PENDING') = ("finished_at" is null)),
      constraint "refunds_provider_part" check (("amount" = 0) = ("out_refund_no" is null) and ("out_refund_no" is null or "payment_id" is not null))
    )`);
    this.addSql(`create unique index "refunds_payment_live_key" on "refunds" ("payment_id") where "status" in ('PENDING', 'SUCCEEDED')`);
    this.addSql(`create unique index "refunds_order_live_key" on "refunds" ("order_id") where "kind" = 'ORDER' and "status" in ('PENDING', 'SUCCEEDED')`);
    this.addSql(`create index "refunds_pending_idx" on "refunds" ("id") where "status" = 'PENDING'`);
  }

  override down(): void {
    this.addSql('drop table if exists "refunds"');
    this.addSql('drop index if exists "wallet_ledger_refund_once"');
    this.addSql(`delete from "wallet_ledger" where "entry" = 'REFUND'`);
    this.addSql(`alter table "wallet_ledger" drop constraint "wallet_ledger_entry_check"`);
    this.addSql(`alter table "wallet_ledger" add constraint "wallet_ledger_entry_check" check ("entry" in ('CREDIT', 'FREEZE', 'UNFREEZE', 'DEBIT', 'ADJUST'))`);
    this.addSql('drop index if exists "orders_seckill_buyer_key"');
    // Refunded orders were paid: they go back to PAID (their refunds are gone with the table).
    this.addSql(`update "orders" set "status" = 'PAID' where "status" = 'REFUNDED'`);
    this.addSql(
      `create unique index "orders_seckill_buyer_key" on "orders" ("product_id", "user_id") where "channel" = 'SECKILL' and "status" in ('PENDING', 'PAID')`,
    );
    this.addSql(`alter table "orders" drop constraint "orders_status_check"`);
    this.addSql(`alter table "orders" add constraint "orders_status_check" check ("status" in ('PENDING', 'PAID', 'CANCELLED', 'EXPIRED'))`);
  }
}

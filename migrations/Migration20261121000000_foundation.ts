import { Migration } from '@mikro-orm/migrations';

/** Users, wallets, auctions, bids, the event outbox and the deadline wake-up registry. */
export class Migration20261121000000_foundation extends Migration {
  override name = 'Migration20261121000000_foundation';

  override up(): void {
    this.addSql(`create table "users" (
      "id" text primary key,
      "role" text not null check ("role" in ('user', 'admin')),
      "created_at" timestamptz(3) not null default now()
    )`);
    this.addSql(`create table "wallets" (
      "user_id" text primary key references "users" ("id"),
      "balance" integer not null default 0 check ("balance" >= 0),
      "frozen" integer not null default 0 check ("frozen" >= 0),
      "updated_at" timestamptz(3) not null default now()
    )`);
    this.addSql(`create table "auctions" (
      "id" bigserial primary key,
      "seller_id" text not null references "users" ("id"),
      "nft_id" text not null,
      "title" text not null,
      "starting_price" integer not null check ("starting_price" >= 0),
      "min_increment" integer not null check ("min_increment" > 0),
      "end_time" timestamptz(3) not null,
      "status" text not null default 'ACTIVE' check ("status" in ('ACTIVE', 'ENDED', 'CANCELLED')),
      "highest_bid" integer null,
      "highest_bidder_id" text null references "users" ("id"),
      "winner_id" text null references "users" ("id"),
      "soft_close_seconds" integer not null check ("soft_close_seconds" >= 0),
      "ended_at" timestamptz(3) null,
      "created_at" timestamptz(3) not null default now()
    )`);
    // The deadline query is "status = 'ACTIVE' and end_time <= now order by end_time": this index serves it.
    this.addSql(`create index "auctions_status_end_time_idx" on "auctions" ("status", "end_time")`);
    this.addSql(`create table "bids" (
      "id" bigserial primary key,
      "auction_id" bigint not null references "auctions" ("id"),
      "bidder_id" text not null references "users" ("id"),
      "amount" integer not null check ("amount" > 0),
      "created_at" timestamptz(3) not null default now()
    )`);
    this.addSql(`create index "bids_auction_id_idx" on "bids" ("auction_id", "amount")`);
    this.addSql(`create table "outbox_events" (
      "id" uuid primary key,
      "topic" text not null,
      "payload" jsonb not null,
      "created_at" timestamptz(3) not null default now(),
      "claimed_at" timestamptz(3) null,
      "published_at" timestamptz(3) null
    )`);
    this.addSql(`create index "outbox_events_unpublished_idx" on "outbox_events" ("created_at") where "published_at" is null`);
    this.addSql(`create table "deadline_wakeups" (
      "kind" text primary key,
      "wake_at" timestamptz(3) null,
      "arm_id" text null
    )`);
  }

  override down(): void {
    for (const table of ['deadline_wakeups', 'outbox_events', 'bids', 'auctions', 'wallets', 'users']) {
      this.addSql(`drop table if exists "${table}"`);
    }
  }
}

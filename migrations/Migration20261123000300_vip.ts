import { Migration } from '@mikro-orm/migrations';

/**
 * VIP memberships. One row per member: the level, when it lapses (null for lifetime) and whether it
 * is active. The lapse is a deadline like an auction's end: `(expires_at, active)` indexed, one wake-up
 * armed at the earliest. `vip_reminders`: one row per member, expiry day and milestone already
 * written, so the daily reminders write each message once however often (or on however many
 * instances) they run. `products.vip_lifetime`: a plan that never lapses.
 */
export class Migration20261123000300_vip extends Migration {
  override name = 'Migration20261123000300_vip';

  override up(): void {
    this.addSql(`alter table "products" add column "vip_lifetime" boolean not null default false`);
    this.addSql(`update "products" set "vip_lifetime" = true where "kind" = 'VIP_PLAN' and "vip_days" is null`);
    this.addSql(`create table "vip_memberships" (
      "user_id" text primary key references "users" ("id"),
      "level" integer not null check ("level" > 0),
      "expires_at" timestamptz(3) null,
      "is_lifetime" boolean not null default false,
      "active" boolean not null default true,
      "updated_at" timestamptz(3) not null default now(),
      constraint "vip_memberships_lifetime_check" check (("is_lifetime" and "expires_at" is null) or (not "is_lifetime" and "expires_at" is not null))
    )`);
    // The lapse deadline: "active and expires_at <= now order by expires_at". Also the reminders'
    // window scan: members whose expiry falls within [today − 7 days, today + 4 days).
    this.addSql(`create index "vip_memberships_expires_at_active_idx" on "vip_memberships" ("expires_at", "active")`);
    this.addSql(`create table "vip_reminders" (
      "user_id" text not null references "users" ("id"),
      "expires_on" date not null,
      "days_before" integer not null,
      "sent_on" date not null,
      "created_at" timestamptz(3) not null default now(),
      constraint "vip_reminders_pkey" primary key ("user_id", "expires_on", "days_before")
    )`);
  }

  override down(): void {
    this.addSql('drop table if exists "vip_reminders"');
    this.addSql('drop table if exists "vip_memberships"');
    this.addSql('alter table "products" drop column if exists "vip_lifetime"');
  }
}

import { Migration } from '@mikro-orm/migrations';

/**
 * In-site messages (VIP reminders and the like), one row per message to one user; unread while
 * `read_at` is null. Listed per user newest first by id, so both indexes lead with `user_id` and end
 * with `id`; the unread one is partial, so counting and listing unread messages never walks read ones.
 */
export class Migration20261123000200_messages extends Migration {
  override name = 'Migration20261123000200_messages';

  override up(): void {
    this.addSql(`create table "messages" (
      "id" bigserial primary key,
      "user_id" text not null references "users" ("id"),
      "kind" text not null,
      "title" text not null,
      "body" text not null,
      "created_at" timestamptz(3) not null default now(),
      "read_at" timestamptz(3) null
    )`);
    this.addSql(`create index "messages_user_id_idx" on "messages" ("user_id", "id")`);
    this.addSql(`create index "messages_user_id_unread_idx" on "messages" ("user_id", "id") where "read_at" is null`);
  }

  override down(): void {
    this.addSql('drop table if exists "messages"');
  }
}

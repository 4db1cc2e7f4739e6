import { Migration } from '@mikro-orm/migrations';

/**
 * An index on `outbox_events.created_at`: after a Redis outage each instance reads back the events
 * committed since shortly before it lost its subscriber connection (src/events/bus.ts), a range scan.
 */
export class Migration20261123000700_outbox_catch_up extends Migration {
  override name = 'Migration20261123000700_outbox_catch_up';

  override up(): void {
    this.addSql('create index "outbox_events_created_at_idx" on "outbox_events" ("created_at")');
  }

  override down(): void {
    this.addSql('drop index if exists "outbox_events_created_at_idx"');
  }
}

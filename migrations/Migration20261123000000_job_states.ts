import { Migration } from '@mikro-orm/migrations';

/**
 * One row per job of the catalogue: its last run as every instance saw it, and whether an admin
 * paused it. Deadline wake-ups are removed from Agenda's store when they complete, so their history
 * lives here; a pause is read by every instance at the start of each run, so all obey it at once.
 */
export class Migration20261123000000_job_states extends Migration {
  override name = 'Migration20261123000000_job_states';

  override up(): void {
    this.addSql(`create table "job_states" (
      "name" text primary key,
      "last_run_at" timestamptz(3) null,
      "last_finished_at" timestamptz(3) null,
      "last_error" text null,
      "fail_count" integer not null default 0,
      "paused" boolean not null default false,
      "updated_at" timestamptz(3) not null default now()
    )`);
  }

  override down(): void {
    this.addSql('drop table if exists "job_states"');
  }
}

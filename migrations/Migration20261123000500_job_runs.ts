import { Migration } from '@mikro-orm/migrations';

/**
 * `job_runs`: one row per run of a catalogue job (start, end, outcome, error, the instance that ran
 * it), for the admin `jobRuns` API. Bounded by `JobRuns.prune`: per job, runs older than 7 days and
 * all but the newest 1,000 are deleted. `(name, id)` serves both the newest-first pages and the prune.
 */
export class Migration20261123000500_job_runs extends Migration {
  override name = 'Migration20261123000500_job_runs';

  override up(): void {
    this.addSql(`create table "job_runs" (
      "id" bigserial primary key,
      "name" text not null,
      "started_at" timestamptz(3) not null,
      "finished_at" timestamptz(3) null,
      "outcome" text not null check ("outcome" in ('RUNNING', 'SUCCEEDED', 'FAILED')),
      "error" text null,
      "instance" text not null
    )`);
    this.addSql(`create index "job_runs_name_id_idx" on "job_runs" ("name", "id")`);
  }

  override down(): void {
    this.addSql('drop table if exists "job_runs"');
  }
}

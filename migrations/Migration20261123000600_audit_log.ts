import { Migration } from '@mikro-orm/migrations';

/**
 * `audit_log`: every admin action (run, pause or resume a job, credit a wallet): who, what, on what,
 * when. Written in the action's own transaction where it has one (a credit); read newest first.
 */
export class Migration20261123000600_audit_log extends Migration {
  override name = 'Migration20261123000600_audit_log';

  override up(): void {
    this.addSql(`create table "audit_log" (
      "id" bigserial primary key,
      "actor_id" text not null,
      "action" text not null check ("action" in ('RUN_JOB', 'PAUSE_JOB', 'RESUME_JOB', 'CREDIT_WALLET')),
      "target" text not null,
      "details" jsonb not null default '{}',
      "created_at" timestamptz(3) not null default now()
    )`);
  }

  override down(): void {
    this.addSql('drop table if exists "audit_log"');
  }
}

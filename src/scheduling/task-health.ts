import type { JobDefinition, Schedule } from './jobs.js';

/** What `GET /health/tasks` reports. */
export interface TaskHealth {
  ok: boolean;
  /** One line per problem, naming the job: empty when ok. */
  reasons: string[];
}

/** What is known of a job's last run (its `job_states` row). */
export interface LastRun {
  lastRunAt: Date | null;
  lastError: string | null;
  failCount: number;
  paused: boolean;
}

/** A cron job (daily at most in the catalogue) is overdue a day and an hour after its last run. */
export const CRON_OVERDUE_MS = 25 * 3_600_000;

/** An `every` job is overdue when more than two of its intervals passed without a run: one late run is not an alarm. */
export function overdueAfterMs(schedule: Schedule): number {
  return 'every' in schedule ? 2 * schedule.every : CRON_OVERDUE_MS;
}

/**
 * The periodic jobs' health: overdue (no run started for longer than `overdueAfterMs`) or failing
 * (their last run failed). Paused jobs are skipped (an admin stopped them on purpose), and so are jobs
 * that never ran (nothing to measure from: a fresh database, or a daily job before its first time).
 */
export function taskHealth(catalogue: readonly JobDefinition[], states: ReadonlyMap<string, LastRun>, now: Date): TaskHealth {
  const reasons: string[] = [];
  for (const job of catalogue) {
    if (job.kind !== 'PERIODIC') continue;
    const state = states.get(job.name);
    if (!state || state.paused) continue;
    const limit = overdueAfterMs(job.schedule);
    if (state.lastRunAt && now.getTime() - state.lastRunAt.getTime() > limit) {
      const seconds = Math.round((now.getTime() - state.lastRunAt.getTime()) / 1000);
      reasons.push(`${job.name}: overdue, last run ${seconds} s ago (${state.lastRunAt.toISOString()}), expected within ${limit / 1000} s`);
    }
    if (state.failCount > 0) reasons.push(`${job.name}: last run failed (${state.failCount} in a row): ${state.lastError ?? 'unknown error'}`);
  }
  return { ok: reasons.length === 0, reasons };
}

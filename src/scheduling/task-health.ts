import type { JobDefinition, Schedule } from './jobs.js';

/** What `GET /health/tasks` reports. */
export interface TaskHealth {
  ok: boolean;
  /**
   * One line per problem, naming the job and when: empty when ok. Never a job's error text: the
   * endpoint answers anyone (probes, load balancers), and an error can name a table, a host or a
   * provider's answer. Admins read it through the `jobs` query.
   */
  reasons: string[];
}

/** What is known of a job's last run (its `job_states` row). */
export interface LastRun {
  lastRunAt: Date | null;
  lastFinishedAt: Date | null;
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
    if (state.failCount > 0) {
      const at = state.lastFinishedAt ?? state.lastRunAt;
      reasons.push(`${job.name}: last run failed${at ? ` at ${at.toISOString()}` : ''} (${state.failCount} in a row)`);
    }
  }
  return { ok: reasons.length === 0, reasons };
}

import { noRetry, periodicJob, type JobDefinition } from '../../src/scheduling/jobs.js';
import { CRON_OVERDUE_MS, taskHealth, type LastRun } from '../../src/scheduling/task-health.js';

const every = (name: string, ms: number) => periodicJob({ name, schedule: { every: ms }, payload: {}, handler: () => Promise.resolve(), retry: noRetry });
const daily = periodicJob({ name: 'daily', schedule: { cron: '0 9 * * *', timezone: 'Asia/Shanghai' }, payload: {}, handler: () => Promise.resolve(), retry: noRetry });
const catalogue: JobDefinition[] = [every('sweep', 10_000), daily];
const now = new Date('2026-11-23T12:00:00.000Z');
const ago = (ms: number) => new Date(now.getTime() - ms);
const run = (lastRunAt: Date | null, extra: Partial<LastRun> = {}): LastRun => ({ lastRunAt, lastFinishedAt: lastRunAt, failCount: 0, paused: false, ...extra });

test('healthy: every job ran within two of its intervals (a cron job within a day and an hour), none failing', () => {
  const states = new Map([
    ['sweep', run(ago(20_000))],
    ['daily', run(ago(CRON_OVERDUE_MS))],
  ]);
  expect(taskHealth(catalogue, states, now)).toEqual({ ok: true, reasons: [] });
});

test('overdue: more than two intervals without a run, or more than 25 h for a cron job', () => {
  const states = new Map([
    ['sweep', run(ago(20_001))],
    ['daily', run(ago(CRON_OVERDUE_MS + 1_000))],
  ]);
  const health = taskHealth(catalogue, states, now);
  expect(health.ok).toBe(false);
  expect(health.reasons).toHaveLength(2);
  expect(health.reasons[0]).toMatch(/^sweep: overdue, last run 20 s ago .* expected within 20 s$/);
  expect(health.reasons[1]).toMatch(/^daily: overdue, last run 90001 s ago/);
});

test('failing: the last run failed, named with when it ended, never its error text; paused and never-run jobs are not judged', () => {
  // The row holds the error (admins read it through the `jobs` query); what anyone reads stops at the time.
  const failed = { failCount: 2, lastFinishedAt: ago(500), lastError: 'connect ECONNREFUSED 10.0.0.7:5432 (postgres://app:hunter2@db)' };
  expect(taskHealth(catalogue, new Map([['sweep', run(ago(1_000), failed)]]), now)).toEqual({
    ok: false,
    reasons: ['sweep: last run failed at 2026-11-23T11:59:59.500Z (2 in a row)'],
  });
  const quiet = new Map([
    ['sweep', run(ago(3_600_000), { paused: true, failCount: 1 })],
    ['daily', run(null)],
  ]);
  expect(taskHealth(catalogue, quiet, now)).toEqual({ ok: true, reasons: [] });
});

import { initOrm, migrate, type Orm } from '../../src/db/orm.js';
import { JobRun } from '../../src/entities/JobRun.js';
import { JobRuns, KEEP_RUNS_DAYS, KEEP_RUNS_PER_JOB } from '../../src/scheduling/job-runs.js';
import { createTestDatabase } from '../support/harness.js';

/** `job_runs` stays bounded: per job, the newest KEEP_RUNS_PER_JOB runs of the last KEEP_RUNS_DAYS days. */
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let orm: Orm;

beforeAll(async () => {
  db = await createTestDatabase('job_runs');
  orm = await initOrm(db.url);
  await migrate(orm, db.url);
});
afterAll(async () => {
  await orm?.close(true);
  await db?.drop();
});

test('prune keeps the newest 1,000 runs of a job, drops those older than 7 days, and leaves other jobs alone', async () => {
  const now = new Date();
  const day = 86_400_000;
  const em = orm.em.fork();
  // 5 runs of 8 days ago, then 1,010 recent ones; another job's 3 old runs.
  const rows = [
    ...Array.from({ length: 5 }, (_, i) => ({ name: 'busy', startedAt: new Date(now.getTime() - (KEEP_RUNS_DAYS + 1) * day + i) })),
    ...Array.from({ length: KEEP_RUNS_PER_JOB + 10 }, (_, i) => ({ name: 'busy', startedAt: new Date(now.getTime() - 3_600_000 + i) })),
    ...Array.from({ length: 3 }, (_, i) => ({ name: 'quiet', startedAt: new Date(now.getTime() - 1_000 + i) })),
  ];
  for (const r of rows) em.create(JobRun, { ...r, finishedAt: r.startedAt, outcome: 'SUCCEEDED', instance: 'test' });
  await em.flush();

  const runs = new JobRuns(orm, 'test');
  expect(await runs.prune('busy', now, true)).toBe(15);
  const kept = await orm.em.fork().find(JobRun, { name: 'busy' }, { orderBy: { id: 'asc' } });
  expect(kept).toHaveLength(KEEP_RUNS_PER_JOB);
  expect(kept[0].startedAt.getTime()).toBe(now.getTime() - 3_600_000 + 10);
  expect(await orm.em.fork().count(JobRun, { name: 'quiet' })).toBe(3);

  // At most once a minute per job and instance, unless forced.
  expect(await runs.prune('busy', now)).toBe(0);
  const page = await runs.page('busy', 2);
  expect(page.edges.map((e) => e.node.startedAt.getTime())).toEqual([now.getTime() - 3_600_000 + KEEP_RUNS_PER_JOB + 9, now.getTime() - 3_600_000 + KEEP_RUNS_PER_JOB + 8]);
  expect(page.edges[0].node.durationMs).toBe(0);
});

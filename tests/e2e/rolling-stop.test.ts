import pg from 'pg';
import type { App } from '../../src/app.js';
import type { Config } from '../../src/config.js';
import { createTestDatabase, sleep, start, testConfig, waitUntil } from '../support/harness.js';

/**
 * Rolling restart: one of two instances is stopped gracefully (the SIGTERM path, `app.stop()`) while
 * it runs a job. The job's side effect must happen once; the lock of the running job must not be
 * released, or the other instance would run the same job again at once (agenda#1778).
 */
// Agenda 6.2.6 has the #1782 fix: dist/JobProcessor.js stop() returns only lockedJobs not in runningJobs ("Running jobs keep their database locks until they complete or the lock expires"), and Agenda.stop() unlocks just those (6.2.2 returned [...lockedJobs, ...runningJobs]).

const JOB_MS = 2_500; // the slow job: far longer than processEvery (1 s in testConfig)
const LOCK_LIFETIME_S = 30; // longer than any wait below: only a wrongly released lock lets the job run again

interface Effect {
  instance: string;
  started_at: Date;
  finished_at: Date;
}

describe('graceful stop of one of two instances while it runs a job (rolling restart)', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let config: Config;
  let pool: pg.Pool;
  const apps: App[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('rolling_stop');
    config = testConfig(db.url, { JOB_LOCK_LIFETIME_SECONDS: String(LOCK_LIFETIME_S), SHUTDOWN_GRACE_SECONDS: '10' });
    pool = new pg.Pool({ connectionString: db.url, max: 4 });
  });

  afterAll(async () => {
    await Promise.allSettled(apps.map((app) => app.stop()));
    await pool?.end();
    await db?.drop();
  });

  /** Two instances on one database, each with the same slow job whose effect is a row naming the instance. */
  async function twoInstances(job: string) {
    const [a, b] = [await start(config), await start(config)];
    apps.push(a, b);
    await pool.query(
      `create table if not exists job_effects (job text not null, instance text not null, started_at timestamptz not null, finished_at timestamptz not null)`,
    );
    const instances = { A: a, B: b };
    const inHandler = { A: 0, B: 0 };
    for (const [label, app] of Object.entries(instances) as Array<['A' | 'B', App]>) {
      app.scheduler.define(job, async () => {
        const startedAt = new Date();
        inHandler[label]++;
        try {
          await sleep(JOB_MS);
          await pool.query(`insert into job_effects (job, instance, started_at, finished_at) values ($1, $2, $3, now())`, [
            job,
            label,
            startedAt,
          ]);
        } finally {
          inHandler[label]--;
        }
      });
    }
    const effects = async () =>
      (
        await pool.query<Effect>(`select instance, started_at, finished_at from job_effects where job = $1 order by started_at`, [job])
      ).rows;
    return { instances, inHandler, effects };
  }

  /** Resolves with the instance on which `job` starts first (Agenda's 'start' event, no polling). */
  function firstStart(instances: Record<'A' | 'B', App>, job: string): Promise<'A' | 'B'> {
    return new Promise((resolve) => {
      for (const [label, app] of Object.entries(instances) as Array<['A' | 'B', App]>) {
        app.scheduler.once(`start:${job}`, () => resolve(label));
      }
    });
  }

  /**
   * Stops `app` the way SIGTERM does, recording whether the job's handler was still running at the
   * moment Agenda's own stop() ran (the moment agenda#1778 released the lock).
   */
  async function stopWhileRunning(app: App, handlerRunning: () => boolean) {
    const agendaStop = app.scheduler.stop.bind(app.scheduler);
    const seen = { agendaStopCalled: false, handlerRunningAtAgendaStop: false };
    app.scheduler.stop = async (...args: Parameters<typeof agendaStop>) => {
      seen.agendaStopCalled = true;
      seen.handlerRunningAtAgendaStop = handlerRunning();
      return agendaStop(...args);
    };
    await app.stop();
    return seen;
  }

  const agendaRow = async (job: string) =>
    (
      await pool.query<{ locked_at: Date | null; next_run_at: Date | null; last_finished_at: Date | null }>(
        `select locked_at, next_run_at, last_finished_at from agenda_jobs where name = $1`,
        [job],
      )
    ).rows;

  test('a one-shot job running on the stopped instance runs exactly once, and is left finished and unlocked', async () => {
    const job = 'rolling-one-shot';
    const { instances, inHandler, effects } = await twoInstances(job);
    const started = firstStart(instances, job);
    await instances.A.scheduler.schedule(new Date(), job);

    const stopped = await started;
    const other = stopped === 'A' ? 'B' : 'A';
    const seen = await stopWhileRunning(instances[stopped], () => inHandler[stopped] > 0);
    expect(seen).toEqual({ agendaStopCalled: true, handlerRunningAtAgendaStop: true });
    // The graceful stop waited for the job: its effect is there, once, from the stopped instance.
    expect((await effects()).map((e) => e.instance)).toEqual([stopped]);

    // Several processEvery cycles on the other instance (well within the 30 s lock lifetime). A released
    // lock alone cannot re-run a one-shot (run() saves next_run_at = NULL before 'start'); an expired or
    // never-cleared lock can (getNextJobToRun's `locked_at <= deadline` branch ignores next_run_at).
    await sleep(3_000);
    expect(inHandler[other]).toBe(0);
    expect((await effects()).map((e) => e.instance)).toEqual([stopped]);
    const [row] = await agendaRow(job);
    expect(row).toMatchObject({ locked_at: null, next_run_at: null });
    expect(row.last_finished_at).toBeInstanceOf(Date);
    await instances[other].stop();
  });

  test('a recurring job running on the stopped instance is not run again alongside it; the other instance keeps running it', async () => {
    const job = 'rolling-every';
    const { instances, inHandler, effects } = await twoInstances(job);
    const started = firstStart(instances, job);
    // Every second: the next occurrence is due while the 2.5 s run is still going, so a released
    // lock would let the other instance start it at its next scan (agenda#1778's reproduction).
    await instances.A.scheduler.every('1 second', job);

    const stopped = await started;
    const other = stopped === 'A' ? 'B' : 'A';
    const seen = await stopWhileRunning(instances[stopped], () => inHandler[stopped] > 0);
    expect(seen).toEqual({ agendaStopCalled: true, handlerRunningAtAgendaStop: true });

    // The other instance takes over only after the stopped one finished, and keeps going.
    await waitUntil(async () => (await effects()).filter((e) => e.instance === other).length >= 2, 12_000, `two runs on ${other}`);
    const runs = await effects();
    const onStopped = runs.filter((e) => e.instance === stopped);
    expect(onStopped).toHaveLength(1); // the run in flight at stop, finished once; nothing after the stop
    const [interrupted] = onStopped;
    for (const run of runs.filter((e) => e.instance === other)) {
      expect(run.started_at.getTime()).toBeGreaterThanOrEqual(interrupted.finished_at.getTime());
    }
    // Never two runs of the job at once, across both instances.
    for (let i = 1; i < runs.length; i++) {
      expect(runs[i].started_at.getTime()).toBeGreaterThanOrEqual(runs[i - 1].finished_at.getTime());
    }
    await instances[other].stop();
  });
});

import type { MikroORM } from '@mikro-orm/postgresql';
import { JobState } from '../entities/JobState.js';

const MAX_ERROR_LENGTH = 2000;

/** The `job_states` rows: each job's last run across instances, and its pause switch. */
export class JobStates {
  constructor(private readonly orm: MikroORM) {}

  /** A run starts: recorded. Returns true when the job is paused (the run is then skipped). */
  async started(name: string): Promise<boolean> {
    const em = this.orm.em.fork();
    // One round trip: a wake-up's lateness pays for it (about 1 ms, docs/benchmarks.md).
    const [row] = await em
      .createQueryBuilder(JobState)
      .insert({ name, lastRunAt: new Date() })
      .onConflict('name')
      .merge(['lastRunAt'])
      .returning(['paused'])
      .execute('all');
    return Boolean(row?.paused);
  }

  async finished(name: string, err: unknown): Promise<void> {
    const em = this.orm.em.fork();
    const now = new Date();
    const state = await em.findOne(JobState, { name });
    if (!state) return;
    state.lastFinishedAt = now;
    state.updatedAt = now;
    if (err === null) {
      state.lastError = null;
      state.failCount = 0;
    } else {
      state.lastError = (err instanceof Error ? err.message : String(err)).slice(0, MAX_ERROR_LENGTH);
      state.failCount += 1;
    }
    await em.flush();
  }

  async all(): Promise<Map<string, JobState>> {
    const rows = await this.orm.em.fork().find(JobState, {});
    return new Map(rows.map((r) => [r.name, r]));
  }

  async paused(): Promise<string[]> {
    const rows = await this.orm.em.fork().find(JobState, { paused: true }, { fields: ['name'] });
    return rows.map((r) => r.name);
  }

  async setPaused(name: string, paused: boolean): Promise<void> {
    await this.orm.em
      .fork()
      .createQueryBuilder(JobState)
      .insert({ name, paused, updatedAt: new Date() })
      .onConflict('name')
      .merge(['paused', 'updatedAt'])
      .execute();
  }
}

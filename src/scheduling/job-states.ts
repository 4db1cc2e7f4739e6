import type { MikroORM } from '@mikro-orm/postgresql';
import { JobState } from '../entities/JobState.js';

const MAX_ERROR_LENGTH = 2000;

/** The `job_states` rows: each job's last run across instances, and its pause switch. */
export class JobStates {
  constructor(private readonly orm: MikroORM) {}

  /**
   * A run starts: recorded, unless the job is paused. Returns true when it is paused (the run is then
   * skipped). One round trip: a wake-up's lateness pays for it.
   */
  async started(name: string): Promise<boolean> {
    const em = this.orm.em.fork();
    const recorded = await em
      .createQueryBuilder(JobState)
      .insert({ name, lastRunAt: new Date() })
      .onConflict('name')
      .merge(['lastRunAt'])
      .where({ paused: false })
      .returning(['name'])
      .execute<unknown[]>('all');
    // No row back: the row exists and is paused (the conditional merge changed nothing).
    return recorded.length === 0;
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
      state.lastError = (err instanceof Error ? err.message : typeof err === 'string' ? err : String(JSON.stringify(err))).slice(0, MAX_ERROR_LENGTH);
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

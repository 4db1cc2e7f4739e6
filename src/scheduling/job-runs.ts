import type { MikroORM } from '@mikro-orm/postgresql';
import { JobRun, type JobRunOutcome } from '../entities/JobRun.js';
import { keysetPage, type Page } from '../pagination.js';

const MAX_ERROR_LENGTH = 2000;
/** Per job, at most this many runs are kept… */
export const KEEP_RUNS_PER_JOB = 1000;
/** …and none older than this. */
export const KEEP_RUNS_DAYS = 7;
/**
 * A job's runs are pruned after one of its runs at most this often per instance: the sweeps run every
 * second in tests and every 10 s (outbox) in production, and a prune per run would double their writes.
 */
const PRUNE_EVERY_MS = 60_000;

/** A run as the jobs API shows it. */
export interface JobRunView {
  name: string;
  startedAt: Date;
  finishedAt: Date | null;
  durationMs: number | null;
  outcome: JobRunOutcome;
  error: string | null;
  instance: string;
}

/** What every instance hears about every run (the `jobEvents` subscription). */
export interface JobEvent {
  name: string;
  event: 'STARTED' | 'SUCCEEDED' | 'FAILED';
  at: Date;
  durationMs: number | null;
  instance: string;
  error: string | null;
}

export const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err)).slice(0, MAX_ERROR_LENGTH);

export function runView(r: JobRun): JobRunView {
  return {
    name: r.name,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    durationMs: r.finishedAt ? r.finishedAt.getTime() - r.startedAt.getTime() : null,
    outcome: r.outcome,
    error: r.error,
    instance: r.instance,
  };
}

/** The `job_runs` rows: one per run, written at its start and its end by `instrumented`. */
export class JobRuns {
  private readonly prunedAt = new Map<string, number>();

  constructor(
    private readonly orm: MikroORM,
    readonly instance: string,
  ) {}

  async started(name: string, at: Date): Promise<string> {
    const em = this.orm.em.fork();
    const run = em.create(JobRun, { name, startedAt: at, outcome: 'RUNNING', instance: this.instance });
    await em.flush();
    return run.id;
  }

  async finished(id: string, at: Date, err: unknown): Promise<void> {
    const em = this.orm.em.fork();
    await em.nativeUpdate(JobRun, { id }, { finishedAt: at, outcome: err === null ? 'SUCCEEDED' : 'FAILED', error: err === null ? null : errorText(err) });
  }

  /** Newest first. */
  async page(name: string, first: number, after?: string | null): Promise<Page<JobRunView>> {
    const page = await keysetPage(this.orm.em.fork(), JobRun, { name }, first, after);
    return { pageInfo: page.pageInfo, edges: page.edges.map((e) => ({ cursor: e.cursor, node: runView(e.node) })) };
  }

  /**
   * Keeps the table bounded: deletes the job's runs beyond its newest KEEP_RUNS_PER_JOB and those
   * started more than KEEP_RUNS_DAYS ago. Both walk `job_runs_name_id_idx` (ids grow with start times).
   */
  async prune(name: string, now: Date, force = false): Promise<number> {
    const last = this.prunedAt.get(name) ?? 0;
    if (!force && now.getTime() - last < PRUNE_EVERY_MS) return 0;
    this.prunedAt.set(name, now.getTime());
    const em = this.orm.em.fork();
    const cutoff = await em.findOne(JobRun, { name }, { orderBy: { id: 'desc' }, offset: KEEP_RUNS_PER_JOB - 1, fields: ['id'] });
    const oldest = new Date(now.getTime() - KEEP_RUNS_DAYS * 86_400_000);
    const drop = cutoff ? { $or: [{ id: { $lt: cutoff.id } }, { startedAt: { $lt: oldest } }] } : { startedAt: { $lt: oldest } };
    return em.nativeDelete(JobRun, { name, ...drop });
  }
}

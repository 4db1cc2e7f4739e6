import { randomUUID } from 'node:crypto';
import type { Scheduler } from './agenda.js';
import type { Deadlines } from './deadlines.js';
import { describeSchedule, type JobDefinition } from './jobs.js';
import type { JobStates } from './job-states.js';
import type { JobRuns, JobRunView } from './job-runs.js';
import type { Page } from '../pagination.js';
import { taskHealth, type TaskHealth } from './task-health.js';

export interface JobInfo {
  name: string;
  kind: 'DEADLINE' | 'PERIODIC';
  schedule: string;
  nextRunAt: Date | null;
  lastRunAt: Date | null;
  lastFinishedAt: Date | null;
  lastError: string | null;
  failCount: number;
  running: boolean;
  disabled: boolean;
}

/** What operators do with jobs, whatever runs them. Every instance obeys a pause at its next run. */
export interface JobControl {
  list(): Promise<JobInfo[]>;
  get(name: string): Promise<JobInfo>;
  /** The job's recorded runs, newest first (keyset pages). */
  runs(name: string, first: number, after?: string | null): Promise<Page<JobRunView>>;
  /** Runs the job now, once, on one instance. */
  run(name: string): Promise<JobInfo>;
  pause(name: string): Promise<JobInfo>;
  resume(name: string): Promise<JobInfo>;
  /** Periodic jobs overdue or failing (`GET /health/tasks`). */
  health(now: Date): Promise<TaskHealth>;
}

export class JobPaused extends Error {
  constructor(readonly jobName: string) {
    super(`Job "${jobName}" is paused: resume it to run it`);
    this.name = 'JobPaused';
  }
}

export class UnknownJob extends Error {
  constructor(readonly jobName: string) {
    super(`No job is named "${jobName}"`);
    this.name = 'UnknownJob';
  }
}

/** JobControl over Agenda: next runs from the job store (or the armed wake-up), history and pauses from `job_states`. */
export class AgendaJobControl implements JobControl {
  constructor(
    private readonly catalogue: readonly JobDefinition[],
    private readonly scheduler: Scheduler,
    private readonly deadlines: Deadlines,
    private readonly states: JobStates,
    private readonly history: JobRuns,
  ) {}

  async list(): Promise<JobInfo[]> {
    const [states, armed, { jobs }] = await Promise.all([
      this.states.all(),
      this.deadlines.armed(),
      this.scheduler.queryJobs({ names: this.catalogue.map((j) => j.name) }),
    ]);
    const wakeAt = new Map(armed.map((a) => [a.kind, a.wakeAt]));
    return this.catalogue.map((job) => {
      const rows = jobs.filter((j) => j.name === job.name);
      const state = states.get(job.name);
      const nextRuns = rows.map((r) => r.nextRunAt).filter((d): d is Date => !!d).map((d) => new Date(d).getTime());
      const nextRunAt =
        job.kind === 'DEADLINE'
          ? (wakeAt.get(job.deadline.name) ?? null)
          : nextRuns.length > 0
            ? new Date(Math.min(...nextRuns))
            : null;
      return {
        name: job.name,
        kind: job.kind,
        schedule: describeSchedule(job),
        nextRunAt,
        lastRunAt: state?.lastRunAt ?? null,
        lastFinishedAt: state?.lastFinishedAt ?? null,
        lastError: state?.lastError ?? null,
        failCount: state?.failCount ?? 0,
        // Agenda locks a job up to one scan before it is due: running means locked and begun, not finished.
        running: rows.some(
          (r) =>
            !!r.lockedAt &&
            !!r.lastRunAt &&
            new Date(r.lastRunAt) >= new Date(r.lockedAt) &&
            (!r.lastFinishedAt || new Date(r.lastFinishedAt) < new Date(r.lastRunAt)),
        ),
        disabled: state?.paused ?? false,
      };
    });
  }

  async get(name: string): Promise<JobInfo> {
    this.definition(name);
    return (await this.list()).find((j) => j.name === name)!;
  }

  async runs(name: string, first: number, after?: string | null): Promise<Page<JobRunView>> {
    this.definition(name);
    return this.history.page(name, first, after);
  }

  async run(name: string): Promise<JobInfo> {
    const job = this.definition(name);
    if ((await this.states.paused()).includes(name)) throw new JobPaused(name);
    if (job.kind === 'DEADLINE') await this.scheduler.now(job.name, { kind: job.deadline.name, armId: randomUUID() });
    else await this.scheduler.now(job.name, job.payload);
    return this.get(name);
  }

  async health(now: Date): Promise<TaskHealth> {
    return taskHealth(this.catalogue, await this.states.all(), now);
  }

  async pause(name: string): Promise<JobInfo> {
    const job = this.definition(name);
    await this.states.setPaused(name, true);
    if (job.kind === 'PERIODIC') await this.scheduler.disable({ name });
    // Every instance's timer reads the pause with the row; its wake-up job skips its runs.
    else await this.deadlines.announce(job.deadline.name);
    return this.get(name);
  }

  async resume(name: string): Promise<JobInfo> {
    const job = this.definition(name);
    await this.states.setPaused(name, false);
    if (job.kind === 'PERIODIC') await this.scheduler.enable({ name });
    // A paused kind's timers and wake-up job skipped its armed time: told, every instance's timer reads
    // the row again and finds it overdue, so what is due is settled at once (once: SKIP LOCKED and
    // conditional updates), and the kind re-armed.
    else await this.deadlines.announce(job.deadline.name);
    return this.get(name);
  }

  private definition(name: string): JobDefinition {
    const job = this.catalogue.find((j) => j.name === name);
    if (!job) throw new UnknownJob(name);
    return job;
  }
}

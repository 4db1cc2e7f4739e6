import type { Job } from 'agenda';
import type { Logger } from '../logger.js';
import type { Scheduler } from './agenda.js';
import { wakeJobName, type DeadlineKind, type Deadlines, type WakeupPayload } from './deadlines.js';
import type { JobStates } from './job-states.js';
import { errorText, type JobEvent, type JobRuns } from './job-runs.js';

/** `every`: a fixed interval in ms; `cron`: a cron expression read in `timezone` (DST handled by Agenda's cron parser). */
export type Schedule = { every: number } | { cron: string; timezone: string };

/**
 * What happens when a run throws: Agenda runs it again after `delayMs(attempt)` (attempt 1, 2, …)
 * at most `attempts` times; after that the next scheduled run (or the sweep) takes over.
 */
export interface RetryPolicy {
  attempts: number;
  delayMs(attempt: number): number;
}

export const noRetry: RetryPolicy = { attempts: 0, delayMs: () => 0 };

/** A deadline kind's wake-up: armed by the engine at the kind's earliest pending deadline. */
export interface DeadlineJob {
  kind: 'DEADLINE';
  name: string;
  deadline: DeadlineKind;
  retry: RetryPolicy;
}

/** Periodic work: finds what to do and hands it out in bounded batches. */
export interface PeriodicJob<P = unknown> {
  kind: 'PERIODIC';
  name: string;
  schedule: Schedule;
  payload: P;
  handler(payload: P): Promise<unknown>;
  retry: RetryPolicy;
  /** Off when ENABLE_CRON=false on this instance. */
  cron: true;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the catalogue holds jobs of every payload type; each is typed where it is defined
export type JobDefinition = DeadlineJob | PeriodicJob<any>;

export function deadlineJob(deadline: DeadlineKind, retry: RetryPolicy): DeadlineJob {
  return { kind: 'DEADLINE', name: wakeJobName(deadline.name), deadline, retry };
}

export function periodicJob<P>(def: Omit<PeriodicJob<P>, 'kind' | 'cron'>): PeriodicJob<P> {
  return { kind: 'PERIODIC', cron: true, ...def };
}

export function describeSchedule(job: JobDefinition): string {
  if (job.kind === 'DEADLINE') return `at the earliest pending ${job.deadline.label}`;
  if ('every' in job.schedule) return `every ${job.schedule.every / 1000} s`;
  return `${job.schedule.cron} (${job.schedule.timezone})`;
}

/**
 * Where job events go: Redis pub/sub, straight from here to every instance's `jobEvents` subscribers.
 * Not through the outbox: a run is not a business change, there is no transaction to be atomic with,
 * and an event lost with a Redis outage is acceptable (the run itself is recorded in `job_runs`).
 */
export type JobEventSink = (event: JobEvent) => Promise<void>;

/** Told of every run's end (or skip): the job metrics. */
export type RunObserver = (job: string, outcome: 'succeeded' | 'failed' | 'skipped', seconds?: number) => void;

interface Recorders {
  states: JobStates;
  runs: JobRuns;
  events: JobEventSink;
  log: Logger;
  observe?: RunObserver;
}

/**
 * Paused jobs skip their runs; every run's start, end and error are recorded for the jobs API
 * (`job_states` for the latest, `job_runs` for the history) and announced as job events.
 */
function instrumented(job: JobDefinition, rec: Recorders, body: (data: unknown) => Promise<unknown>) {
  const { states, runs, log } = rec;
  const announce = (event: JobEvent) => rec.events(event).catch((e) => log.warn({ err: e, job: job.name }, 'could not publish a job event'));
  return async (agendaJob: Job<unknown>) => {
    const startedAt = new Date();
    if (await states.started(job.name)) {
      log.info({ job: job.name }, 'job paused: run skipped');
      rec.observe?.(job.name, 'skipped');
      return;
    }
    // Written alongside the run, not before it: a wake-up's lateness does not pay for this round trip.
    const runId = runs.started(job.name, startedAt).catch((e) => {
      log.warn({ err: e, job: job.name }, 'could not record a run start');
      return null;
    });
    void announce({ name: job.name, event: 'STARTED', at: startedAt, durationMs: null, instance: runs.instance, error: null });
    let failed = false;
    let error: unknown = null;
    try {
      await body(agendaJob.attrs.data);
    } catch (err) {
      failed = true;
      error = err;
    }
    const finishedAt = new Date();
    rec.observe?.(job.name, failed ? 'failed' : 'succeeded', (finishedAt.getTime() - startedAt.getTime()) / 1000);
    await states.finished(job.name, failed ? error : null).catch((e) => log.warn({ err: e, job: job.name }, 'could not record a run'));
    const id = await runId;
    if (id !== null) await runs.finished(id, finishedAt, failed ? (error ?? 'failed') : null).catch((e) => log.warn({ err: e, job: job.name }, 'could not record a run end'));
    await announce({
      name: job.name,
      event: failed ? 'FAILED' : 'SUCCEEDED',
      at: finishedAt,
      durationMs: finishedAt.getTime() - startedAt.getTime(),
      instance: runs.instance,
      error: failed ? errorText(error) : null,
    });
    await runs.prune(job.name, finishedAt).catch((e) => log.warn({ err: e, job: job.name }, 'could not prune job runs'));
    if (failed) throw error;
  };
}

/**
 * Defines every job of the catalogue on this instance's Agenda and schedules the periodic ones
 * (unless ENABLE_CRON=false). Periodic jobs are Agenda `every` jobs: one row per name, so any number
 * of instances share one schedule and one lock per run.
 */
export async function registerJobs(
  catalogue: readonly JobDefinition[],
  deps: {
    scheduler: Scheduler;
    deadlines: Deadlines;
    states: JobStates;
    runs: JobRuns;
    events: JobEventSink;
    log: Logger;
    enableCron: boolean;
    lockLifetimeMs: number;
    observe?: RunObserver;
  },
): Promise<void> {
  const { scheduler, deadlines, states, log } = deps;
  for (const job of catalogue) {
    const backoff = (ctx: { attempt: number }) => (ctx.attempt <= job.retry.attempts ? job.retry.delayMs(ctx.attempt) : null);
    if (job.kind === 'DEADLINE') {
      deadlines.register(job.deadline);
      scheduler.define(
        job.name,
        instrumented(job, deps, (data) => deadlines.runWakeup(data as WakeupPayload)),
        { lockLifetime: deps.lockLifetimeMs, removeOnComplete: true, backoff },
      );
      continue;
    }
    if (!deps.enableCron) continue;
    scheduler.define(job.name, instrumented(job, deps, () => job.handler(job.payload)), { lockLifetime: deps.lockLifetimeMs, backoff });
  }
  if (!deps.enableCron) {
    log.info('ENABLE_CRON=false: periodic jobs are off on this instance');
    return;
  }
  // `every` saves the job enabled, so a job an admin paused is not saved again here: re-saving it and
  // disabling it after left a moment in which another instance's scheduler started it (job-control
  // test). A paused job keeps the schedule it has; a changed interval applies at the first start
  // after it is resumed. The disable below covers a pause made while this loop ran.
  const paused = new Set(await states.paused());
  for (const job of catalogue) {
    if (job.kind !== 'PERIODIC' || paused.has(job.name)) continue;
    if ('every' in job.schedule) await scheduler.every(job.schedule.every, job.name, job.payload);
    else await scheduler.every(job.schedule.cron, job.name, job.payload, { timezone: job.schedule.timezone });
  }
  const pausedNow = new Set(await states.paused());
  for (const job of catalogue) {
    if (job.kind === 'PERIODIC' && pausedNow.has(job.name) && !paused.has(job.name)) await scheduler.disable({ name: job.name });
  }
}

import type { Job } from 'agenda';
import type { Logger } from '../logger.js';
import type { Scheduler } from './agenda.js';
import { wakeJobName, type DeadlineKind, type Deadlines, type WakeupPayload } from './deadlines.js';
import type { JobStates } from './job-states.js';

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

/** Paused jobs skip their runs; every run's start, end and error are recorded for the jobs API. */
function instrumented(job: JobDefinition, states: JobStates, log: Logger, body: (data: unknown) => Promise<unknown>) {
  return async (agendaJob: Job<unknown>) => {
    if (await states.started(job.name)) {
      log.info({ job: job.name }, 'job paused: run skipped');
      return;
    }
    try {
      await body(agendaJob.attrs.data);
    } catch (err) {
      await states.finished(job.name, err).catch((e) => log.warn({ err: e, job: job.name }, 'could not record a failed run'));
      throw err;
    }
    await states.finished(job.name, null).catch((e) => log.warn({ err: e, job: job.name }, 'could not record a run'));
  };
}

/**
 * Defines every job of the catalogue on this instance's Agenda and schedules the periodic ones
 * (unless ENABLE_CRON=false). Periodic jobs are Agenda `every` jobs: one row per name, so any number
 * of instances share one schedule and one lock per run.
 */
export async function registerJobs(
  catalogue: readonly JobDefinition[],
  deps: { scheduler: Scheduler; deadlines: Deadlines; states: JobStates; log: Logger; enableCron: boolean; lockLifetimeMs: number },
): Promise<void> {
  const { scheduler, deadlines, states, log } = deps;
  for (const job of catalogue) {
    const backoff = (ctx: { attempt: number }) => (ctx.attempt <= job.retry.attempts ? job.retry.delayMs(ctx.attempt) : null);
    if (job.kind === 'DEADLINE') {
      deadlines.register(job.deadline);
      scheduler.define(
        job.name,
        instrumented(job, states, log, (data) => deadlines.runWakeup(data as WakeupPayload)),
        { lockLifetime: deps.lockLifetimeMs, removeOnComplete: true, backoff },
      );
      continue;
    }
    if (!deps.enableCron) continue;
    scheduler.define(job.name, instrumented(job, states, log, () => job.handler(job.payload)), { lockLifetime: deps.lockLifetimeMs, backoff });
  }
  if (!deps.enableCron) {
    log.info('ENABLE_CRON=false: periodic jobs are off on this instance');
    return;
  }
  for (const job of catalogue) {
    if (job.kind !== 'PERIODIC') continue;
    if ('every' in job.schedule) await scheduler.every(job.schedule.every, job.name, job.payload);
    else await scheduler.every(job.schedule.cron, job.name, job.payload, { timezone: job.schedule.timezone });
  }
  // `every` saves the job enabled: a pause an admin set must survive this instance's start.
  const paused = new Set(await states.paused());
  for (const job of catalogue) {
    if (job.kind === 'PERIODIC' && paused.has(job.name)) await scheduler.disable({ name: job.name });
  }
}

import { OptionalProps } from '@mikro-orm/core';
import { Entity, Enum, Index, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';

export const JOB_RUN_OUTCOMES = ['RUNNING', 'SUCCEEDED', 'FAILED'] as const;
export type JobRunOutcome = (typeof JOB_RUN_OUTCOMES)[number];

/**
 * One run of a catalogue job on one instance, written by `instrumented` (src/scheduling/jobs.ts):
 * RUNNING at its start, SUCCEEDED or FAILED at its end. Kept bounded by `JobRuns.prune`.
 */
@Entity({ tableName: 'job_runs' })
@Index({ name: 'job_runs_name_id_idx', properties: ['name', 'id'] })
export class JobRun {
  [OptionalProps]?: 'finishedAt' | 'error';

  @PrimaryKey({ type: 'bigint', autoincrement: true })
  id!: string;

  @Property({ type: 'text' })
  name!: string;

  @Property({ type: 'timestamptz', length: 3 })
  startedAt!: Date;

  @Property({ type: 'timestamptz', length: 3, nullable: true })
  finishedAt: Date | null = null;

  @Enum({ items: [...JOB_RUN_OUTCOMES], type: 'text' })
  outcome!: JobRunOutcome;

  @Property({ type: 'text', nullable: true })
  error: string | null = null;

  /** The instance's name (host:pid:port unless configured). */
  @Property({ type: 'text' })
  instance!: string;
}

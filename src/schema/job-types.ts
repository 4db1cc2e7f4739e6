import { ArgsType, Field, Int, ObjectType, registerEnumType } from 'type-graphql';
import { IsInt, IsOptional, Max, Min } from 'class-validator';
import { JOB_RUN_OUTCOMES } from '../entities/JobRun.js';
import { MAX_PAGE_SIZE } from '../pagination.js';
import { PageInfo } from './types.js';

export enum JobKind {
  DEADLINE = 'DEADLINE',
  PERIODIC = 'PERIODIC',
}
registerEnumType(JobKind, { name: 'JobKind', description: 'A deadline kind\'s wake-up, or periodic work' });

export enum JobRunOutcome {
  RUNNING = 'RUNNING',
  SUCCEEDED = 'SUCCEEDED',
  FAILED = 'FAILED',
}
registerEnumType(JobRunOutcome, { name: 'JobRunOutcome' });
if (Object.values(JobRunOutcome).join() !== JOB_RUN_OUTCOMES.join()) throw new Error('JobRunOutcome out of sync');

export enum JobEventKind {
  STARTED = 'STARTED',
  SUCCEEDED = 'SUCCEEDED',
  FAILED = 'FAILED',
}
registerEnumType(JobEventKind, { name: 'JobEventKind' });

@ObjectType({ description: 'A job of the catalogue, as every instance sees it' })
export class JobInfo {
  @Field() name!: string;
  @Field(() => JobKind) kind!: JobKind;
  @Field({ description: 'Human-readable: "every 60 s", a cron expression and its timezone, or the deadline it wakes at' }) schedule!: string;
  @Field(() => Date, { nullable: true }) nextRunAt!: Date | null;
  @Field(() => Date, { nullable: true }) lastRunAt!: Date | null;
  @Field(() => Date, { nullable: true }) lastFinishedAt!: Date | null;
  @Field(() => String, { nullable: true, description: 'The last run\'s error; null after a success' }) lastError!: string | null;
  @Field(() => Int, { description: 'Failed runs since the last success' }) failCount!: number;
  @Field() running!: boolean;
  @Field({ description: 'Paused by an admin (pauseJob): every instance skips its runs' }) disabled!: boolean;
}

@ObjectType({ description: 'One run of a job on one instance' })
export class JobRun {
  @Field() name!: string;
  @Field() startedAt!: Date;
  @Field(() => Date, { nullable: true }) finishedAt!: Date | null;
  @Field(() => Int, { nullable: true, description: 'Null while running' }) durationMs!: number | null;
  @Field(() => JobRunOutcome) outcome!: JobRunOutcome;
  @Field(() => String, { nullable: true }) error!: string | null;
  @Field({ description: 'The instance that ran it' }) instance!: string;
}

@ObjectType()
export class JobRunEdge {
  @Field() cursor!: string;
  @Field(() => JobRun) node!: JobRun;
}

@ObjectType()
export class JobRunConnection {
  @Field(() => [JobRunEdge]) edges!: JobRunEdge[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

@ObjectType({ description: 'A job run starting or ending, on any instance' })
export class JobEvent {
  @Field() name!: string;
  @Field(() => JobEventKind) event!: JobEventKind;
  @Field() at!: Date;
  @Field(() => Int, { nullable: true, description: 'Null for STARTED' }) durationMs!: number | null;
  @Field() instance!: string;
  @Field(() => String, { nullable: true }) error!: string | null;
}

@ArgsType()
export class JobRunsArgs {
  @Field() name!: string;
  @Field(() => Int, { defaultValue: 20 }) @IsInt() @Min(1) @Max(MAX_PAGE_SIZE) first!: number;
  @Field(() => String, { nullable: true }) @IsOptional() after?: string;
}

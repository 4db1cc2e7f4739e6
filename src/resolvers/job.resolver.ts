import { Arg, Args, Ctx, Mutation, Query, Resolver, Root, Subscription, type SubscribeResolverData } from 'type-graphql';
import { requireAdmin, type Context } from '../context.js';
import { conflict, notFound } from '../errors.js';
import { JOB_EVENTS_CHANNEL, type JobEventMessage } from '../events/types.js';
import { JobPaused, UnknownJob } from '../scheduling/job-control.js';
import { JobEvent, JobInfo, JobRunConnection, JobRunsArgs, type JobEventKind } from '../schema/job-types.js';

type Data<A> = SubscribeResolverData<unknown, A, Context>;

/** An unknown job name is NOT_FOUND (the name is well formed; no job has it); running a paused job is CONFLICT. */
async function jobErrors<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof UnknownJob) throw notFound('Job', err.jobName);
    if (err instanceof JobPaused) throw conflict(err.message);
    throw err;
  }
}

/** The jobs admin API: admins only, thin over `JobControl`. */
@Resolver()
export class JobResolver {
  @Query(() => [JobInfo], { description: 'Admins: every job of the catalogue' })
  async jobs(@Ctx() ctx: Context): Promise<JobInfo[]> {
    requireAdmin(ctx);
    return (await ctx.services.jobs.list()) as JobInfo[];
  }

  @Query(() => JobRunConnection, { description: "Admins: a job's recorded runs, newest first (the last 1,000, 7 days at most)" })
  async jobRuns(@Args() args: JobRunsArgs, @Ctx() ctx: Context): Promise<JobRunConnection> {
    requireAdmin(ctx);
    return (await jobErrors(ctx.services.jobs.runs(args.name, args.first, args.after))) as JobRunConnection;
  }

  @Mutation(() => JobInfo, { description: 'Admins: runs the job now, once, on one instance (CONFLICT when paused)' })
  async runJob(@Arg('name') name: string, @Ctx() ctx: Context): Promise<JobInfo> {
    const admin = requireAdmin(ctx);
    const info = await jobErrors(ctx.services.jobs.run(name));
    await ctx.services.audit.recordDone(ctx.em, admin, 'RUN_JOB', name, ctx.now(), { name, result: { ...info } });
    return info as JobInfo;
  }

  @Mutation(() => JobInfo, { description: 'Admins: every instance skips its runs from now on, until resumed (survives restarts)' })
  async pauseJob(@Arg('name') name: string, @Ctx() ctx: Context): Promise<JobInfo> {
    const admin = requireAdmin(ctx);
    const info = await jobErrors(ctx.services.jobs.pause(name));
    await ctx.services.audit.recordDone(ctx.em, admin, 'PAUSE_JOB', name, ctx.now(), { name, result: { ...info } });
    return info as JobInfo;
  }

  @Mutation(() => JobInfo, { description: 'Admins: undoes pauseJob; a deadline kind settles what came due meanwhile at once' })
  async resumeJob(@Arg('name') name: string, @Ctx() ctx: Context): Promise<JobInfo> {
    const admin = requireAdmin(ctx);
    const info = await jobErrors(ctx.services.jobs.resume(name));
    await ctx.services.audit.recordDone(ctx.em, admin, 'RESUME_JOB', name, ctx.now(), { name, result: { ...info } });
    return info as JobInfo;
  }

  @Subscription(() => JobEvent, {
    description: 'Admins: every job run starting and ending, on every instance',
    subscribe: ({ context }: Data<Record<string, never>>) => {
      requireAdmin(context);
      return context.services.bus.iterate(JOB_EVENTS_CHANNEL);
    },
  })
  jobEvents(@Root() e: JobEventMessage): JobEvent {
    return { ...e, event: e.event as JobEventKind, at: new Date(e.at) };
  }
}

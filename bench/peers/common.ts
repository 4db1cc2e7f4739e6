/**
 * What bench:peers' orchestrator and its child processes share: the peers' auction table, the work
 * every peer does per deadline, the Redis channel the peers publish on, and the child processes
 * kept track of so none outlives the benchmark.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type pg from 'pg';

/**
 * The peers' own `auctions` table: Deadline's columns and its (status, end_time) index, without the
 * foreign keys to `users` (no peer has that table; one check fewer per update, an advantage to them).
 */
export const PEER_TABLE_DDL = [
  `create table if not exists auctions (
     id bigserial primary key,
     seller_id text not null,
     nft_id text not null,
     title text not null,
     starting_price integer not null check (starting_price >= 0),
     min_increment integer not null check (min_increment > 0),
     end_time timestamptz(3) not null,
     status text not null default 'ACTIVE' check (status in ('ACTIVE', 'ENDED', 'CANCELLED')),
     highest_bid integer null,
     highest_bidder_id text null,
     winner_id text null,
     soft_close_seconds integer not null check (soft_close_seconds >= 0),
     ended_at timestamptz(3) null,
     created_at timestamptz(3) not null default now()
   )`,
  `create index if not exists auctions_status_end_time_idx on auctions (status, end_time)`,
];

/** The conditional end of one auction, as every peer's job runs it: a second run changes nothing. */
export const END_ONE_SQL = `update auctions set status = 'ENDED', winner_id = highest_bidder_id, ended_at = now()
  where id = $1 and status = 'ACTIVE' returning *`;

/** The floor's one statement at the instant: every due auction ended at once. */
export const END_DUE_SQL = `update auctions set status = 'ENDED', winner_id = highest_bidder_id, ended_at = now()
  where status = 'ACTIVE' and end_time <= now() returning *`;

/** The channel a peer publishes its auction ends on, under the system's own Redis prefix. */
export const endedChannel = (prefix: string) => `${prefix}:auction-ended`;

/** A peer's whole work for one deadline: the conditional update, then one event on Redis when it ended the auction. */
export async function endOne(pool: pg.Pool, redis: Redis, channel: string, id: string): Promise<void> {
  const { rows } = await pool.query(END_ONE_SQL, [id]);
  if (rows[0]) await redis.publish(channel, JSON.stringify({ eventId: randomUUID(), auction: rows[0] }));
}

/** The id of the auction an event carries, whichever system sent it ({ auction: { id } } at some depth). */
export function auctionIdOf(text: string): string | undefined {
  const m = /"auction":\{"id":"?(\d+)"?/.exec(text);
  return m?.[1];
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

export const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
export const flag = (name: string) => process.argv.includes(`--${name}`);

/** Every child process the benchmark started and has not seen exit: killed on the way out, whatever the way. */
export const children = new Set<ChildProcess>();

export function startChild(command: string, args: string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, options);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function killChildren(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

/** SIGKILLs `child` and waits until it has gone. */
export async function killChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** The next message of `type` from a forked child, or an error when it exits or `ms` pass first. */
export function nextMessage<T extends { type: string }>(child: ChildProcess, type: string, ms = 60_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no '${type}' from child ${child.pid} in ${ms} ms`)), ms);
    const onMessage = (m: T) => m?.type === type && done(undefined, m);
    const onExit = (code: number | null, signal: string | null) => done(new Error(`child ${child.pid} exited (${code ?? signal}) before '${type}'`));
    function done(err?: Error, m?: T) {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve(m!);
    }
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

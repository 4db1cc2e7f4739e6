/**
 * Measuring where a benchmark's time goes, for bench:payments (reconciliation, callbacks, refunds):
 * CPU seconds of this process, PostgreSQL, Redis and every other process (from /proc), timers around
 * one instance's methods, the SQL statements the server sends, and the server's warnings counted.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { pct } from './support.js';

export const r1 = (x: number) => Math.round(x * 10) / 10;
export const r2 = (x: number) => Math.round(x * 100) / 100;
export const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

const TICKS = 100; // USER_HZ on Linux

/**
 * CPU seconds (user + system) of the processes whose name starts with `name` and, when given, whose
 * command line passes `keep` (PostgreSQL: the backends of the benchmark's database and the server's
 * own processes, not the backends of others' databases).
 */
export function cpuOf(name: string, keep?: (cmdline: string) => boolean): number {
  let ticks = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      if (!comm.startsWith(name)) continue;
      if (keep && !keep(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '))) continue;
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
    } catch {
      // gone meanwhile
    }
  }
  return ticks / TICKS;
}

/** This benchmark's PostgreSQL CPU: its database's backends, the postmaster and the WAL writer, checkpointer, autovacuum … */
const postgresCpu = (database: string) =>
  cpuOf('postgres', (cmd) => cmd.includes(` ${database} `) || !/^postgres: \S+: \S+ \S+ \d/.test(cmd));

export interface CpuSample {
  wallS: number;
  /** This process (every thread), PostgreSQL (see postgresCpu), Redis: CPU seconds over the window. */
  nodeS: number;
  postgresS: number;
  redisS: number;
  /** Every other process on the machine (others' work sharing it: the numbers are only as clean as this is small). */
  otherS: number;
  /** This thread's event-loop utilisation over the window (1 = never idle). */
  elu: number;
}

/** Busy CPU seconds of the whole machine (/proc/stat: everything but idle and iowait). */
function machineBusy(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = f;
  return (user + nice + system + irq + softirq + (steal ?? 0)) / TICKS;
}

export function cpuMeter(database: string): () => CpuSample {
  const t = performance.now();
  const machine = machineBusy();
  const node = process.cpuUsage();
  const postgres = postgresCpu(database);
  const redis = cpuOf('redis-server');
  const elu = performance.eventLoopUtilization();
  return () => {
    const n = process.cpuUsage(node);
    const nodeS = (n.user + n.system) / 1e6;
    const postgresS = postgresCpu(database) - postgres;
    const redisS = cpuOf('redis-server') - redis;
    return {
      wallS: r2((performance.now() - t) / 1000),
      nodeS: r2(nodeS),
      postgresS: r2(postgresS),
      redisS: r2(redisS),
      otherS: r2(Math.max(0, machineBusy() - machine - nodeS - postgresS - redisS)),
      elu: Math.round(performance.eventLoopUtilization(elu).utilization * 100) / 100,
    };
  };
}

/** Timers around a method of one instance (the server's own provider and Transactions objects). */
export function timeMethod<T extends object>(target: T, method: keyof T, into: number[]): () => void {
  const original = target[method] as unknown as (...a: unknown[]) => Promise<unknown>;
  (target as Record<keyof T, unknown>)[method] = async function (this: unknown, ...a: unknown[]) {
    const t = performance.now();
    try {
      return await original.apply(this, a);
    } finally {
      into.push(performance.now() - t);
    }
  };
  return () => void ((target as Record<keyof T, unknown>)[method] = original);
}

/**
 * SQL statements this process sends while it runs, except those of `own` (the benchmark's client, if any):
 * every pg.Client, the server's (MikroORM brings its own copy of `pg`) and Agenda's alike.
 */
export function countStatements(own?: pg.Client): () => number {
  const mikroPg = createRequire(fileURLToPath(import.meta.resolve('@mikro-orm/postgresql')))('pg') as typeof pg;
  const protos = [...new Set([pg.Client.prototype, mikroPg.Client.prototype])] as unknown as Array<{ query: (...a: unknown[]) => unknown }>;
  let n = 0;
  const originals = protos.map((proto) => {
    const original = proto.query;
    proto.query = function (this: unknown, ...a: unknown[]) {
      if (this !== own) n++;
      return original.apply(this, a);
    };
    return original;
  });
  return () => {
    protos.forEach((proto, i) => (proto.query = originals[i]!));
    return n;
  };
}

export const summary = (xs: number[]) => {
  const s = sorted(xs);
  return { n: s.length, p50: r1(pct(s, 50)), p99: r1(pct(s, 99)), max: r1(s[s.length - 1] ?? NaN) };
};

/** Warnings and errors the server logs, counted; the first few printed. */
export function countingLogger(pino: typeof import('pino').pino) {
  const counts = { warn: 0, error: 0 };
  let printed = 0;
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) {
        if (!line) continue;
        const level = Number(/"level":(\d+)/.exec(line)?.[1]);
        if (level >= 50) counts.error++;
        else if (level >= 40) counts.warn++;
        if (printed++ < 5) console.log(`  server log: ${line.slice(0, 400)}`);
      }
      done();
    },
  });
  return { log: pino({ level: 'warn' }, stream), counts };
}


export async function migrateSchema(url: string): Promise<void> {
  const { initOrm, migrate } = await import('../src/db/orm.js');
  const orm = await initOrm(url);
  await migrate(orm, url);
  await orm.close();
}

export const databaseName = (url: string) => decodeURIComponent(new URL(url).pathname.slice(1));

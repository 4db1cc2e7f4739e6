/**
 * npm run bench:peers — Deadline side by side with what a user would build instead (issue 29), and
 * next to the floor, in one invocation: systems alternate, round after round.
 *
 * Workloads, at N = 1,000 and 10,000: all N due at one instant (a round second); due spread evenly
 * over one second; all at one instant with two workers/instances, one SIGKILLed 200 ms before it.
 * Lateness = when the system's client received an auction's end − its end time; a round is capped at
 * 60 s after its last due time ("> 60 s"). Each round visits every system once per size, on processes
 * kept warm from one workload to the next: one process started and warmed with ends at one instant
 * (1,000 before the 1,000 workloads, measured as "cold": the first after start; 200 otherwise), the
 * instant and spread workloads, then a second process beside it for the SIGKILL one. A capped round's
 * backlog is purged and fresh processes take the next workload; a cell whose "> 60 s" is certain from
 * what was measured (at one instant or over 1 s, capped in an earlier round; with a SIGKILL, capped
 * with one worker at as many ends) is not run again, and the table says so. Phases run in the order of what matters most (one
 * round of the 1,000 workloads and of the fan-out, the other rounds of the 1,000 ones, one round of
 * the 10,000 ones, then the rest), so that the budget, when reached, cuts the least decisive. At the
 * end, where the time went, by phase and by system (bench/peers/timing.ts).
 * Fan-out: one end to 10,000 graphql-ws subscribers, Deadline against graphql-ws `useServer` with
 * graphql-redis-subscriptions; the last subscriber reached, and server RSS per idle subscription.
 *
 * Options: --rounds=3 (--quick: 1) --sizes=1000,10000 --workloads=instant,spread,kill
 *   --systems=deadline,floor,bullmq-100,… (bench/peers/peers.ts) --fanout=10000 (0: none)
 *   --budget-minutes=28 (a visit that would end past it is skipped, and the table says so)
 *   --no-write (the tables are written to docs/benchmarks.md and README.md only for the whole matrix)
 * Talks only to 127.0.0.1; each system has its own database and Redis prefix, both removed at the end;
 * every process it starts is killed on exit or Ctrl-C.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { Redis } from 'ioredis';
import pg from 'pg';
import { pct } from '../support.js';
import { FANOUT_PEER_DEF, fanoutRound, type FanoutFigures } from './fanout.js';
import { arg, flag, killChildren, sleep } from './common.js';
import { REDIS_URL, SYSTEMS, SystemRun, type Session } from './peers.js';
import { TimeSpent } from './timing.js';
import {
  CAP_MS,
  COMPARISON_HEADER,
  DOC_END,
  DOC_START,
  HEADLINE_WORKLOAD,
  README_END,
  README_START,
  comparisonRow,
  fmtMs,
  parseHeadline,
  readmeLine,
  replaceBetween,
} from './report.js';

const QUICK = flag('quick');
const ROUNDS = Number(arg('rounds', QUICK ? '1' : '3'));
const SIZES = arg('sizes', '1000,10000').split(',').map(Number);
const WORKLOADS = arg('workloads', 'instant,spread,kill').split(',');
const SYSTEM_KEYS = arg('systems', SYSTEMS.map((s) => s.key).join(',')).split(',');
const FANOUT = Number(arg('fanout', '10000'));
const BUDGET_MS = Number(arg('budget-minutes', '28')) * 60_000;
const WARMUP = 1000;
const KILL_WARMUP = 200;
const FANOUT_PROCESSES = 4;
const WHOLE_MATRIX =
  SYSTEM_KEYS.length === SYSTEMS.length && SIZES.join() === '1000,10000' && ['instant', 'spread', 'kill'].every((w) => WORKLOADS.includes(w)) && FANOUT === 10_000;
const WRITE = WHOLE_MATRIX && !flag('no-write');

const unknown = SYSTEM_KEYS.filter((k) => !SYSTEMS.some((s) => s.key === k));
if (unknown.length) throw new Error(`unknown systems: ${unknown.join(', ')}`);
const defs = SYSTEM_KEYS.map((k) => SYSTEMS.find((s) => s.key === k)!);

const started = Date.now();
const runId = randomBytes(3).toString('hex');
const redis = new Redis(REDIS_URL);
const runs: SystemRun[] = [];
let fanoutPeerRun: SystemRun | undefined;
const spent = new TimeSpent();

// ---------------------------------------------------------------------------------------------------
// Leaving nothing behind: children killed and prefixes and databases removed on Ctrl-C, SIGTERM, the
// budget's hard stop (5 minutes past it) or an error; the children also exit when this process goes
// (their IPC channel closes), and Deadline's servers are killed on 'exit'.
// ---------------------------------------------------------------------------------------------------
let aborting = false;
async function abort(why: string, code: number): Promise<never> {
  if (!aborting) {
    aborting = true;
    console.error(`!! ${why}: stopping`);
    process.on('uncaughtException', () => undefined);
    killChildren();
    for (const run of [...runs, ...(fanoutPeerRun ? [fanoutPeerRun] : [])]) await run.cleanup(redis).catch(() => undefined);
    await dropDatabases();
  }
  process.exit(code);
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => void abort(signal, 130));
process.on('exit', killChildren);
setTimeout(() => void abort('the benchmark ran 5 minutes past its budget', 2), BUDGET_MS + 5 * 60_000).unref();

// ---------------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------------
interface Figures {
  p50: number;
  p99: number;
  max: number;
  heard: number;
  n: number;
  duplicates: number;
  /** How long before the first due time the deadlines were all scheduled (negative: late, the round is flawed). */
  slackMs: number;
  /** In the database: ended_at − end_time, p99 (the statement's start; the rest of the lateness comes after it). */
  endedP99: number;
}
const cells = new Map<string, Figures[]>();
const notes = new Map<string, string>();
const cellKey = (workload: string, system: string) => `${workload}|${system}`;
const record = (workload: string, system: string, f: Figures) => {
  const key = cellKey(workload, system);
  cells.set(key, [...(cells.get(key) ?? []), f]);
};
const capped = (workload: string, system: string) => (cells.get(cellKey(workload, system)) ?? []).some((f) => f.heard < f.n);

const n1 = (n: number) => n.toLocaleString('en-US');
const workloadName = (w: string, n: number) =>
  w === 'instant' ? `${n1(n)} at one instant` : w === 'spread' ? `${n1(n)} over 1 s` : w === 'cold' ? `${n1(n)} at one instant, cold` : `${n1(n)} at one instant, SIGKILL`;

// ---------------------------------------------------------------------------------------------------
// One workload on a running session
// ---------------------------------------------------------------------------------------------------
interface RoundOptions {
  kill?: boolean;
  capMs?: number;
  /** A warm-up: not recorded, its time counted as warming up. */
  warmup?: boolean;
}
async function runWorkload(run: SystemRun, session: Session, n: number, shape: 'instant' | 'spread', { kill = false, capMs = CAP_MS, warmup = false }: RoundOptions = {}): Promise<Figures> {
  const label = run.def.label;
  const t0 = Date.now();
  // The due time: the next whole second at least 0.7 s past scheduling as long again as it should
  // take at the rate last seen, or a quarter when it was seen at this size or larger (Agenda schedules
  // 10,000 one save at a time: every second of margin is idle). Idle lead was the largest part of the
  // time that was not waiting for ends; 0.7 s still leaves the SIGKILL's 200 ms before the instant
  // after every deadline is armed.
  const lead = 700 + n * run.msPerRow * (run.msPerRowAt >= n ? 1.25 : 1.5);
  const instant = Math.ceil((Date.now() + lead) / 1000) * 1000;
  const ends = Array.from({ length: n }, (_, i) => instant + (shape === 'spread' ? Math.floor((i * 1000) / n) : 0));
  const rows = await run.insert(ends);
  session.watcher.recorder.expect(new Map(rows.map((r) => [r.id, r.due])));
  await session.schedule(rows);
  const scheduled = Date.now();
  const took = scheduled - t0;
  // The rate of the largest round so far: a warm-up's fixed costs spread over 200 rows would make a
  // 10,000 round's lead (Agenda's above all) far longer than its scheduling takes.
  if (n >= run.msPerRowAt) {
    run.msPerRow = Math.max(0.02, took / n);
    run.msPerRowAt = n;
  }
  const slackMs = instant - scheduled;
  if (slackMs < 300) console.warn(`  ${label}: scheduling ${n} took ${took} ms, ${slackMs} ms before the first due time`);
  let killer: NodeJS.Timeout | undefined;
  if (kill) killer = setTimeout(() => void session.killOne(), instant - 200 - Date.now());
  await session.watcher.recorder.wait(ends[ends.length - 1] + capMs);
  clearTimeout(killer);
  const heardBy = Date.now();
  const lateness = session.watcher.recorder.lateness();
  const heard = lateness.filter(Number.isFinite).length;
  // A moment for what the system does after the events (acknowledgements, completions) before the
  // next round's scheduling; that round's lead (0.7 s or more) keeps them from its due time.
  await sleep(250);
  const { rows: ended } = await run.db().query<{ ms: number }>(
    `select (extract(epoch from ended_at - end_time) * 1000)::float8 as ms from auctions where id = any($1::bigint[]) and ended_at is not null order by 1`,
    [rows.map((r) => r.id)],
  );
  const endedMs = ended.map((r) => r.ms);
  if (warmup) {
    spent.add(label, 'warm-ups', Date.now() - t0);
  } else {
    spent.add(label, 'scheduling', took);
    spent.add(label, 'lead left', Math.max(0, slackMs));
    spent.add(label, 'waiting for the ends', heardBy - Math.max(instant, scheduled));
    spent.add(label, 'settling', Date.now() - heardBy);
  }
  return { p50: pct(lateness, 50), p99: pct(lateness, 99), max: lateness[lateness.length - 1], heard, n, duplicates: session.watcher.recorder.duplicates, slackMs, endedP99: endedMs.length === n ? pct(endedMs, 99) : Infinity };
}

const show = (f: Figures) =>
  `p50 ${fmtMs(f.p50)} / p99 ${fmtMs(f.p99)} / max ${fmtMs(f.max)} ms, heard ${f.heard}/${f.n}${f.duplicates ? `, ${f.duplicates} copies` : ''}; ended_at − end_time p99 ${fmtMs(f.endedP99)} ms`;

// ---------------------------------------------------------------------------------------------------
// Cells whose "> 60 s" is already certain
// ---------------------------------------------------------------------------------------------------
/** Cells not run because what was measured makes their "> 60 s" certain: the table gives the figure so. */
const certainCells = new Set<string>();
/**
 * Why the cell need not run. At one instant or over 1 s, a round that reached the cap did so for want
 * of throughput: the others would too (the brief's rule), so it is not repeated. With a SIGKILL it is
 * repeated: whether the killed worker held jobs when it died (Agenda locks them ahead of their time)
 * differs from round to round (Agenda 5 s: 847/1,000 heard in one run, 1,000 within 15 s in the next),
 * unless one worker alone at one instant already reached the cap at this size: 200 ms before the
 * instant the survivor is left alone with every deadline, that workload plus what the killed one held.
 */
function certainlyCapped(w: string, n: number, label: string): string | undefined {
  if (w !== 'kill') return capped(workloadName(w, n), label) ? '> 60 s in an earlier round (a throughput cap), taken as certain: not repeated' : undefined;
  if (capped(workloadName('instant', n), label)) return `not run: > 60 s certain, as it was at ${n1(n)} at one instant with one worker, which the survivor faces alone`;
  return undefined;
}
/** Whether to run the cell; if not, the table says why. */
function toRun(w: string, n: number, label: string): boolean {
  const why = certainlyCapped(w, n, label);
  if (why === undefined) return true;
  notes.set(cellKey(workloadName(w, n), label), why);
  if (!capped(workloadName(w, n), label)) certainCells.add(cellKey(workloadName(w, n), label));
  console.log(`  ${label}, ${workloadName(w, n)}: ${why}`);
  return false;
}

// ---------------------------------------------------------------------------------------------------
// Visits, with the budget
// ---------------------------------------------------------------------------------------------------
/** Per visit (system:size), the part of its last one that was no measured round: starts, warm-ups, stops. */
const visitOverhead = new Map<string, number>();
/** Per cell, how long its last round took, scheduling to settle. */
const cellTook = new Map<string, number>();
/**
 * How long a visit should take, for the budget: its overhead and its cells as long as they last took,
 * or, for a first visit at 10,000, the 1,000 ones scaled (the per-deadline part grows tenfold, the
 * start, warm-up and poll intervals do not), each bounded by the cap.
 */
function estimate(run: SystemRun, n: number, workloadsIn: string[]): number {
  const small = `${run.def.key}:${WARMUP}`;
  const overhead = visitOverhead.get(`${run.def.key}:${n}`) ?? visitOverhead.get(small) ?? 0;
  const cells = workloadsIn.map((w) => {
    const last = cellTook.get(cellKey(workloadName(w, n), run.def.label));
    if (last !== undefined) return last;
    const atSmall = cellTook.get(cellKey(workloadName(w, WARMUP), run.def.label));
    return atSmall === undefined ? 0 : Math.min(atSmall * (n / WARMUP) * 0.6, CAP_MS + 30_000);
  });
  return overhead + cells.reduce((a, b) => a + b, 0);
}
const skippedWhy = (key: string) => (visitOverhead.has(key) ? 'later rounds skipped to stay within the budget' : 'not run: would not have ended within the budget');

/**
 * One visit of a system at size n, on processes kept warm from one workload to the next: one process
 * started, `WARMUP` ends at one instant right after its start (the cold figure) or 200 before 10,000,
 * the instant and spread workloads; then a second process beside it, 200 ends on both, and the SIGKILL
 * workload (the first, warm one killed 200 ms before the instant). A round that reaches its cap leaves
 * a backlog: the processes are stopped, what they still owed is purged (SystemRun.purge), and fresh
 * ones warmed with 200 take the next workload.
 */
async function visit(run: SystemRun, n: number): Promise<void> {
  const label = run.def.label;
  const key = `${run.def.key}:${n}`;
  const normal = ['instant', 'spread'].filter((w) => WORKLOADS.includes(w) && toRun(w, n, label));
  // The floor has no scheduler to fail over.
  const kill = WORKLOADS.includes('kill') && run.def.type !== 'floor' && toRun('kill', n, label);
  if (normal.length === 0 && !kill) return;
  const planned = [...normal, ...(kill ? ['kill'] : [])];
  const expected = estimate(run, n, planned);
  if (Date.now() - started + expected > BUDGET_MS) {
    const why = skippedWhy(key);
    console.log(`  skipped ${key} (about ${(expected / 1000).toFixed(0)} s): ${why}`);
    for (const w of planned) notes.set(cellKey(workloadName(w, n), label), why);
    return;
  }
  const t = Date.now();
  let measured = 0;
  let session: Session | undefined = await spent.time(label, 'starting', () => run.start(1));
  let owes = false;
  const warm = async (s: Session) => {
    const f = await runWorkload(run, s, KILL_WARMUP, 'instant', { capMs: 20_000, warmup: true });
    if (f.heard < f.n) console.warn(`  ${label}: a warm-up of ${f.n} heard ${f.heard} within 20 s`);
  };
  /** Fresh processes when a capped round left a backlog. */
  const clean = async () => {
    if (!owes) return;
    await spent.time(label, 'stopping', () => session!.stop());
    session = undefined;
    await spent.time(label, 'purging after a cap', () => run.purge());
    owes = false;
    session = await spent.time(label, 'starting', () => run.start(1));
    await warm(session);
  };
  const measure = async (workload: string, size: number, shape: 'instant' | 'spread', withKill = false) => {
    const c = Date.now();
    const f = await runWorkload(run, session!, size, shape, { kill: withKill });
    cellTook.set(cellKey(workload, label), Date.now() - c);
    measured += Date.now() - c;
    record(workload, label, f);
    console.log(`  ${label}, ${workload}: ${show(f)} [${((Date.now() - c) / 1000).toFixed(1)} s]`);
    if (f.heard < f.n) owes = true;
  };
  try {
    if (normal.length > 0) {
      // The cold figure comes from the 1,000 visits; before 10,000 a smaller warm-up does.
      if (n === WARMUP) await measure(workloadName('cold', WARMUP), WARMUP, 'instant');
      else await warm(session);
      for (const w of normal) {
        await clean();
        await measure(workloadName(w, n), n, w as 'instant' | 'spread');
      }
    }
    // With one worker capped at one instant in this very visit, the SIGKILL's "> 60 s" is certain now.
    if (kill && (normal.length === 0 || toRun('kill', n, label))) {
      await clean();
      await spent.time(label, 'starting', () => session!.addOne());
      await warm(session);
      await measure(workloadName('kill', n), n, 'instant', true);
    }
  } finally {
    await spent.time(label, 'stopping', () => session?.stop() ?? Promise.resolve());
    if (owes) await spent.time(label, 'purging after a cap', () => run.purge());
  }
  const took = Date.now() - t;
  visitOverhead.set(key, took - measured);
  console.log(`  (${label} at ${n1(n)}: ${(took / 1000).toFixed(1)} s, of which ${((took - measured) / 1000).toFixed(1)} s starts, warm-ups, stops and purges)`);
}

// ---------------------------------------------------------------------------------------------------
// Fan-out (bench/peers/fanout.ts), within the budget
// ---------------------------------------------------------------------------------------------------
const fanout = { deadline: [] as FanoutFigures[], peer: [] as FanoutFigures[] };
const fanoutTook = new Map<string, number>();
async function fanoutSession(kind: 'deadline' | 'peer', deadlineRun: SystemRun, peerRun: SystemRun): Promise<void> {
  const key = `fanout:${kind}`;
  if (Date.now() - started + (fanoutTook.get(key) ?? 0) > BUDGET_MS) {
    return void notes.set(key, fanoutTook.has(key) ? 'later rounds skipped to stay within the budget' : 'not run: would not have ended within the budget');
  }
  const t = Date.now();
  fanout[kind].push(await fanoutRound(kind, deadlineRun, peerRun, FANOUT, FANOUT_PROCESSES));
  fanoutTook.set(key, Date.now() - t);
  spent.add(kind === 'deadline' ? 'fan-out: Deadline' : 'fan-out: peer', 'the whole round', Date.now() - t);
}

// ---------------------------------------------------------------------------------------------------
// The tables
// ---------------------------------------------------------------------------------------------------
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const workloads: string[] = [];
for (const n of SIZES) {
  if (WORKLOADS.includes('instant')) workloads.push(workloadName('instant', n));
  if (n === WARMUP && (WORKLOADS.includes('instant') || WORKLOADS.includes('spread'))) workloads.push(workloadName('cold', n));
  if (WORKLOADS.includes('spread')) workloads.push(workloadName('spread', n));
  if (WORKLOADS.includes('kill')) workloads.push(workloadName('kill', n));
}
/** The figure a workload is judged by: max lateness with a SIGKILL (the issue's), p99 otherwise. */
const metricOf = (workload: string) => (workload.endsWith('SIGKILL') ? 'max' : 'p99');

function tables(loadStart: number[], loadEnd: number[]) {
  const lines: string[] = [];
  const ranAt = new Date(started).toISOString().slice(0, 16).replace('T', ' ');
  const minutes = ((Date.now() - started) / 60_000).toFixed(1);
  lines.push(
    `Ran ${ranAt} UTC for ${minutes} minutes, ${ROUNDS} round${ROUNDS === 1 ? '' : 's'} of each system (alternating); machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ` +
      `${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; load average ${loadStart.map((x) => x.toFixed(1)).join(' / ')} at the start, ${loadEnd.map((x) => x.toFixed(1)).join(' / ')} at the end (1 / 5 / 15 min).`,
    '',
    'Lateness in ms, received by the client − end time, over all the round’s auctions: p50 / p99 / max, the median of the rounds, and the judged figure’s best – worst round. Capped at 60 s. ' +
      'Beside it, in the database, `ended_at − end_time` p99 (median of the rounds): when the ending statement began; the rest of the lateness comes after it (the statement, commit, publication, delivery).',
    '',
    '| workload | system | rounds | p50 / p99 / max | judged figure, best – worst | ended_at − end_time p99 | heard |',
    '|---|---|---|---|---|---|---|',
  );
  const comparison: string[] = [];
  for (const workload of workloads) {
    const metric = metricOf(workload);
    const byMedian = new Map<string, number>();
    for (const def of defs) {
      const fs = cells.get(cellKey(workload, def.label)) ?? [];
      const note = notes.get(cellKey(workload, def.label));
      if (fs.length === 0) {
        const certain = certainCells.has(cellKey(workload, def.label)) ? `${metric} > 60 s, certain` : '–';
        if (note || !(workload.endsWith('SIGKILL') && def.type === 'floor')) lines.push(`| ${workload} | ${def.label} | 0 | – | ${certain} | – | ${note ?? 'not run'} |`);
        continue;
      }
      const judged = fs.map((f) => f[metric]);
      byMedian.set(def.label, median(judged));
      const heard = fs.map((f) => `${f.heard}/${f.n}`).join(', ');
      const late = fs.some((f) => f.slackMs < 0) ? '; scheduling ran past the due time in a round' : '';
      lines.push(
        `| ${workload} | ${def.label} | ${fs.length} | ${fmtMs(median(fs.map((f) => f.p50)))} / ${fmtMs(median(fs.map((f) => f.p99)))} / ${fmtMs(median(fs.map((f) => f.max)))} | ` +
          `${metric} ${fmtMs(Math.min(...judged))} – ${fmtMs(Math.max(...judged))} | ${fmtMs(median(fs.map((f) => f.endedP99)))} | ${heard}${note ? `; ${note}` : ''}${late} |`,
      );
    }
    const deadline = byMedian.get('Deadline');
    const peers = defs.filter((d) => d.type === 'peer' && byMedian.has(d.label)).sort((a, b) => byMedian.get(a.label)! - byMedian.get(b.label)!);
    if (deadline !== undefined && peers.length > 0) {
      comparison.push(comparisonRow({ workload, metric, deadlineMs: deadline, bestPeer: peers[0].label, bestPeerMs: byMedian.get(peers[0].label)!, floorMs: byMedian.get('floor') ?? NaN }));
    }
  }
  lines.push('', 'Deadline against the best peer and the floor (medians of the rounds):', '', COMPARISON_HEADER, '|---|---|---|---|---|---|---|---|', ...comparison);
  if (fanout.deadline.length + fanout.peer.length > 0) {
    const row = (label: string, fs: FanoutFigures[], note = '') =>
      `| ${label} | ${fs.length} | ${fs.map((f) => fmtMs(f.lastMs)).join(' / ')} | ${fs.length ? fmtMs(median(fs.map((f) => f.lastMs))) : '–'} | ${fs.map((f) => f.rssPerSubscriptionKb.toFixed(1)).join(' / ')} | ` +
      `${fs.map((f) => (f.connectMs / 1000).toFixed(0)).join(' / ')} | ${fs.map((f) => `${f.heard}${f.duplicates ? ` (+${f.duplicates} copies)` : ''}`).join(', ')}${note ? `; ${note}` : ''} |`;
    lines.push(
      '',
      `Fan-out: one auction end to ${n1(FANOUT)} graphql-ws subscribers (${FANOUT_PROCESSES} client processes), the server a process of its own:`,
      '',
      '| server | rounds | last subscriber reached after the end, per round (ms) | median (ms) | RSS per idle subscription, per round (KB) | all connected and subscribed in, per round (s) | heard |',
      '|---|---|---|---|---|---|---|',
      row('Deadline', fanout.deadline, notes.get('fanout:deadline')),
      row(FANOUT_PEER_DEF.label, fanout.peer, notes.get('fanout:peer')),
    );
  }
  lines.push('', 'Settings:', '', ...defs.map((d) => `- ${d.label}: ${d.settings}.`));
  if (FANOUT > 0) lines.push(`- fan-out peer: ${FANOUT_PEER_DEF.settings}.`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------------
const loadStart = loadavg();
console.log(`bench:peers: ${defs.map((d) => d.label).join(', ')}; sizes ${SIZES.join(', ')}; workloads ${WORKLOADS.join(', ')}; fan-out ${FANOUT}; ${ROUNDS} round(s); budget ${BUDGET_MS / 60_000} min`);
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; load average ${loadStart.map((x) => x.toFixed(2)).join(' ')}`);

// Each system's database, made for the invocation and dropped at its end (or on the way out). The
// benchmark's own connections to them are pools that close when idle: 12 databases, and the systems
// under test need PostgreSQL's connections more.
const ADMIN_URL = process.env.BENCH_ADMIN_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const databases = new Map<string, pg.Pool>();
async function makeDatabase(): Promise<{ url: string; pool: pg.Pool }> {
  const name = `deadline_bench_peers_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`create database "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString(), max: 2, idleTimeoutMillis: 1000 });
  pool.on('error', () => undefined);
  databases.set(name, pool);
  return { url: url.toString(), pool };
}
async function dropDatabases(): Promise<void> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect().catch(() => undefined);
  for (const [name, pool] of databases) {
    await pool.end().catch(() => undefined);
    await admin.query(`drop database if exists "${name}" with (force)`).catch((e: Error) => console.error(`  could not drop ${name}: ${e.message}`));
    databases.delete(name);
  }
  await admin.end().catch(() => undefined);
}

try {
  const needsDeadline = defs.some((d) => d.type === 'deadline');
  const fanoutOn = FANOUT > 0 && needsDeadline;
  {
    for (const def of defs) {
      const { url, pool } = await makeDatabase();
      runs.push(new SystemRun(def, url, pool, `bench-peers:${runId}:${def.key}`));
    }
    if (fanoutOn) {
      const { url, pool } = await makeDatabase();
      fanoutPeerRun = new SystemRun(FANOUT_PEER_DEF, url, pool, `bench-peers:${runId}:fanout-peer`);
    }
    for (const run of [...runs, ...(fanoutPeerRun ? [fanoutPeerRun] : [])]) await run.prepare();
    try {
      // Phases in the order of what matters most, so that the budget, when reached, cuts the least
      // decisive rounds: one round of the 1,000 workloads and of the fan-out, the other rounds of the
      // 1,000 ones (the README's figure), one round of the 10,000 ones, then every other round.
      const deadlineRun = runs.find((r) => r.def.type === 'deadline');
      const sizes = [...SIZES].sort((x, y) => x - y);
      const what = [
        ['instant', 'at one instant'],
        ['spread', 'over 1 s'],
        ['kill', 'one of two SIGKILLed'],
      ]
        .filter(([w]) => WORKLOADS.includes(w))
        .map(([, name]) => name)
        .join(', ');
      type Phase = { name: string; round: number; rank: number; n?: number; fanout?: boolean };
      const phases: Phase[] = Array.from({ length: ROUNDS }, (_, round): Phase[] => {
        const later = round === 0 ? 0 : 1;
        return [
          ...sizes.filter((n) => n <= WARMUP).map((n) => ({ name: `${n1(n)}: ${what}`, round, rank: [0, 2][later], n })),
          ...(fanoutOn && deadlineRun ? [{ name: 'fan-out', round, rank: [1, 4][later], fanout: true }] : []),
          ...sizes.filter((n) => n > WARMUP).map((n) => ({ name: `${n1(n)}: ${what}`, round, rank: [3, 5][later], n })),
        ];
      })
        .flat()
        // Stable: within a rank, rounds in order.
        .sort((a, b) => a.rank - b.rank || a.round - b.round);
      for (const phase of phases) {
        const t = Date.now();
        console.log(`${phase.name}, round ${phase.round + 1} of ${ROUNDS} (${((t - started) / 60_000).toFixed(1)} min in; load average ${loadavg()[0].toFixed(1)})`);
        if (phase.n !== undefined) {
          // Each round starts one system further on, so no system always follows the same one.
          const order = runs.map((_, i) => runs[(i + phase.round) % runs.length]);
          for (const run of order) await visit(run, phase.n);
        }
        if (phase.fanout && deadlineRun) {
          const kinds = phase.round % 2 === 0 ? (['deadline', 'peer'] as const) : (['peer', 'deadline'] as const);
          for (const kind of kinds) await fanoutSession(kind, deadlineRun, fanoutPeerRun!);
        }
        spent.phase(`${phase.name}, round ${phase.round + 1}`, Date.now() - t);
      }
    } finally {
      killChildren();
      for (const run of [...runs, ...(fanoutPeerRun ? [fanoutPeerRun] : [])]) await run.cleanup(redis).catch(() => undefined);
      await dropDatabases();
    }
  }
} catch (e) {
  if (!aborting) console.error(e);
  await abort('the benchmark failed', 1);
}

const text = tables(loadStart, loadavg());
console.log(`\n${spent.lines().join('\n')}\n\n${text}\n`);
if (WRITE) {
  const docsPath = new URL('../../../docs/benchmarks.md', import.meta.url);
  const readmePath = new URL('../../../README.md', import.meta.url);
  const docs = replaceBetween(readFileSync(docsPath, 'utf8'), DOC_START, DOC_END, text);
  writeFileSync(docsPath, docs);
  const headline = parseHeadline(text, HEADLINE_WORKLOAD);
  if (headline) {
    writeFileSync(readmePath, replaceBetween(readFileSync(readmePath, 'utf8'), README_START, README_END, readmeLine(headline)));
    console.log(`README: ${readmeLine(headline)}`);
  }
  console.log('wrote docs/benchmarks.md and README.md');
} else {
  console.log('(not written to docs/benchmarks.md: only the whole matrix is, without --no-write)');
}
redis.disconnect();
process.exit(0);

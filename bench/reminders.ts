/**
 * npm run bench:reminders — the daily VIP reminders at 1,000,000 members (docs/benchmarks.md,
 * "VIP reminders"). In a database of its own (created and dropped here); talks only to 127.0.0.1.
 *
 * Seeded with SQL (generate_series): N users and N VIP memberships; every 100th member (user ids
 * ending in 00) is a lifetime member (is_lifetime, expires_at null), the others' expires_at are spread
 * evenly over [now − 10 days, now + 10 days) and `active` says whether that is still ahead, as the
 * lapse deadline would have left it. Then the server starts in this process (startApp, default
 * configuration, ENABLE_CRON=false so neither the 09:00 run nor the start-up catch-up runs, LOG_LEVEL
 * warn) and one daily run is timed:
 *
 *   new VipReminders(app.services.tx, app.services.messages, app.services.log, config.appTimezone,
 *                    config.vip.reminderBatchSize, () => new Date()).run()
 *
 * Measured: wall time; members looked at and messages written (checked against counts computed in SQL
 * from the seeded expiries: expiry day − today in APP_TIMEZONE in 3, 1, 0, −1…−7, and the body of each
 * message against its milestone); the outbox rows written and published; the peak RSS of this process
 * (which is the server's) above its RSS before the run, sampled every 100 ms after a GC; and where the
 * time went: every SQL statement the server sends during the run is timed by kind (a timer around
 * pg.Client#query of MikroORM's copy of `pg`), beside each page's transaction, `sendSelected` (the
 * page's one statement: members, milestones, messages and outbox rows) and the Redis publish. Then a
 * second run for the same day: its time, and that it writes nothing.
 *
 * After the main run: EXPLAIN (ANALYZE, BUFFERS) of the exact page statement the server sent (its text
 * and parameters as captured), for the first page and a page in the middle, rolled back; every
 * milestone is written by then, so it is the second run's case.
 *
 * --sweep=1000,20000: then, for each batch size, the written tables are truncated and a first and a
 * second run are timed again on the same members (RSS of these runs is measured the same way, on a heap
 * that has already held the earlier runs).
 *
 * Options: --members=1000000 --batch=2000 --sweep=1000,20000 (--sweep= for none) --max-minutes=20
 */
import { createRequire } from 'node:module';
import { cpus, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pg from 'pg';
import type { App } from '../src/app.js';
import type { Transactions } from '../src/db/transactions.js';
import type { MessageSender } from '../src/services/vip-reminders.js';
import { benchConfig, pct, sleep, stopAfter, withDatabase } from './support.js';

const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;

const MEMBERS = Number(arg('members', '1000000'));
const BATCH = Number(arg('batch', '2000'));
const SWEEP = arg('sweep', '1000,20000')
  .split(',')
  .filter((s) => s.trim() !== '')
  .map(Number);
const MAX_MS = Number(arg('max-minutes', '20')) * 60_000;
const SPREAD_DAYS = 10; // expiries over now ± this
const LIFETIME_EVERY = 100; // every 100th member is a lifetime member

/** Targets (docs/benchmarks.md). */
const TARGET_RUN_MS = 60_000;
const TARGET_RSS_MB = 300;
const TARGET_SECOND_MS = 5_000;

const MB = 1024 * 1024;
const secs = (ms: number) => (ms / 1000).toFixed(1);
const mb = (bytes: number) => Math.round(bytes / MB);
const median = (xs: number[]) => pct([...xs].sort((a, b) => a - b), 50);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

// ---------------------------------------------------------------------------------------------
// Instruments: statements by kind, timers around methods, RSS sampling
// ---------------------------------------------------------------------------------------------

type StatementKind =
  | 'page statement (members, milestones, messages, outbox)'
  | 'page select (vip_memberships)'
  | 'insert vip_reminders (on conflict do nothing)'
  | 'insert messages'
  | 'insert outbox_events'
  | 'begin / commit'
  | 'mark published (outbox_events)'
  | 'other';

const KINDS: StatementKind[] = [
  'page statement (members, milestones, messages, outbox)',
  'page select (vip_memberships)',
  'insert vip_reminders (on conflict do nothing)',
  'insert messages',
  'insert outbox_events',
  'begin / commit',
  'mark published (outbox_events)',
  'other',
];

function kindOf(text: string): StatementKind {
  const t = text.trimStart().toLowerCase();
  if (t.startsWith('with') && t.includes('from vip_memberships') && t.includes('insert into vip_reminders')) return 'page statement (members, milestones, messages, outbox)';
  if (t.startsWith('select') && t.includes('from vip_memberships')) return 'page select (vip_memberships)';
  if (t.startsWith('insert into vip_reminders')) return 'insert vip_reminders (on conflict do nothing)';
  if (t.startsWith('insert into messages')) return 'insert messages';
  if (t.startsWith('insert into outbox_events')) return 'insert outbox_events';
  if (/^(begin|commit|start transaction|rollback)\b/.test(t)) return 'begin / commit';
  if (t.includes('outbox_events') && t.includes('published_at') && t.startsWith('update')) return 'mark published (outbox_events)';
  if (t.startsWith('set local synchronous_commit')) return 'mark published (outbox_events)';
  return 'other';
}

interface Captured {
  text: string;
  values: unknown[];
}

class StatementTimer {
  totals = new Map<StatementKind, { n: number; ms: number; max: number }>();
  pageStatements: Captured[] = [];
  private restore: (() => void) | undefined;

  /** Times every statement of the server's pg clients (not `own`, the benchmark's). */
  start(own: pg.Client): void {
    this.totals = new Map(KINDS.map((k) => [k, { n: 0, ms: 0, max: 0 }]));
    this.pageStatements = [];
    const mikroPg = createRequire(fileURLToPath(import.meta.resolve('@mikro-orm/postgresql')))('pg') as typeof pg;
    const protos = [...new Set([pg.Client.prototype, mikroPg.Client.prototype])] as unknown as Array<{ query: (...a: unknown[]) => unknown }>;
    const originals = protos.map((p) => p.query);
    // Arrows, so the patched `query` (whose `this` is a pg client) reaches this timer's fields.
    const capture = (statement: Captured) => this.pageStatements.push(statement);
    const totalOf = (kind: StatementKind) => this.totals.get(kind)!;
    protos.forEach((proto, i) => {
      const original = originals[i];
      proto.query = function (this: unknown, ...a: unknown[]) {
        const result = original.apply(this, a);
        if (this === own || !result || typeof (result as Promise<unknown>).then !== 'function') return result;
        const first = a[0] as string | { text?: string; values?: unknown[] };
        const text = typeof first === 'string' ? first : (first?.text ?? '');
        const values = (typeof first === 'string' ? a[1] : first?.values) as unknown[] | undefined;
        const kind = kindOf(text);
        if (kind === 'page statement (members, milestones, messages, outbox)') capture({ text, values: values ?? [] });
        const t = performance.now();
        const done = () => {
          const ms = performance.now() - t;
          const s = totalOf(kind);
          s.n++;
          s.ms += ms;
          s.max = Math.max(s.max, ms);
        };
        (result as Promise<unknown>).then(done, done);
        return result;
      };
    });
    this.restore = () => protos.forEach((proto, i) => (proto.query = originals[i]!));
  }

  stop(): void {
    this.restore?.();
    this.restore = undefined;
  }
}

/** A timer around one instance's async method; returns the function that puts it back. */
function timeMethod<T extends object>(target: T, method: keyof T, into: number[]): () => void {
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
 * Samples this process's RSS every 100 ms from a GC'd baseline; `stop` gives the peak above it, the V8
 * heap (total and used) and off-heap memory (external, array buffers) at their peaks, and the RSS after
 * a GC once the run is over (what the run left behind).
 */
function rssSampler() {
  gc();
  const m0 = process.memoryUsage();
  const before = m0.rss;
  let peak = before;
  let heapTotal = m0.heapTotal;
  let heapUsed = m0.heapUsed;
  let external = m0.external;
  let samples = 0;
  const sample = () => {
    const m = process.memoryUsage();
    peak = Math.max(peak, m.rss);
    heapTotal = Math.max(heapTotal, m.heapTotal);
    heapUsed = Math.max(heapUsed, m.heapUsed);
    external = Math.max(external, m.external);
    samples++;
  };
  const timer = setInterval(sample, 100);
  return {
    before,
    stop() {
      clearInterval(timer);
      sample();
      const after = process.memoryUsage().rss;
      gc();
      const m1 = process.memoryUsage();
      return {
        before,
        peak,
        after,
        extra: peak - before,
        samples,
        heapTotalBefore: m0.heapTotal,
        heapTotalPeak: heapTotal,
        heapUsedBefore: m0.heapUsed,
        heapUsedPeak: heapUsed,
        externalBefore: m0.external,
        externalPeak: external,
        afterGc: m1.rss,
        heapUsedAfterGc: m1.heapUsed,
      };
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Seeding and checks
// ---------------------------------------------------------------------------------------------

async function migrateSchema(url: string): Promise<void> {
  const { initOrm, migrate } = await import('../src/db/orm.js');
  const orm = await initOrm(url);
  await migrate(orm, url);
  await orm.close();
}

/** Users and memberships as the rest of the server would have left them. Returns the seed's "now" (ms). */
async function seed(db: pg.Client): Promise<{ t0: number; ms: number }> {
  const started = Date.now();
  const t0 = started;
  await db.query(`insert into users (id, role) select 'bench-v' || lpad(g::text, 7, '0'), 'user' from generate_series(1, $1::int) g`, [MEMBERS]);
  await db.query(
    `insert into vip_memberships (user_id, level, expires_at, is_lifetime, active, updated_at)
     select 'bench-v' || lpad(g::text, 7, '0'), 1 + g % 3, e.at, e.at is null, e.at is null or e.at > to_timestamp($2::float8 / 1000),
            to_timestamp($2::float8 / 1000)
       from generate_series(1, $1::int) g,
            lateral (select case when g % ${LIFETIME_EVERY} = 0 then null
                                 else to_timestamp(($2::float8 - $3::float8 + (g - 1) * (2 * $3::float8) / $1::int) / 1000) end as at) e`,
    [MEMBERS, t0, SPREAD_DAYS * 86_400_000],
  );
  await db.query('vacuum (analyze) users, vip_memberships');
  await db.query('checkpoint');
  return { t0, ms: Date.now() - started };
}

interface Expected {
  today: string;
  /** Non-lifetime members whose expiry day is within [today − 7, today + 3]. */
  window: number;
  /** Of them, those with a milestone today (expiry day − today in 3, 1, 0, −1…−7). */
  due: number;
  byDays: Map<number, number>;
  lifetime: number;
}

/** Computed from the seeded expiries alone, in SQL, in APP_TIMEZONE. */
async function expected(db: pg.Client, tz: string): Promise<Expected> {
  const { rows } = await db.query<{ today: string; d: number | null; n: number }>(
    `with t as (select (now() at time zone $1)::date as today)
     select to_char(t.today, 'YYYY-MM-DD') as today, ((m.expires_at at time zone $1)::date - t.today) as d, count(*)::int as n
       from vip_memberships m, t
      where m.is_lifetime or ((m.expires_at at time zone $1)::date - t.today) between -7 and 3
      group by 1, 2`,
    [tz],
  );
  const byDays = new Map<number, number>();
  let lifetime = 0;
  for (const r of rows) {
    if (r.d === null) lifetime += r.n;
    else byDays.set(r.d, r.n);
  }
  const window = [...byDays.values()].reduce((a, b) => a + b, 0);
  const due = [...byDays.entries()].filter(([d]) => d !== 2).reduce((a, [, n]) => a + n, 0);
  return { today: rows[0]?.today ?? '', window, due, byDays, lifetime };
}

interface Written {
  messages: number;
  reminders: number;
  outbox: number;
  unpublished: number;
}

async function written(db: pg.Client): Promise<Written> {
  const { rows } = await db.query(`select
      (select count(*) from messages)::int as messages,
      (select count(*) from vip_reminders)::int as reminders,
      (select count(*) from outbox_events where topic like 'MESSAGE_RECEIVED:%')::int as outbox,
      (select count(*) from outbox_events where published_at is null)::int as unpublished`);
  return rows[0] as Written;
}

interface Check {
  ok: boolean;
  /** Milestones written per days-before, and what SQL expected. */
  perMilestone: Array<{ daysBefore: number; written: number; expected: number }>;
  wrongBody: number;
  wrongKind: number;
  messagesWithoutReminder: number;
  lifetimeMessaged: number;
  usersTwice: number;
  wrongExpiryDay: number;
}

/** What was written matches the seeded expiries: one message per due member, the right text, no more. */
async function check(db: pg.Client, tz: string, day: string, exp: Expected): Promise<Check> {
  const { rows: per } = await db.query<{ d: number; n: number }>(`select days_before as d, count(*)::int as n from vip_reminders group by 1`);
  const got = new Map(per.map((r) => [r.d, r.n]));
  const milestones = [3, 1, 0, -1, -2, -3, -4, -5, -6, -7];
  const perMilestone = milestones.map((d) => ({ daysBefore: d, written: got.get(d) ?? 0, expected: exp.byDays.get(d) ?? 0 }));
  const stray = [...got.keys()].filter((d) => !milestones.includes(d)).length;
  const {
    rows: [c],
  } = await db.query(
    `select
      (select count(*) from messages m join vip_reminders r using (user_id)
        where m.body <> case when r.days_before = 3 then '您的VIP会员将在3天后到期，请及时续费'
                             when r.days_before = 1 then '您的VIP会员将在明天到期，请及时续费'
                             when r.days_before = 0 then '您的VIP会员今日到期，续费可继续享受VIP权益'
                             else '您的VIP会员已到期' || (-r.days_before) || '天，VIP图标即将隐藏' end)::int as wrong_body,
      (select count(*) from messages where kind <> 'VIP_REMINDER')::int as wrong_kind,
      (select count(*) from messages m where not exists (select 1 from vip_reminders r where r.user_id = m.user_id))::int as without_reminder,
      (select count(*) from messages m join vip_memberships v using (user_id) where v.is_lifetime)::int as lifetime_messaged,
      (select count(*) from (select user_id from messages group by 1 having count(*) > 1) x)::int as users_twice,
      (select count(*) from vip_reminders r join vip_memberships v using (user_id)
        where r.expires_on <> (v.expires_at at time zone $1)::date or r.expires_on - $2::date <> r.days_before or r.sent_on <> $2::date)::int as wrong_expiry_day`,
    [tz, day],
  );
  const result: Check = {
    ok: false,
    perMilestone,
    wrongBody: c.wrong_body,
    wrongKind: c.wrong_kind,
    messagesWithoutReminder: c.without_reminder,
    lifetimeMessaged: c.lifetime_messaged,
    usersTwice: c.users_twice,
    wrongExpiryDay: c.wrong_expiry_day,
  };
  result.ok =
    stray === 0 &&
    perMilestone.every((m) => m.written === m.expected) &&
    result.wrongBody === 0 &&
    result.wrongKind === 0 &&
    result.messagesWithoutReminder === 0 &&
    result.lifetimeMessaged === 0 &&
    result.usersTwice === 0 &&
    result.wrongExpiryDay === 0;
  return result;
}

// ---------------------------------------------------------------------------------------------
// One timed run
// ---------------------------------------------------------------------------------------------

interface Breakdown {
  kind: string;
  n: number;
  totalMs: number;
  maxMs: number;
}

interface TimedRun {
  label: string;
  batch: number;
  day: string;
  ms: number;
  members: number;
  written: number;
  pages: number;
  pageMedianMs: number;
  pageMaxMs: number;
  rss: ReturnType<ReturnType<typeof rssSampler>['stop']>;
  maxRssKb: number;
  tables: Written;
  breakdown: Breakdown[];
  timer: StatementTimer;
}

async function timedRun(app: App, db: pg.Client, label: string, batch: number, day?: string): Promise<TimedRun> {
  const { VipReminders } = await import('../src/services/vip-reminders.js');
  const s = app.services;
  const pageMs: number[] = [];
  const sendMs: number[] = [];
  const publishMs: number[] = [];
  // Timers around the page transactions (to commit; the run's only use of `tx`), sendSelected and the Redis publish.
  const tx = {
    runThenPublish: <T>(work: Parameters<Transactions['runThenPublish']>[0]) =>
      timed(pageMs, () => s.tx.runThenPublish(work as never)) as Promise<{ result: T; published: Promise<void> }>,
  } as unknown as Transactions;
  const messages: MessageSender = { sendSelected: (uow, q) => timed(sendMs, () => s.messages.sendSelected(uow, q)) };
  const untimePublish = timeMethod(s.bus, 'publish', publishMs);
  const reminders = new VipReminders(tx, messages, s.log, s.config.appTimezone, batch, () => new Date());
  const timer = new StatementTimer();
  const rss = rssSampler();
  timer.start(db);
  const started = performance.now();
  let result;
  try {
    result = await reminders.run(day);
  } finally {
    timer.stop();
    untimePublish();
  }
  const ms = performance.now() - started;
  const r = rss.stop();
  const tables = await written(db);
  const breakdown: Breakdown[] = [
    { kind: 'page transaction (whole)', n: pageMs.length, totalMs: sum(pageMs), maxMs: Math.max(0, ...pageMs) },
    ...KINDS.map((k) => ({ kind: k, n: timer.totals.get(k)!.n, totalMs: timer.totals.get(k)!.ms, maxMs: timer.totals.get(k)!.max })),
    { kind: 'MessageService.sendSelected (the page statement + JS)', n: sendMs.length, totalMs: sum(sendMs), maxMs: Math.max(0, ...sendMs) },
    { kind: 'Redis publish (EventBus.publish)', n: publishMs.length, totalMs: sum(publishMs), maxMs: Math.max(0, ...publishMs) },
  ];
  return {
    label,
    batch,
    day: result.day,
    ms,
    members: result.members,
    written: result.written,
    pages: pageMs.length,
    pageMedianMs: median(pageMs),
    pageMaxMs: Math.max(0, ...pageMs),
    rss: r,
    maxRssKb: process.resourceUsage().maxRSS,
    tables,
    breakdown,
    timer,
  };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

async function timed<T>(into: number[], fn: () => Promise<T>): Promise<T> {
  const t = performance.now();
  try {
    return await fn();
  } finally {
    into.push(performance.now() - t);
  }
}

async function explain(db: pg.Client, q: Captured, rollback = false): Promise<string> {
  if (rollback) await db.query('begin');
  try {
    const { rows } = await db.query(`explain (analyze, buffers) ${q.text}`, q.values);
    return rows.map((r) => r['QUERY PLAN']).join('\n');
  } finally {
    if (rollback) await db.query('rollback');
  }
}

/** The captured statement with long parameters shortened, for the report. */
function shown(q: Captured): string {
  const values = q.values.map((v) => {
    const s = JSON.stringify(v);
    return s.length > 120 ? `${s.slice(0, 100)}… (${Array.isArray(v) ? `${v.length} items` : `${s.length} chars`})` : s;
  });
  return `${q.text.replace(/\n\s+/g, '\n  ')}\n-- parameters: ${values.join(', ')}`;
}

// ---------------------------------------------------------------------------------------------

function printRun(r: TimedRun) {
  console.log(
    `  ${r.label}, batch ${r.batch}, day ${r.day}: ${secs(r.ms)} s, ${r.members} members looked at, ${r.written} messages written, ` +
      `${r.pages} pages (median ${r.pageMedianMs.toFixed(0)} ms, max ${r.pageMaxMs.toFixed(0)} ms); RSS ${mb(r.rss.before)} → peak ${mb(r.rss.peak)} MB ` +
      `(+${mb(r.rss.extra)} MB, ${r.rss.samples} samples), after ${mb(r.rss.after)} MB, after a GC ${mb(r.rss.afterGc)} MB; ` +
      `V8 heap total ${mb(r.rss.heapTotalBefore)} → peak ${mb(r.rss.heapTotalPeak)} MB, used ${mb(r.rss.heapUsedBefore)} → peak ${mb(r.rss.heapUsedPeak)} MB ` +
      `(${mb(r.rss.heapUsedAfterGc)} MB after a GC), external ${mb(r.rss.externalBefore)} → peak ${mb(r.rss.externalPeak)} MB; tables: ${JSON.stringify(r.tables)}`,
  );
}

function printBreakdown(r: TimedRun) {
  console.log(`\nWhere the time went: ${r.label}, batch ${r.batch} (${secs(r.ms)} s, ${r.pages} pages)`);
  console.log('| step | count | total s | share of the run | per page ms | max ms |');
  console.log('|---|---|---|---|---|---|');
  for (const b of r.breakdown) {
    if (b.n === 0) continue;
    console.log(
      `| ${b.kind} | ${b.n} | ${secs(b.totalMs)} | ${((100 * b.totalMs) / r.ms).toFixed(0)}% | ${(b.totalMs / Math.max(1, r.pages)).toFixed(1)} | ${b.maxMs.toFixed(0)} |`,
    );
  }
}

async function main(): Promise<void> {
  stopAfter(MAX_MS);

  console.log(
    `Deadline VIP-reminders benchmark: ${MEMBERS} members (1 in ${LIFETIME_EVERY} lifetime, the others expiring evenly over now ± ${SPREAD_DAYS} days), ` +
      `VIP_REMINDER_BATCH_SIZE ${BATCH}, sweep ${SWEEP.join(',') || 'none'}`,
  );
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
  const startedAll = Date.now();
  const { startApp } = await import('../src/app.js');
  const { pino } = await import('pino');

  await withDatabase(async (databaseUrl, db) => {
    await migrateSchema(databaseUrl);
    const seeded = await seed(db);
    const {
      rows: [size],
    } = await db.query(
      `select pg_table_size('vip_memberships') / 1048576.0 as table_mb,
              pg_relation_size('vip_memberships_expires_at_active_idx') / 1048576.0 as index_mb, version() as pg`,
    );
    console.log(
      `seeded ${MEMBERS} users and memberships in ${secs(seeded.ms)} s (vacuum analyze and checkpoint included); ` +
        `vip_memberships ${Math.round(Number(size.table_mb))} MB, vip_memberships_expires_at_active_idx ${Math.round(Number(size.index_mb))} MB; ${size.pg}`,
    );

    const config = benchConfig(databaseUrl, { ENABLE_CRON: 'false', VIP_REMINDER_BATCH_SIZE: String(BATCH) });
    const startStarted = Date.now();
    const app: App = await startApp(config, { log: pino({ level: 'warn' }) });
    console.log(`startApp took ${Date.now() - startStarted} ms (ENABLE_CRON=false, APP_TIMEZONE ${config.appTimezone})`);
    // Let start-up recovery's after-effects (wake-ups armed, outbox) settle before measuring.
    await sleep(2000);
    const tz = config.appTimezone;

    try {
      const exp = await expected(db, tz);
      console.log(
        `expected (SQL, ${tz}, today ${exp.today}): ${exp.window} members with an expiry day in [today − 7, today + 3], ` +
          `${exp.due} of them with a milestone today; ${exp.lifetime} lifetime members`,
      );

      console.log('running the first run ...');
      const first = await timedRun(app, db, 'first run', config.vip.reminderBatchSize);
      printRun(first);
      const firstCheck = await check(db, tz, first.day, exp);
      console.log(`  check: ${JSON.stringify(firstCheck)}`);

      console.log('running a second run for the same day ...');
      const second = await timedRun(app, db, 'second run, same day', config.vip.reminderBatchSize, first.day);
      printRun(second);

      // The exact page statement, first page and one from the middle, rolled back (everything is written by now).
      const plans: Array<{ name: string; q: Captured; plan: string }> = [];
      const pages = first.timer.pageStatements;
      if (pages[0]) plans.push({ name: 'page statement, first page (rolled back)', q: pages[0], plan: await explain(db, pages[0], true) });
      const mid = pages[Math.floor(pages.length / 2)];
      if (mid && pages.length > 1)
        plans.push({ name: `page statement, page ${Math.floor(pages.length / 2) + 1} of ${pages.length} (rolled back)`, q: mid, plan: await explain(db, mid, true) });

      const sweep: Array<{ first: TimedRun; second: TimedRun; ok: boolean }> = [];
      for (const batch of SWEEP) {
        await db.query('truncate vip_reminders, messages, outbox_events restart identity');
        await db.query('vacuum (analyze) vip_reminders, messages, outbox_events');
        await db.query('checkpoint');
        console.log(`running batch ${batch}: a first and a second run ...`);
        const f = await timedRun(app, db, 'first run', batch, first.day);
        printRun(f);
        const c = await check(db, tz, f.day, exp);
        const s2 = await timedRun(app, db, 'second run, same day', batch, first.day);
        printRun(s2);
        sweep.push({ first: f, second: s2, ok: c.ok && f.written === exp.due && s2.written === 0 });
      }

      // ---------------------------------------------------------------------------------------
      const runs = [first, second, ...sweep.flatMap((s) => [s.first, s.second])];
      console.log(`\nResults (${MEMBERS} members, ${exp.lifetime} lifetime; SQL expects ${exp.window} looked at and ${exp.due} messages on ${exp.today}):`);
      console.log('| run | batch | wall s | members looked at | messages written | outbox rows (unpublished) | pages | page ms median / max | RSS before MB | peak RSS above before MB |');
      console.log('|---|---|---|---|---|---|---|---|---|---|');
      for (const r of runs) {
        console.log(
          `| ${r.label} | ${r.batch} | ${secs(r.ms)} | ${r.members} | ${r.written} | ${r.tables.outbox} (${r.tables.unpublished}) | ${r.pages} | ` +
            `${r.pageMedianMs.toFixed(0)} / ${r.pageMaxMs.toFixed(0)} | ${mb(r.rss.before)} | ${mb(r.rss.extra)} |`,
        );
      }
      console.log('\nMilestones written (first run) vs expected from SQL:');
      console.log(`| days before expiry | ${firstCheck.perMilestone.map((m) => m.daysBefore).join(' | ')} |`);
      console.log(`|---|${firstCheck.perMilestone.map(() => '---').join('|')}|`);
      console.log(`| written | ${firstCheck.perMilestone.map((m) => m.written).join(' | ')} |`);
      console.log(`| expected | ${firstCheck.perMilestone.map((m) => m.expected).join(' | ')} |`);
      console.log(
        `checks: wrong body ${firstCheck.wrongBody}, wrong kind ${firstCheck.wrongKind}, messages without a milestone row ${firstCheck.messagesWithoutReminder}, ` +
          `lifetime members messaged ${firstCheck.lifetimeMessaged}, users messaged twice ${firstCheck.usersTwice}, milestone rows with a wrong expiry day ${firstCheck.wrongExpiryDay}; ` +
          `process maxRSS ${Math.round(first.maxRssKb / 1024)} MB after the first run`,
      );
      for (const r of runs) printBreakdown(r);
      for (const p of plans) console.log(`\n${p.name}:\n${shown(p.q)}\n${p.plan}`);

      console.log('\nTargets:');
      const verdict = (ok: boolean) => (ok ? 'met' : 'MISSED');
      console.log(`  one run < ${TARGET_RUN_MS / 1000} s: ${secs(first.ms)} s → ${verdict(first.ms < TARGET_RUN_MS)}`);
      console.log(`  < ${TARGET_RSS_MB} MB extra RSS: +${mb(first.rss.extra)} MB → ${verdict(first.rss.extra < TARGET_RSS_MB * MB)}`);
      console.log(`  second run < ${TARGET_SECOND_MS / 1000} s: ${secs(second.ms)} s → ${verdict(second.ms < TARGET_SECOND_MS)}`);
      console.log(`  second run writes nothing: ${second.written} written, tables ${JSON.stringify(second.tables)} → ${verdict(second.written === 0 && second.tables.messages === first.tables.messages && second.tables.outbox === first.tables.outbox && second.tables.reminders === first.tables.reminders)}`);
      const correct = firstCheck.ok && first.written === exp.due && first.members === exp.window && first.tables.messages === exp.due && first.tables.outbox === exp.due && first.day === exp.today;
      console.log(`  messages = members with a milestone today (SQL), each once with its text, none to lifetime members: ${verdict(correct)}`);
      for (const s of sweep) if (!s.ok) console.log(`  !! batch ${s.first.batch}: the written messages do not match the expected ones`);
    } finally {
      await app.stop();
    }
  });
  console.log(`\ntotal ${secs(Date.now() - startedAll)} s`);
}

await main();
process.exit(0);

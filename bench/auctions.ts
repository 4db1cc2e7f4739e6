/**
 * npm run bench:auctions — N auctions ending, watched by graphql-ws clients (in a worker thread:
 * bench/clients.ts) subscribed to `auctionEnded`; lateness = event received − endTime. Two shapes:
 * `spread` (the N ends spread over one second) runs Deadline's design (one wake-up per kind, the table
 * is the queue) and, in the same run, the naive design (one Agenda job per auction, Agenda's defaults);
 * `instant` (all N at the same round second, as auction houses end lots) runs Deadline's design with 1
 * and with 10 watchers. Talks only to 127.0.0.1.
 * Options: --sizes=1000,10000 --clients=10 --designs=deadline,naive --shapes=spread,instant --instant-clients=1,10
 *   --lanes=N, --batch=N (AUCTION_END_LANES, AUCTION_END_BATCH_SIZE for Deadline's design; the server's
 *   defaults when not given)
 *   --warmup=N (`instant`: N auctions end at an instant first, unmeasured, so the measured round meets a
 *   server that has been running, as in production; default 1000, 0 for a server just started)
 */
import { cpus, totalmem } from 'node:os';
import { Agenda } from 'agenda';
import { PostgresBackend } from '@agendajs/postgres-backend';
import { Worker } from 'node:worker_threads';
import pg from 'pg';
import { pino } from 'pino';
import { startApp, type App } from '../src/app.js';
import { signToken, tokenKeys } from '../src/auth.js';
import { Auction } from '../src/entities/Auction.js';
import { auctionWire } from '../src/events/types.js';
import { AUCTION_END } from '../src/jobs/auction-end.js';
import { countStatements, cpuMeter, databaseName, type CpuSample } from './measure.js';
import { benchConfig, pct, withDatabase } from './support.js';

const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const SIZES = arg('sizes', '1000,10000').split(',').map(Number);
const CLIENTS = Number(arg('clients', '10'));
type Design = 'deadline' | 'naive';
const DESIGNS = arg('designs', 'deadline,naive').split(',') as Design[];
type Shape = 'spread' | 'instant';
const SHAPES = arg('shapes', 'spread,instant').split(',') as Shape[];
const INSTANT_CLIENTS = arg('instant-clients', '1,10').split(',').map(Number);
const LANES = arg('lanes', '');
const BATCH = arg('batch', '');
/** `instant` only: auctions ending at one instant first, unmeasured (a server that has been running); 0 measures a cold one. */
const WARMUP = Number(arg('warmup', '1000'));
const LEAD_MS = 4000; // time between the inserts' end and the first endTime
const TIMEOUT_MS = 120_000;


interface Result {
  design: Design;
  shape: Shape;
  clients: number;
  n: number;
  setupMs: number;
  heard: number;
  duplicates: number;
  /** The first (watcher, auction) pair heard: when delivery began. */
  min: number;
  p50: number;
  p99: number;
  max: number;
  lastAnnouncedAfterLastEndMs: number;
  ended: number;
  /** Server side: ended_at − end_time. */
  endedP99: number;
  endedMax: number;
  /** From 20 ms before the first endTime until every watcher heard every end: CPU seconds by process, and SQL statements sent. */
  window: CpuSample & { statements: number };
}

async function run(design: Design, n: number, shape: Shape, clients: number): Promise<Result> {
  return withDatabase(async (databaseUrl) => {
    // The naive design must not be helped by Deadline's safety sweep.
    // The watchers share one user's token: WS_MAX_SOCKETS_PER_USER (20) raised to this round's and the
    // warm-up's, whose sockets may still be closing.
    const config = benchConfig(databaseUrl, { ENABLE_CRON: design === 'naive' ? 'false' : 'true', ...(LANES ? { AUCTION_END_LANES: LANES } : {}),
      WS_MAX_SOCKETS_PER_USER: String(Math.max(20, 2 * clients)),
      ...(BATCH ? { AUCTION_END_BATCH_SIZE: BATCH } : {}),
    });
    const app = await startApp(config, { log: pino({ level: 'warn' }) });
    const token = signToken(tokenKeys(config), 'bench-watcher', 'user');
    const em = app.services.orm.em.fork();
    await em.execute(`insert into users (id, role) values ('bench-seller', 'user') on conflict do nothing`);
    // A server that has been running: the same case once, unmeasured, before the measured one.
    if (shape === 'instant' && WARMUP > 0) {
      const warm = await endRound(app, WARMUP, shape, clients, design, token, databaseUrl);
      warm.worker.postMessage('close');
      await new Promise((r) => warm.worker.once('exit', r));
    }
    const { report, firstEnd, ends, setupMs, worker, naive, window } = await endRound(app, n, shape, clients, design, token, databaseUrl);
    const lateness = (report.lateness as number[]).sort((a, b) => a - b);
    const [{ ended }] = await app.services.orm.em
      .fork()
      .execute<Array<{ ended: string }>>(`select count(*) as ended from auctions where status = 'ENDED' and end_time >= ?`, [new Date(firstEnd)]);
    // The server's side of it: ended_at - end_time, before the event travels to the clients.
    const endLateness = (
      await app.services.orm.em
        .fork()
        .execute<Array<{ ms: string }>>(
          `select extract(epoch from ended_at - end_time) * 1000 as ms from auctions where ended_at is not null and end_time >= ? order by 1`,
          [new Date(firstEnd)],
        )
    ).map((r) => Math.round(Number(r.ms)));

    worker.postMessage('close');
    await new Promise((r) => worker.once('exit', r));
    if (naive) {
      await naive.agenda.stop();
      await new Promise((r) => setTimeout(r, 1000));
      await naive.pool.end();
    }
    await app.stop();
    return {
      design,
      shape,
      clients,
      n,
      setupMs,
      heard: report.heard,
      duplicates: report.duplicates,
      min: lateness[0],
      p50: pct(lateness, 50),
      p99: pct(lateness, 99),
      max: lateness[lateness.length - 1],
      lastAnnouncedAfterLastEndMs: report.lastReceipt - ends[ends.length - 1].getTime(),
      ended: Number(ended),
      endedP99: pct(endLateness, 99),
      endedMax: endLateness[endLateness.length - 1],
      window,
    };
  });
}

/** One round: `n` auctions inserted and armed, watched by `clients` watchers until all heard every end. */
async function endRound(app: App, n: number, shape: Shape, clients: number, design: Design, token: string, databaseUrl: string) {
  const worker = new Worker(new URL('./clients.js', import.meta.url), {
    workerData: { url: app.url.replace('http', 'ws'), token, clients, n },
  });
  const messages: Array<(m: any) => void> = [];
  worker.on('message', (m) => messages.splice(0).forEach((f) => f(m)));
  const nextMessage = () => new Promise<any>((resolve) => messages.push(resolve));
  const ready = await nextMessage();
  if (ready.type !== 'ready') throw new Error('clients did not start');

  const setupStarted = Date.now();
  const lead = Date.now() + LEAD_MS + (design === 'naive' ? Math.ceil(n / 300) * 1000 : 0);
  // `instant`: the next round second after the lead, every auction at that same millisecond.
  const firstEnd = shape === 'instant' ? Math.ceil(lead / 1000) * 1000 : lead;
  const ends = Array.from({ length: n }, (_, i) => new Date(shape === 'instant' ? firstEnd : firstEnd + Math.floor((i * 1000) / n)));
  const em = app.services.orm.em.fork();
  const rows: Array<{ id: string; end_time: string }> = [];
  for (let i = 0; i < n; i += 2000) {
    const chunk = ends.slice(i, i + 2000).map((end, j) => ({ nft: `nft-${firstEnd}-${i + j}`, end: end.toISOString() }));
    rows.push(
      ...(await em.execute<Array<{ id: string; end_time: string }>>(
        `insert into auctions (seller_id, nft_id, title, starting_price, min_increment, end_time, soft_close_seconds)
         select 'bench-seller', nft, 'Bench lot', 100, 10, "end"::timestamptz, 0
           from jsonb_to_recordset(?::jsonb) as r(nft text, "end" text) returning *`,
        [JSON.stringify(chunk)],
      )),
    );
  }
  let naive: { agenda: Agenda; pool: pg.Pool } | undefined;
  if (design === 'deadline') {
    // What createAuction does after commit; arming is a no-op for all but the earliest.
    await app.deadlines.arm(AUCTION_END, ends[0]);
  } else {
    naive = await naiveDesign(app, databaseUrl, rows);
  }
  const setupMs = Date.now() - setupStarted;
  if (Date.now() > firstEnd) console.warn(`  setup overran the first endTime by ${Date.now() - firstEnd} ms`);

  const finished = nextMessage();
  const timer = setTimeout(() => worker.postMessage('report'), firstEnd - Date.now() + TIMEOUT_MS);
  // Where the machine's time goes while the ends are settled and heard (the server and the watchers'
  // thread are this process): metered from just before the first end until the report.
  let meter: (() => CpuSample) | undefined;
  let statements: (() => number) | undefined;
  const metering = setTimeout(() => {
    meter = cpuMeter(databaseName(databaseUrl));
    statements = countStatements();
  }, Math.max(0, firstEnd - 20 - Date.now()));
  const report = await finished;
  clearTimeout(timer);
  clearTimeout(metering);
  const window = { ...(meter?.() ?? { wallS: 0, nodeS: 0, postgresS: 0, redisS: 0, otherS: 0, elu: 0 }), statements: statements?.() ?? 0 };
  return { report, firstEnd, ends, setupMs, worker, naive, window };
}

/** What a user writes first: one Agenda job per auction, Agenda's defaults, ending it when it fires. */
async function naiveDesign(app: App, databaseUrl: string, rows: Array<{ id: string; end_time: string }>): Promise<{ agenda: Agenda; pool: pg.Pool }> {
  // Its own pool, so the bench can close it after the jobs still in flight at stop() are done.
  const pool = new pg.Pool({ connectionString: databaseUrl });
  pool.on('error', () => undefined);
  const agenda = new Agenda({ backend: new PostgresBackend({ pool, ensureSchema: false }) });
  agenda.define('naive-auction-end', async (job) => {
    const { auctionId } = job.attrs.data as { auctionId: string };
    await app.services.tx.run(async (uow) => {
      const [row] = await uow.em.execute<Array<Record<string, unknown>>>(
        `update auctions set status = 'ENDED', winner_id = highest_bidder_id, ended_at = ?
          where id = ? and status = 'ACTIVE' and end_time <= ? returning *`,
        [uow.now, auctionId, uow.now],
      );
      if (!row) return;
      const auction = auctionWire(uow.em.map(Auction, row));
      await uow.events.addMany([
        { topic: 'AUCTION_ENDED', payload: { auction, winnerId: auction.winnerId, finalPrice: null, endedAt: auction.endedAt! } },
        { topic: 'AUCTION_UPDATED', payload: { auction }, key: auction.id },
      ]);
    });
  });
  await agenda.start();
  const started = Date.now();
  for (let i = 0; i < rows.length; i += 50) {
    await Promise.all(rows.slice(i, i + 50).map((r) => agenda.schedule(new Date(r.end_time), 'naive-auction-end', { auctionId: String(r.id) })));
  }
  console.log(`  naive: scheduled ${rows.length} Agenda jobs in ${Date.now() - started} ms`);
  return { agenda, pool };
}

const results: Result[] = [];
console.log(`Deadline auction-end benchmark: ${SIZES.join(', ')} auctions; shapes ${SHAPES.join(', ')}`);
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
const cases: Array<[Shape, Design, number, number]> = [];
for (const n of SIZES) {
  if (SHAPES.includes('spread')) for (const design of DESIGNS) cases.push(['spread', design, n, CLIENTS]);
  if (SHAPES.includes('instant')) for (const clients of INSTANT_CLIENTS) cases.push(['instant', 'deadline', n, clients]);
}
for (const [shape, design, n, clients] of cases) {
  console.log(`running ${design} × ${n}, ${shape}, ${clients} watcher(s) ...`);
  const r = await run(design, n, shape, clients);
  results.push(r);
  console.log(`  ${JSON.stringify(r)}`);
}
console.log('\n| ends | design | auctions | watchers | ended | heard by every watcher | duplicates | p50 ms | p99 ms | max ms | last announced after last endTime (ms) | ended_at − endTime p99 / max (ms) |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of results) {
  const shape = r.shape === 'instant' ? 'same instant' : 'over 1 s';
  console.log(`| ${shape} | ${r.design} | ${r.n} | ${r.clients} | ${r.ended} | ${r.heard} | ${r.duplicates} | ${r.p50} | ${r.p99} | ${r.max} | ${r.lastAnnouncedAfterLastEndMs} | ${r.endedP99} / ${r.endedMax} |`);
}
for (const n of SIZES) {
  const d = results.find((r) => r.shape === 'spread' && r.design === 'deadline' && r.n === n);
  const v = results.find((r) => r.shape === 'spread' && r.design === 'naive' && r.n === n);
  if (d && v) console.log(`${n}: naive p99 / deadline p99 = ${(v.p99 / Math.max(1, d.p99)).toFixed(1)}×`);
}
process.exit(0);

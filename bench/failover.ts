/**
 * npm run bench:failover — two server processes (`node dist/src/main.js`, NODE_ENV=production, default
 * settings) on one database while auctions come due (--rate per second over --seconds), one of them
 * stopped every --every seconds, alternately, and started again: with SIGKILL (a crash) in one run and
 * SIGTERM (a rolling restart) in the other. Reported per run: lateness of every auction's end
 * (ended_at − end_time: p50, p99, max), how many ended, that each ended exactly once (one
 * AUCTION_ENDED event each), and how long each stop took (signal to exit). Targets: SIGKILL delays
 * none by more than 1 s, SIGTERM none by more than 100 ms. Talks only to 127.0.0.1; bounded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { randomBytes } from 'node:crypto';
import { armThroughApi, freePort, pct, SERVER_NODE_FLAGS, sleep, stopAfter, withDatabase } from './support.js';
import { AUCTION_ENDED_EVENTS_SQL } from './outbox-events.js';

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const MODES = arg('modes', 'kill,term').split(',') as Array<'kill' | 'term'>;
const SECONDS = Number(arg('seconds', '60'));
const RATE = Number(arg('rate', '10'));
const EVERY_S = Number(arg('every', '6'));
const LEAD_S = 8;
const SECRET = 'bench-secret-0123456789abcdef';

stopAfter((MODES.length * (SECONDS + LEAD_S + 60) + 60) * 1000);

class Instance {
  proc: ChildProcess | undefined;
  constructor(
    readonly port: number,
    private readonly env: Record<string, string>,
  ) {}
  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    this.proc = spawn(process.execPath, [...SERVER_NODE_FLAGS, 'dist/src/main.js'], { env: { ...process.env, ...this.env, PORT: String(this.port) }, stdio: ['ignore', 'ignore', 'inherit'] });
    const end = Date.now() + 60_000;
    for (;;) {
      const ok = await fetch(`${this.base}/health`).then((r) => r.ok, () => false);
      if (ok) return;
      if (Date.now() > end) throw new Error(`instance on ${this.port} did not start`);
      await sleep(100);
    }
  }
  async stop(signal: 'SIGKILL' | 'SIGTERM'): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill(signal);
    });
  }
}

async function run(mode: 'kill' | 'term') {
  return withDatabase(async (databaseUrl, db) => {
    const env = {
      NODE_ENV: 'production',
      DATABASE_URL: databaseUrl,
      JWT_SECRET: SECRET,
      REDIS_PREFIX: `bench:${randomBytes(4).toString('hex')}`,
      LOG_LEVEL: 'warn',
    };
    const instances = [new Instance(await freePort(), env), new Instance(await freePort(), env)];
    await instances[0].start(); // migrates first
    await instances[1].start();
    try {
      // The auctions, as createAuction leaves them, then armed through the API's own path by one more
      // created on each instance (arming is a no-op for all but the earliest).
      await db.query(`insert into users (id, role) values ('failover-seller', 'user') on conflict do nothing`);
      const first = Date.now() + LEAD_S * 1000;
      const n = SECONDS * RATE;
      const ends = Array.from({ length: n }, (_, i) => new Date(first + Math.floor((i * 1000) / RATE) + Math.floor(Math.random() * (1000 / RATE))));
      await db.query(
        `insert into auctions (seller_id, nft_id, title, starting_price, min_increment, end_time, soft_close_seconds)
         select 'failover-seller', 'nft', 'Failover lot', 100, 10, e, 0 from unnest($1::timestamptz[]) as e`,
        [ends],
      );
      const { signToken } = await import('../src/auth.js');
      const token = signToken({ secret: SECRET }, 'failover-seller', 'user');
      for (const instance of instances) await armThroughApi(instance.base, token, ends[0]);
      await sleep(first - Date.now());
      const signal = mode === 'kill' ? 'SIGKILL' : 'SIGTERM';
      let stops = 0;
      // How long each stop took, signal to exit: a SIGTERM that waits on running jobs delays the next
      // stop of the loop below, and with it how many restarts fall inside the window.
      const stopMs: number[] = [];
      const until = first + SECONDS * 1000;
      for (let next = Date.now() + Math.random() * EVERY_S * 1000; next < until; next += EVERY_S * 1000) {
        await sleep(next - Date.now());
        const victim = instances[stops % 2];
        const stopping = Date.now();
        await victim.stop(signal);
        stopMs.push(Date.now() - stopping);
        stops++;
        await victim.start();
      }
      await sleep(Math.max(0, until - Date.now()) + 15_000);
      const { rows } = await db.query<{ ms: string | null }>(`select extract(epoch from ended_at - end_time) * 1000 as ms from auctions where title = 'Failover lot'`);
      const lateness = rows.filter((r) => r.ms !== null).map((r) => Math.round(Number(r.ms))).sort((a, b) => a - b);
      const { rows: events } = await db.query<{ n: string; once: string }>(
        `select count(distinct e.auction_id) as n, count(*) as once from ${AUCTION_ENDED_EVENTS_SQL} e
           join auctions a on a.id::text = e.auction_id where a.title = 'Failover lot'`,
      );
      const early = lateness.filter((ms) => ms < 0).length;
      return { mode, stops, auctions: n, ended: lateness.length, endedEvents: Number(events[0].once), distinct: Number(events[0].n), early, p50: pct(lateness, 50), p99: pct(lateness, 99), max: lateness.at(-1) ?? NaN, stopMs };
    } finally {
      await Promise.all(instances.map((i) => i.stop('SIGKILL')));
    }
  });
}

console.log(`Failover: two instances, ${RATE} auctions/s ending over ${SECONDS} s, one instance stopped every ${EVERY_S} s (alternately) and started again`);
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
const results = [];
for (const mode of MODES) {
  console.log(`running ${mode} ...`);
  const r = await run(mode);
  console.log(`  ${JSON.stringify(r)}`);
  results.push(r);
}
console.log('\n| stop | stops (each took, ms) | auctions | ended | AUCTION_ENDED events (distinct auctions) | early | lateness p50 / p99 / max (ms) | target |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of results) {
  console.log(`| ${r.mode === 'kill' ? 'SIGKILL' : 'SIGTERM'} | ${r.stops} (${r.stopMs.join(', ')}) | ${r.auctions} | ${r.ended} | ${r.endedEvents} (${r.distinct}) | ${r.early} | ${r.p50} / ${r.p99} / ${r.max} | max < ${r.mode === 'kill' ? '1000' : '100'} |`);
}
process.exit(0);

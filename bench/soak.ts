/**
 * Soak: the server (`node dist/src/main.js`, NODE_ENV=production, a child process of its own) under
 * steady load for --minutes (20): auctions created over HTTP and ending 5–15 s later, WALLET orders created
 * and expiring ORDER_EXPIRE_MINUTES later, --subscribers (1,000) graphql-ws clients (in a worker thread,
 * bench/clients.ts) watching every `auctionEnded`, and the server's Redis (a redis-server of its own, AOF on)
 * SIGKILLed in the middle and started again 5 s later.
 * Sampled every 10 s: the server's RSS (/proc), V8 heap used and event-loop delay p99 (its own /metrics).
 * Reported: RSS and heap growth from the end of the warm-up (--warmup minutes) to the end of the load,
 * each measured after a full collection asked through the server's inspector (the target), and as
 * sampled; the same right after the server's first and last major collections (its
 * `*_after_major_gc_bytes` gauges), event-loop delay
 * p99, and the end-of-run counts that say nothing was lost: every auction ENDED and heard by every client
 * exactly once, every order EXPIRED with its money unfrozen, no outbox event left unpublished.
 * Talks only to 127.0.0.1; bounded by --minutes + 5.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { signToken } from '../src/auth.js';
import { freePort, pct, SERVER_NODE_FLAGS, sleep, stopAfter, withDatabase } from './support.js';

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const MINUTES = Number(arg('minutes', '20'));
const WARMUP_MINUTES = Number(arg('warmup', '2'));
const SUBSCRIBERS = Number(arg('subscribers', '1000'));
const AUCTIONS_PER_SECOND = Number(arg('auctions', '2'));
const ORDERS_PER_SECOND = Number(arg('orders', '5'));
const ORDER_EXPIRE_MINUTES = 0.25;
const SECRET = 'bench-secret-0123456789abcdef';
const ADMIN = signToken({ secret: SECRET }, 'soak-admin', 'admin');

stopAfter((MINUTES + 5) * 60_000);

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** A redis-server of the benchmark's own, AOF fsynced every second as production would run it. */
class BenchRedis {
  proc: ChildProcess | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), 'deadline-soak-redis-'));
  constructor(readonly port: number) {}
  start(): void {
    this.proc = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--save', ''], { stdio: 'ignore' });
  }
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  }
}

async function gql<T>(url: string, query: string, variables: Record<string, unknown>, token: string): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: unknown[] };
  if (body.errors) throw new Error(JSON.stringify(body.errors).slice(0, 300));
  return body.data!;
}

function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'))!;
  return Number(line.split(/\s+/)[1]) / 1024;
}

async function scrape(base: string): Promise<{ heapMb: number; externalMb: number; lagP99Ms: number; gcHeapMb: number; gcRssMb: number }> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const value = (name: string) => Number(text.split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1] ?? NaN);
  return {
    heapMb: value('deadline_nodejs_heap_size_used_bytes') / 2 ** 20,
    externalMb: value('deadline_nodejs_external_memory_bytes') / 2 ** 20,
    lagP99Ms: value('deadline_nodejs_eventloop_lag_p99_seconds') * 1000,
    // Right after the server's last major collection (0 before the first).
    gcHeapMb: value('deadline_heap_used_after_major_gc_bytes') / 2 ** 20,
    gcRssMb: value('deadline_resident_memory_after_major_gc_bytes') / 2 ** 20,
  };
}

/**
 * A full collection of the server's heap, asked through its inspector (`HeapProfiler.collectGarbage`,
 * what a debugger's "collect garbage" does: every generation, memory given back to the OS), then its
 * RSS and heap. A sample taken at an arbitrary moment reads wherever V8's collection cycle is; with
 * `--heap-growing-percent=100` the heap may double between two major collections, so two such samples
 * differ by up to 2× with nothing leaking. After a full collection they read what the server holds.
 */
async function afterFullCollection(inspectPort: number, pid: number, base: string): Promise<{ rssMb: number; heapMb: number }> {
  const [target] = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
  const socket = new WebSocket(target.webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => {
    socket.onopen = () => socket.send(JSON.stringify({ id: 1, method: 'HeapProfiler.collectGarbage' }));
    socket.onmessage = (m) => {
      if ((JSON.parse(String(m.data)) as { id?: number }).id === 1) resolve();
    };
    socket.onerror = () => reject(new Error('the server inspector did not answer'));
  });
  socket.close();
  await sleep(1_000);
  return { rssMb: rssMb(pid), heapMb: (await scrape(base)).heapMb };
}

interface Sample {
  atMin: number;
  rssMb: number;
  heapMb: number;
  externalMb: number;
  lagP99Ms: number;
  gcHeapMb: number;
  gcRssMb: number;
}

await withDatabase(async (databaseUrl, db) => {
  const redis = new BenchRedis(await freePort());
  redis.start();
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const url = `${base}/graphql`;
  let warnings = 0;
  const warningLines: string[] = [];
  // The inspector (127.0.0.1 only) is there to ask for a full collection before the two measurements.
  const inspectPort = await freePort();
  const server = spawn(process.execPath, [...SERVER_NODE_FLAGS, `--inspect=127.0.0.1:${inspectPort}`, 'dist/src/main.js'], {
    env: {
      ...process.env,
      NODE_ENV: 'production',
      PORT: String(port),
      DATABASE_URL: databaseUrl,
      REDIS_URL: `redis://127.0.0.1:${redis.port}`,
      REDIS_PREFIX: 'soak',
      JWT_SECRET: SECRET,
      LOG_LEVEL: 'warn',
      ORDER_EXPIRE_MINUTES: String(ORDER_EXPIRE_MINUTES),
      // The subscribers share the admin's token: WS_MAX_SOCKETS_PER_USER (20) raised to their number.
      WS_MAX_SOCKETS_PER_USER: String(SUBSCRIBERS),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const logLines: string[] = [];
  server.stdout.on('data', (chunk: Buffer) => {
    for (const line of String(chunk).split('\n').filter(Boolean)) {
      if (line.includes('"level":40') || line.includes('"level":50')) {
        warnings++;
        warningLines.push(line.slice(0, 300));
      }
      logLines.push(line);
    }
  });
  let worker: Worker | undefined;
  try {
    await until('the server', async () => (await fetch(`${base}/health`)).ok, 60_000);

    const product = await gql<{ createProduct: { id: string } }>(url, 'mutation($i: CreateProductInput!) { createProduct(input: $i) { id } }', { i: { kind: 'GOODS', name: 'Soak goods', price: 100 } }, ADMIN);
    const buyers = Array.from({ length: 50 }, (_, i) => ({ id: `soak-buyer-${i}`, token: signToken({ secret: SECRET }, `soak-buyer-${i}`, 'user') }));
    // Each buyer is seen first (a request with their token), as creditWallet credits only users the server knows.
    for (const b of buyers) {
      await gql(url, '{ me { id } }', {}, b.token);
      await gql(url, 'mutation($u: ID!) { creditWallet(userId: $u, amount: 1000000000) { balance } }', { u: b.id }, ADMIN);
    }
    const seller = signToken({ secret: SECRET }, 'soak-seller', 'user');

    worker = new Worker(new URL('./clients.js', import.meta.url), { workerData: { url: url.replace('http', 'ws'), token: ADMIN, clients: SUBSCRIBERS, n: Number.MAX_SAFE_INTEGER } });
    const ready = await new Promise<{ type: string }>((resolve, reject) => {
      worker!.once('message', resolve);
      worker!.once('error', reject);
    });
    if (ready.type !== 'ready') throw new Error('clients did not start');
    console.log(`${SUBSCRIBERS} subscribers connected; ${MINUTES} min of load: ${AUCTIONS_PER_SECOND} auctions/s, ${ORDERS_PER_SECOND} orders/s, Redis killed at minute ${MINUTES / 2}`);

    const started = Date.now();
    const samples: Sample[] = [];
    let auctions = 0;
    let orders = 0;
    let failedRequests = 0;
    const failures = new Map<string, number>();
    const failed = (err: Error) => {
      failedRequests++;
      const reason = err.message.replace(/\d+/g, 'N').slice(0, 160);
      failures.set(reason, (failures.get(reason) ?? 0) + 1);
    };
    let lastEnd = 0;
    let redisRestarted = false;
    const load = setInterval(() => {
      for (let i = 0; i < AUCTIONS_PER_SECOND; i++) {
        const endTime = new Date(Date.now() + 5_000 + Math.random() * 10_000);
        lastEnd = Math.max(lastEnd, endTime.getTime());
        gql(url, 'mutation($i: CreateAuctionInput!) { createAuction(input: $i) { id } }', { i: { nftId: 'nft', title: 'Soak lot', startingPrice: 100, minIncrement: 10, endTime: endTime.toISOString(), softCloseSeconds: 0 } }, seller).then(
          () => void auctions++,
          failed,
        );
      }
      for (let i = 0; i < ORDERS_PER_SECOND; i++) {
        const buyer = buyers[(orders + i) % buyers.length];
        gql(url, 'mutation($i: CreateOrderInput!) { createOrder(input: $i) { id } }', { i: { productId: product.createProduct.id, paymentMethod: 'WALLET' } }, buyer.token).then(
          () => void orders++,
          failed,
        );
      }
    }, 1_000);
    const sampler = setInterval(() => {
      scrape(base)
        .then((m) => samples.push({ atMin: (Date.now() - started) / 60_000, rssMb: rssMb(server.pid!), ...m }))
        .catch(() => undefined); // a scrape during the Redis outage still answers; a failed one is skipped
    }, 10_000);

    let afterWarmup: { rssMb: number; heapMb: number } | undefined;
    while (Date.now() - started < MINUTES * 60_000) {
      await sleep(1_000);
      if (!afterWarmup && Date.now() - started >= WARMUP_MINUTES * 60_000) afterWarmup = await afterFullCollection(inspectPort, server.pid!, base);
      if (!redisRestarted && Date.now() - started >= (MINUTES / 2) * 60_000) {
        redisRestarted = true;
        await redis.kill();
        console.log(`minute ${((Date.now() - started) / 60_000).toFixed(1)}: Redis killed`);
        await sleep(5_000);
        redis.start();
        console.log('Redis started again');
      }
    }
    // Under the same load as the first, at its end.
    const atEnd = await afterFullCollection(inspectPort, server.pid!, base);
    clearInterval(load);
    clearInterval(sampler);
    await sleep(Math.max(0, lastEnd - Date.now()) + ORDER_EXPIRE_MINUTES * 60_000 + 20_000);

    const report = await new Promise<{ heard: number; duplicates: number; lateness: number[] }>((resolve) => {
      worker!.once('message', resolve);
      worker!.postMessage('report');
    });
    const count = async (q: string) => Number((await db.query(q)).rows[0].n);
    const ended = await count(`select count(*) as n from auctions where status = 'ENDED'`);
    const auctionRows = await count(`select count(*) as n from auctions`);
    const expired = await count(`select count(*) as n from orders where status = 'EXPIRED'`);
    const orderRows = await count(`select count(*) as n from orders`);
    const unpublished = await count(`select count(*) as n from outbox_events where published_at is null`);
    const frozen = await count(`select coalesce(sum(frozen), 0) as n from wallets`);

    const warm = samples.filter((s) => s.atMin >= WARMUP_MINUTES);
    const firstMinute = warm.filter((s) => s.atMin < WARMUP_MINUTES + 1);
    const lastMinute = warm.filter((s) => s.atMin >= MINUTES - 1);
    const avg = (xs: Sample[], k: 'rssMb' | 'heapMb' | 'externalMb') => xs.reduce((a, s) => a + s[k], 0) / Math.max(1, xs.length);
    const growth = (k: 'rssMb' | 'heapMb' | 'externalMb') => ((avg(lastMinute, k) - avg(firstMinute, k)) / avg(firstMinute, k)) * 100;
    // The same growth between the two halves after warm-up: each spans several of V8's collection
    // cycles, so it reads a trend; the one-minute samples above read where in a cycle they fell.
    const half = WARMUP_MINUTES + (MINUTES - WARMUP_MINUTES) / 2;
    const firstHalf = warm.filter((s) => s.atMin < half);
    const secondHalf = warm.filter((s) => s.atMin >= half);
    const halves = (k: 'rssMb' | 'heapMb') => ((avg(secondHalf, k) - avg(firstHalf, k)) / avg(firstHalf, k)) * 100;
    const lags = warm.map((s) => s.lagP99Ms).sort((x, y) => x - y);
    const lateness = [...report.lateness].sort((x, y) => x - y);

    console.log(`\nSoak: ${MINUTES} min, ${SUBSCRIBERS} subscribers, Redis SIGKILLed at minute ${MINUTES / 2} for 5 s`);
    console.log(`samples (every 10 s after ${WARMUP_MINUTES} min warm-up): ${warm.length}`);
    const full = (k: 'rssMb' | 'heapMb') => ((atEnd[k] - afterWarmup![k]) / afterWarmup![k]) * 100;
    console.log(
      `after a full collection, end of warm-up → end of load (target < 10% each): RSS ${afterWarmup!.rssMb.toFixed(0)} → ${atEnd.rssMb.toFixed(0)} MB (${full('rssMb').toFixed(1)}%), ` +
        `heap ${afterWarmup!.heapMb.toFixed(0)} → ${atEnd.heapMb.toFixed(0)} MB (${full('heapMb').toFixed(1)}%)`,
    );
    console.log(`sampled RSS  MB: after warm-up ${avg(firstMinute, 'rssMb').toFixed(0)}, last minute ${avg(lastMinute, 'rssMb').toFixed(0)}, growth ${growth('rssMb').toFixed(1)}%, max ${Math.max(...warm.map((s) => s.rssMb)).toFixed(0)}`);
    console.log(`sampled heap MB: after warm-up ${avg(firstMinute, 'heapMb').toFixed(0)}, last minute ${avg(lastMinute, 'heapMb').toFixed(0)}, growth ${growth('heapMb').toFixed(1)}%`);
    console.log(`external MB (Buffers, off the V8 heap): after warm-up ${avg(firstMinute, 'externalMb').toFixed(0)}, last minute ${avg(lastMinute, 'externalMb').toFixed(0)}`);
    console.log(
      `halves after warm-up (mean of each): RSS ${avg(firstHalf, 'rssMb').toFixed(0)} → ${avg(secondHalf, 'rssMb').toFixed(0)} MB (${halves('rssMb').toFixed(1)}%), heap ${avg(firstHalf, 'heapMb').toFixed(0)} → ${avg(secondHalf, 'heapMb').toFixed(0)} MB (${halves('heapMb').toFixed(1)}%)`,
    );
    console.log(`heap MB per minute: ${Array.from({ length: Math.ceil(MINUTES) }, (_, m) => avg(samples.filter((s) => s.atMin >= m && s.atMin < m + 1), 'heapMb').toFixed(0)).join(' ')}`);
    console.log(`RSS per minute: ${Array.from({ length: Math.ceil(MINUTES) }, (_, m) => avg(samples.filter((s) => s.atMin >= m && s.atMin < m + 1), 'rssMb').toFixed(0)).join(' ')}`);
    // The same memory at the same point of V8's cycle each time: right after a major collection. The
    // first such value after warm-up against the last (each collection is reported once it happened).
    const afterGc = warm.filter((s) => Number.isFinite(s.gcHeapMb) && s.gcHeapMb > 0); // 0: no major collection yet
    const distinct = afterGc.filter((s, i) => i === 0 || s.gcHeapMb !== afterGc[i - 1].gcHeapMb || s.gcRssMb !== afterGc[i - 1].gcRssMb);
    if (distinct.length >= 2) {
      const [a, b] = [distinct[0], distinct.at(-1)!];
      const pctOf = (x: number, y: number) => (((y - x) / x) * 100).toFixed(1);
      console.log(
        `right after a major collection (${distinct.length} seen after warm-up, minute ${a.atMin.toFixed(1)} → ${b.atMin.toFixed(1)}): ` +
          `RSS ${a.gcRssMb.toFixed(0)} → ${b.gcRssMb.toFixed(0)} MB (${pctOf(a.gcRssMb, b.gcRssMb)}%), heap ${a.gcHeapMb.toFixed(0)} → ${b.gcHeapMb.toFixed(0)} MB (${pctOf(a.gcHeapMb, b.gcHeapMb)}%)`,
      );
      console.log(`  each: ${distinct.map((s) => `${s.atMin.toFixed(1)} min ${s.gcRssMb.toFixed(0)}/${s.gcHeapMb.toFixed(0)} MB`).join(', ')}`);
    } else {
      console.log(`right after a major collection: ${distinct.length} seen after warm-up, too few to compare`);
    }
    console.log(`event-loop delay p99 per 10 s: median ${pct(lags, 50).toFixed(1)} ms, worst ${lags.at(-1)?.toFixed(1)} ms`);
    console.log(`auctions: ${auctions} created, ${auctionRows} in the database, ${ended} ENDED; heard by all ${SUBSCRIBERS} subscribers: ${report.heard}; duplicates: ${report.duplicates}`);
    console.log(`auctionEnded received - endTime (all subscribers): p50 ${pct(lateness, 50)} ms, p99 ${pct(lateness, 99)} ms, max ${lateness.at(-1)} ms`);
    console.log(`orders: ${orders} created, ${orderRows} in the database, ${expired} EXPIRED; wallets frozen after: ${frozen}`);
    console.log(`outbox events unpublished at the end: ${unpublished}; requests refused or failed: ${failedRequests}; warning/error log lines: ${warnings}`);
    for (const [reason, n] of failures) console.log(`  refused or failed ${n}×: ${reason}`);
    for (const line of warningLines.slice(0, 20)) console.log(`  ${line}`);
    const lost = ended !== auctionRows || report.heard !== auctionRows || report.duplicates !== 0 || expired !== orderRows || unpublished !== 0 || frozen !== 0;
    console.log(lost ? '!! something was lost or doubled' : 'nothing lost, nothing doubled');
    if (lost) {
      console.log(logLines.slice(-20).join('\n'));
      process.exitCode = 1;
    }
  } finally {
    worker?.postMessage('close');
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    await redis.kill();
    rmSync(redis.dir, { recursive: true, force: true });
  }
});

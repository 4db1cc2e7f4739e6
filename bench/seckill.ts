// Flash-sale benchmark: `npm run build && node dist/bench/seckill.js [--users=50000] [--units=1000] [--clients=200] [--client-threads=1] [--lua=100000] [--warmup=2000] [--warmup-units=50] [--seckill-batch=N] [--warm] [--sandbox=worker|main]`.
// 1. The Lua step alone: XADDs/s through SaleStore.take on one connection (a sale no consumer reads).
// 2. End to end: `--users` users each send one `seckill` over GraphQL/HTTP for `--units` units, from
//    `--clients` concurrent HTTP clients; answers/s, orders persisted/s, p99 from request to the
//    caller's SECKILL_RESULT event on Redis (what `seckillResultReady` relays), sold = stock exactly.
//    Before it, untimed, `--warmup` requests of other new users for `--warmup-units` of another product.
//    The clients run in `--client-threads` worker threads (their own event loops, so the HTTP client's
//    work is not counted against the server's), the clients split evenly; 0 runs them on the server's thread.
import { cpus, totalmem } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { request } from 'undici';
import { startApp } from '../src/app.js';
import { signToken, tokenKeys } from '../src/auth.js';
import { SaleStore } from '../src/services/seckill/store.js';
import { startBenchSandbox, type SandboxMode } from './sandbox-thread.js';
import { benchConfig, dropLiveDatabases, pct, pool, withDatabase } from './support.js';

const arg = (name: string, fallback: number) => {
  const m = process.argv.find((a) => a.startsWith(`--${name}=`));
  return m ? Number(m.split('=')[1]) : fallback;
};
const USERS = arg('users', 50_000);
const UNITS = arg('units', 1_000);
const CLIENTS = arg('clients', 200);
const LUA = arg('lua', 100_000);
const CLIENT_THREADS = arg('client-threads', 1);
const WARMUP = arg('warmup', 2_000);
/** The server's SECKILL_BATCH (0: its default). */
const SECKILL_BATCH = arg('seckill-batch', 0);
const WARMUP_UNITS = arg('warmup-units', 50);
const SANDBOX_MODE: SandboxMode = process.argv.includes('--sandbox=main') ? 'main' : 'worker';

/** What one set of HTTP clients sends: each user's `seckill`, `clients` at a time. */
interface ClientWork {
  url: string;
  productId: string;
  users: Array<[user: string, token: string]>;
  clients: number;
}

/** What it measured: answers by status, each request's latency, and when (epoch ms) each user's request was sent. */
interface ClientResult {
  answers: Record<string, number>;
  latencies: number[];
  sentAt: Array<[user: string, epochMs: number]>;
}

async function sendRequests(work: ClientWork): Promise<ClientResult> {
  const answers: Record<string, number> = {};
  const latencies: number[] = [];
  const sentAt: Array<[string, number]> = [];
  const body = (productId: string) => JSON.stringify({ query: 'mutation($p: ID!) { seckill(productId: $p) { status } }', variables: { p: productId } });
  await pool(work.users, work.clients, async ([user, token]) => {
    const start = performance.now();
    sentAt.push([user, performance.timeOrigin + start]);
    // undici's request, not fetch: fetch cost the client thread ~0.3 ms of CPU per request, which
    // this 2-core machine's server then did not have (docs/benchmarks.md, flash sales).
    const res = await request(work.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: body(work.productId) });
    const answer = (await res.body.json()) as { data?: { seckill: { status: string } }; errors?: unknown[] };
    if (answer.errors || !answer.data) throw new Error(JSON.stringify(answer.errors));
    latencies.push(performance.now() - start);
    answers[answer.data.seckill.status] = (answers[answer.data.seckill.status] ?? 0) + 1;
  });
  return { answers, latencies, sentAt };
}

/**
 * The requests, split over `threads` worker threads (0: here); results merged. The threads are
 * started and loaded first: `go` sends the requests, so a thread's start-up (loading the modules) is
 * not counted as the server's time.
 */
async function clientThreads(work: ClientWork, threads: number): Promise<{ go: () => Promise<ClientResult> }> {
  if (threads === 0) return { go: () => sendRequests(work) };
  const parts = Array.from({ length: threads }, (_, t): ClientWork => ({
    ...work,
    users: work.users.filter((_, i) => i % threads === t),
    clients: Math.ceil(work.clients / threads),
  }));
  const workers = await Promise.all(
    parts.map(
      (part) =>
        new Promise<Worker>((resolve, reject) => {
          const worker = new Worker(new URL(import.meta.url), { workerData: { role: 'clients', work: part } });
          worker.once('message', () => resolve(worker)); // 'ready'
          worker.once('error', reject);
        }),
    ),
  );
  const go = async () => {
    const results = await Promise.all(
      workers.map(
        (worker) =>
          new Promise<ClientResult>((resolve, reject) => {
            worker.once('message', resolve);
            worker.once('error', reject);
            worker.postMessage('go');
          }),
      ),
    );
    const merged: ClientResult = { answers: {}, latencies: [], sentAt: [] };
    for (const r of results) {
      for (const [status, n] of Object.entries(r.answers)) merged.answers[status] = (merged.answers[status] ?? 0) + n;
      merged.latencies.push(...r.latencies);
      merged.sentAt.push(...r.sentAt);
    }
    return merged;
  };
  return { go };
}
const MAX_MS = 10 * 60_000;

async function luaStep(redisUrl: string, prefix: string) {
  const redis = new Redis(redisUrl);
  const store = new SaleStore(redis, `${prefix}:lua:`);
  const now = new Date();
  await store.load('1', 'replace', LUA, { startsAt: new Date(now.getTime() - 60_000), endsAt: new Date(now.getTime() + 3_600_000) }, []);
  const t0 = performance.now();
  let queued = 0;
  // ioredis pipelines concurrent commands on its one connection: 1,000 in flight at a time.
  for (let i = 0; i < LUA; i += 1000) {
    const answers = await Promise.all(Array.from({ length: Math.min(1000, LUA - i) }, (_, j) => store.take('1', `lua-${i + j}`, `r${i + j}`, now)));
    queued += answers.filter((a) => a === 'QUEUED').length;
  }
  const ms = performance.now() - t0;
  const keys = await redis.keys(`${prefix}:lua:*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
  return { calls: LUA, queued, ms: Math.round(ms), perSecond: Math.round((LUA / ms) * 1000) };
}

async function endToEnd(url: string) {
  // Flash-sale orders start their payments at the provider: the sandbox, in a worker thread of this
  // process (--sandbox=main: on the server's thread). Without one every order was expired at once
  // (provider unreachable) and its unit sold again.
  const sandbox = await startBenchSandbox(SANDBOX_MODE);
  // Flash-sale orders are paid at the sandbox: on, as an operator would switch it on (production mode leaves it off).
  const config = benchConfig(url, { ENABLE_CRON: 'false', PAYMENTS_SANDBOX: 'true', SANDBOX_PAY_URL: sandbox.url, ...(SECKILL_BATCH ? { SECKILL_BATCH: String(SECKILL_BATCH) } : {}) });
  config.seckill.keyPrefix = `${config.redisPrefix}:`;
  const app = await startApp(config, { log: pino({ level: 'warn' }) });
  const admin = signToken(tokenKeys(config), 'bench-admin', 'admin');
  const gql = async (query: string, variables: Record<string, unknown>, bearer: string) => {
    const res = await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` }, body: JSON.stringify({ query, variables }) });
    const body = (await res.json()) as { data?: any; errors?: unknown[] };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
  const listener = new Redis(config.redisUrl);
  try {
    const now = Date.now();
    const sale = async (name: string, stock: number) => {
      const { createProduct } = await gql('mutation($i: CreateProductInput!) { createProduct(input: $i) { id } }', {
        i: { name, price: 100, kind: 'FLASH_SALE', stock, saleStartsAt: new Date(now - 60_000).toISOString(), saleEndsAt: new Date(now + 3_600_000).toISOString() },
      }, admin);
      await gql('mutation($p: ID!) { startFlashSale(productId: $p) { total } }', { p: createProduct.id }, admin);
      return createProduct.id as string;
    };
    // A server that has been up: a smaller sale of another product first, by other new users, untimed
    // (the request path, the consumer and their statements compiled and planned, as in production).
    let warmupMs = 0;
    if (WARMUP > 0) {
      const warmProduct = await sale('bench warm-up', WARMUP_UNITS);
      const w0 = performance.now();
      const warmUsers = Array.from({ length: WARMUP }, (_, i) => `warm-${i}`).map((u): [string, string] => [u, signToken(tokenKeys(config), u, 'user')]);
      await (await clientThreads({ url: app.url, productId: warmProduct, users: warmUsers, clients: CLIENTS }, CLIENT_THREADS)).go();
      warmupMs = Math.round(performance.now() - w0);
      await new Promise((r) => setTimeout(r, 1_000)); // its orders written
    }
    const productId = await sale('bench', UNITS);

    // When each user's result was heard (epoch ms), joined with when their request was sent at the end.
    const heardAt = new Map<string, number>();
    let ordered = 0;
    let lastOrderAt = 0;
    await listener.psubscribe(`${config.redisPrefix}:SECKILL_RESULT:${productId}:*`);
    listener.on('pmessage', (_p, channel, message) => {
      const user = channel.slice(channel.lastIndexOf(':') + 1);
      if (!heardAt.has(user)) heardAt.set(user, performance.timeOrigin + performance.now());
      if ((JSON.parse(message) as { status: string }).status === 'ORDERED') {
        ordered++;
        lastOrderAt = performance.now();
      }
    });

    const users = Array.from({ length: USERS }, (_, i) => `bench-${i}`);
    const tokens = new Map(users.map((u) => [u, signToken(tokenKeys(config), u, 'user')]));
    // A user's first request writes their user row and wallet (one statement per group of first requests); --warm pays that before the sale.
    let warmMs = 0;
    if (process.argv.includes('--warm')) {
      const w0 = performance.now();
      await pool(users, CLIENTS, async (user) => void (await gql('{ wallet { balance } }', {}, tokens.get(user)!)));
      warmMs = Math.round(performance.now() - w0);
    }
    const clients = await clientThreads({ url: app.url, productId, users: users.map((u) => [u, tokens.get(u)!]), clients: CLIENTS }, CLIENT_THREADS);
    const t0 = performance.now();
    const { answers, latencies, sentAt } = await clients.go();
    const answeredMs = performance.now() - t0;
    const deadline = Date.now() + 60_000;
    while (ordered < Math.min(UNITS, answers.QUEUED ?? 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const heard: number[] = [];
    for (const [user, at] of sentAt) {
      const h = heardAt.get(user);
      if (h !== undefined) heard.push(h - at);
    }
    const outcome = (await gql(`query($p: ID!) { flashSale(productId: $p) { total left sold queued deadLetters } }`, { p: productId }, admin)).flashSale;
    // Every order's payment started at the provider and stored (they give way to the sale's first
    // second: SECKILL_PAYMENT_QUIET_MS, SECKILL_PAYMENT_MAX_DELAY_MS), and when the last was.
    const intents = async () =>
      Number(
        (await app.services.orm.em.fork().execute<Array<{ n: string }>>(`select count(*) as n from payment_intents i join orders o on o.id = i.order_id where o.product_id = ?`, [productId]))[0].n,
      );
    let paymentsStarted = await intents();
    while (paymentsStarted < ordered && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      paymentsStarted = await intents();
    }
    const paymentsStartedMs = Math.round(performance.now() - t0);
    latencies.sort((a, b) => a - b);
    heard.sort((a, b) => a - b);
    return {
      warmupRequests: WARMUP,
      warmupMs,
      warmMs,
      requests: USERS,
      answers,
      answeredPerSecond: Math.round((USERS / answeredMs) * 1000),
      answerP50Ms: Math.round(pct(latencies, 50)),
      answerP99Ms: Math.round(pct(latencies, 99)),
      ordersPersisted: ordered,
      ordersPerSecond: lastOrderAt > t0 ? Math.round((ordered / (lastOrderAt - t0)) * 1000) : 0,
      resultP50Ms: Math.round(pct(heard, 50)),
      resultP99Ms: Math.round(pct(heard, 99)),
      paymentsStarted,
      paymentsStartedMs,
      sale: outcome,
      soldEqualsStock: outcome.sold === UNITS && outcome.left === 0,
    };
  } finally {
    listener.disconnect();
    await app.stop();
    await sandbox.close();
  }
}

async function main() {
  const overran = async () => {
    console.error(`!! the benchmark ran longer than ${MAX_MS / 60_000} minutes: stopping`);
    process.on('uncaughtException', () => undefined);
    await dropLiveDatabases();
    process.exit(2);
  };
  setTimeout(() => void overran(), MAX_MS).unref();
  console.log(`Deadline flash-sale benchmark: ${USERS} users for ${UNITS} units, ${CLIENTS} HTTP clients in ${CLIENT_THREADS || 'no'} worker thread(s); Lua step ${LUA} calls`);
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
  await withDatabase(async (url) => {
    const config = benchConfig(url);
    console.log('Lua step alone:', JSON.stringify(await luaStep(config.redisUrl, config.redisPrefix)));
    console.log('End to end:', JSON.stringify(await endToEnd(url)));
  });
  process.exit(0);
}

if (isMainThread) {
  main().catch(async (err) => {
    console.error(err);
    await dropLiveDatabases();
    process.exit(1);
  });
} else if ((workerData as { role?: string }).role === 'clients') {
  parentPort!.once('message', () => void sendRequests((workerData as { work: ClientWork }).work).then((sent) => parentPort!.postMessage(sent)));
  parentPort!.postMessage('ready');
}

/**
 * npm run bench:payments — payments (docs/benchmarks.md, "Payments"). Each run in a database of its
 * own (created and dropped here), with the payment sandbox (src/payments/sandbox/server.ts) started
 * in this process; talks only to 127.0.0.1.
 *
 * 1. reconciliation, once per --concurrency (RECONCILE_CONCURRENCY): N stale PENDING WECHAT orders
 *    (created_at 10 minutes ago, expires_at 20 minutes ahead) whose trades exist in the sandbox and
 *    were paid there with the callback lost. The trades are made through the sandbox provider
 *    (connectSandbox → create, then POST /sandbox/trades/{orderNo}/pay {"callback":"lose"}), with
 *    bounded concurrency and the sandbox answering at once; then the server starts in this process
 *    (startApp: SANDBOX_PAY_URL = the sandbox, RECONCILE_INTERVAL_MINUTES a day so only our runs
 *    count, RECONCILE_BATCH_SIZE --batch), its start-up run of the periodic job is let finish, the
 *    orders and their payment intents are inserted with SQL (as createOrder would have left them),
 *    the sandbox is set to answer every v3 call after --delay-ms, and `payment-reconciliation` is run
 *    back to back (app.services.jobs.run, then Agenda's success:/fail: event on app.scheduler) until
 *    no order is PENDING. Orders settled per second = N / (first run asked → last run succeeded).
 *    Checked afterwards: every order PAID with paidVia COMPENSATE, exactly N payments, none
 *    needsRefund.
 * 2. callbacks: M PENDING orders (odd ids MIXED, 300 of 1,000 cents frozen in the owner's wallet;
 *    even ids WECHAT), one user each, seeded with SQL (wallets, CREDIT and FREEZE ledger rows); the
 *    server starts, the trades are made with notify_url = the server's
 *    /api/payments/sandbox/notify and paid with the callback lost; then every callback is delivered
 *    (POST /sandbox/trades/{orderNo}/callbacks/replay: the sandbox POSTs the original signed,
 *    encrypted callback to the server), --callback-concurrency at a time. Verified callbacks applied
 *    per second = M / (first replay sent → last one answered 204); before them, untimed,
 *    --callback-warmup (200) callbacks of other orders seeded the same way. Checked (over all): each order PAID once
 *    with paidVia CALLBACK, M payments, none needsRefund, every MIXED wallet's frozen back to 0 with
 *    one DEBIT row per MIXED order. Then every callback a second time
 *    (POST …/callbacks/duplicate: same notification, fresh signature, as WeChat's retry) and a
 *    digest of orders, payments, wallets, the ledger, notifications and the outbox must not change.
 *
 * 3. refunds (bench/payments-refunds.ts): --refunds (1,000) refunds made at the sandbox with their
 *    notifications lost, PENDING here, settled by `refund-reconciliation` at REFUND_RECONCILE_CONCURRENCY
 *    --refund-concurrency (50) with the sandbox answering in --delay-ms; refunds/s printed beside the
 *    provider-bound ceiling (concurrency / answer time) and beside payment reconciliation's orders/s at
 *    the same concurrency in this run (the goal: refunds no slower than payments).
 *
 * Where the time goes is sampled beside each run: the provider call's latency and the payment
 * transaction's latency (timers wrapped around the server's own provider and Transactions
 * instances), the SQL statements the server sends, this thread's event-loop utilisation, and CPU
 * seconds of this process, PostgreSQL, Redis and every other process on the machine (from /proc).
 *
 * --sandbox=worker (default) runs the sandbox in a worker thread of this process, and sends the
 * callbacks from there, so its signing (RSA-2048 per v3 answer) and HTTP do not compete with the
 * server for its event loop, as a real provider would not (it still shares the machine's 2 cores);
 * --sandbox=main runs it on the benchmark's (and server's) thread, as the tests do.
 *
 * Options: --orders=10000 --callbacks=1000 --concurrency=5,50 --delay-ms=20 --batch=1000
 *   --callback-concurrency=200 --callback-warmup=200 --seed-concurrency=50 --sandbox=worker|main --timeout=300
 *   --max-minutes=20 --skip-reconcile --skip-callbacks --refunds=1000 --refund-concurrency=50 --skip-refunds
 */
import { cpus, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';
import pg from 'pg';
import type { App } from '../src/app.js';
import type { PaymentProvider } from '../src/payments/provider.js';
import { control, sendCallbacks, startBenchSandbox, type BenchSandbox as Sandbox, type SandboxMode } from './sandbox-thread.js';
import { benchConfig, pct, pool, sleep, stopAfter, withDatabase } from './support.js';
import { runRefunds, type RefundResult } from './payments-refunds.js';
import { countingLogger, countStatements, cpuMeter, databaseName, migrateSchema, r1, sorted, summary, timeMethod, type CpuSample } from './measure.js';

const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const flag = (name: string) => process.argv.includes(`--${name}`);

const ORDERS = Number(arg('orders', '10000'));
const CALLBACKS = Number(arg('callbacks', '1000'));
const CONCURRENCIES = arg('concurrency', '5,50').split(',').map(Number);
const DELAY_MS = Number(arg('delay-ms', '20'));
const BATCH = Number(arg('batch', '1000'));
const CALLBACK_CONCURRENCY = Number(arg('callback-concurrency', '200'));
const CALLBACK_WARMUP = Number(arg('callback-warmup', '200'));
const SEED_CONCURRENCY = Number(arg('seed-concurrency', '50'));
const SANDBOX_MODE = arg('sandbox', 'worker') as SandboxMode;
/** How long one run (the reconciliation loop, or one round of callbacks) may take before it is cut short. */
const TIMEOUT_MS = Number(arg('timeout', '300')) * 1000;
const REFUNDS = Number(arg('refunds', '1000'));
const REFUND_CONCURRENCY = Number(arg('refund-concurrency', '50'));
const MAX_MS = Number(arg('max-minutes', '20')) * 60_000;

const PRICE = 1000;
const WALLET_PART = 300; // a MIXED order's frozen part
const BALANCE = 10_000;
const JOB = 'payment-reconciliation';
/** Targets (docs/benchmarks.md): orders/s by RECONCILE_CONCURRENCY at 20 ms answers, and callbacks/s. */
const RECONCILE_TARGETS: Record<number, number> = { 5: 200, 50: 1500 };
const CALLBACK_TARGET = 1000;

const secs = (ms: number) => (ms / 1000).toFixed(2);

/** Each order's trade made through the sandbox provider, then paid there with its callback lost. Returns the code URLs. */
async function seedTrades(
  sandboxUrl: string,
  orders: ReadonlyArray<{ orderNo: string; amount: number }>,
  expiresAt: Date,
  notifyUrl: string,
): Promise<string[]> {
  const { connectSandbox } = await import('../src/payments/sandbox/provider.js');
  const provider = await connectSandbox(sandboxUrl);
  const codeUrls: string[] = new Array(orders.length);
  await pool(orders, SEED_CONCURRENCY, async (o, i) => {
    const intent = await provider.create({ orderNo: o.orderNo, amount: o.amount, description: `Order ${o.orderNo}`, expiresAt, notifyUrl });
    codeUrls[i] = intent.codeUrl ?? '';
    const paid = await control(sandboxUrl, o.orderNo, 'pay', { callback: 'lose' });
    if (paid.status !== 200 || paid.json.trade?.state !== 'SUCCESS' || paid.json.callback !== null) {
      throw new Error(`paying ${o.orderNo} in the sandbox answered ${paid.status} ${JSON.stringify(paid.json)}`);
    }
  });
  return codeUrls;
}

const orderNo = (i: number) => `DL20261124${String(i).padStart(10, '0')}`;

function serverConfig(databaseUrl: string, sandboxUrl: string, concurrency: number) {
  return benchConfig(databaseUrl, {
    // Production mode leaves the sandbox off; this benchmark pays there, as an operator would switch it on.
    PAYMENTS_SANDBOX: 'true',
    SANDBOX_PAY_URL: sandboxUrl,
    RECONCILE_INTERVAL_MINUTES: '1440', // a day: only the benchmark's runs count
    RECONCILE_THRESHOLD_MINUTES: '5',
    RECONCILE_BATCH_SIZE: String(BATCH),
    RECONCILE_CONCURRENCY: String(concurrency),
    RECONCILE_MAX_RETRIES: '0', // a failed run is reported, not retried behind the benchmark's back
  });
}

/** The periodic job's first run (Agenda runs an `every` job once when it is scheduled) has finished. */
async function startupRunFinished(db: pg.Client): Promise<boolean> {
  for (let waited = 0; waited < 20_000; waited += 200) {
    const { rows } = await db.query(`select last_finished_at from job_states where name = $1`, [JOB]);
    if (rows[0]?.last_finished_at) return true;
    await sleep(200);
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// 1. Reconciliation
// ---------------------------------------------------------------------------------------------

interface ReconcileResult {
  phase: 'reconciliation';
  sandbox: SandboxMode;
  orders: number;
  delayMs: number;
  concurrency: number;
  batch: number;
  seedMs: number;
  runs: number;
  failedRuns: number;
  totalMs: number;
  perSecond: number;
  /** Per run: wall time (jobs.run → success event) and the handler's own time (start → success event). */
  runMs: { p50: number; max: number };
  handlerMs: { p50: number; max: number };
  providerQueryMs: ReturnType<typeof summary>;
  paymentTxMs: ReturnType<typeof summary>;
  /** SQL statements the server sent per settled order (its pool and Agenda's). */
  statementsPerOrder: number;
  cpu: CpuSample;
  serverWarnings: number;
  serverErrors: number;
  check: { paidCompensate: number; notPaidCompensate: number; payments: number; paymentOrders: number; needsRefund: number; sandboxNotPaid: number; ok: boolean };
}

async function runReconcile(concurrency: number): Promise<ReconcileResult> {
  const { startApp } = await import('../src/app.js');
  const { pino } = await import('pino');
  return withDatabase(async (databaseUrl, db) => {
    await migrateSchema(databaseUrl);
    const sandbox = await startBenchSandbox(SANDBOX_MODE);
    let app: App | undefined;
    try {
      // Users, a product and the sandbox's trades (paid there, callback lost) first; the orders
      // themselves after the server's start-up run, so that run finds nothing.
      const users = Math.min(ORDERS, 1000);
      await db.query(`insert into users (id, role) select 'bench-u' || lpad(g::text, 5, '0'), 'user' from generate_series(1, ${users}) g`);
      await db.query(`insert into wallets (user_id, balance, frozen) select id, 0, 0 from users`);
      await db.query(`insert into products (id, name, price, kind) values (1, 'Bench product', ${PRICE}, 'GOODS')`);
      await db.query(`select setval(pg_get_serial_sequence('products', 'id'), 1)`);
      const seedStarted = Date.now();
      const expiresAt = new Date(Date.now() + 20 * 60_000);
      const orders = Array.from({ length: ORDERS }, (_, k) => ({ orderNo: orderNo(k + 1), amount: PRICE }));
      // Nothing listens there: the callbacks are lost anyway.
      const codeUrls = await seedTrades(sandbox.url, orders, expiresAt, 'http://127.0.0.1:9/api/payments/sandbox/notify');
      const seedTradesMs = Date.now() - seedStarted;

      const { log, counts } = countingLogger(pino);
      app = await startApp(serverConfig(databaseUrl, sandbox.url, concurrency), { log });
      if (!(await startupRunFinished(db))) console.warn('  !! the start-up run of payment-reconciliation did not finish within 20 s');

      await db.query(
        `insert into orders (id, order_no, user_id, product_id, quantity, amount, wallet_amount, payment_method, channel, status, expires_at, created_at)
         select g, 'DL20261124' || lpad(g::text, 10, '0'), 'bench-u' || lpad(((g - 1) % ${users} + 1)::text, 5, '0'), 1, 1, ${PRICE}, 0,
                'WECHAT', 'H5', 'PENDING', $2::timestamptz, now() - interval '10 minutes' - ($1::int - g) * interval '1 millisecond'
           from generate_series(1, $1::int) g`,
        [ORDERS, expiresAt],
      );
      await db.query(`select setval(pg_get_serial_sequence('orders', 'id'), $1)`, [ORDERS]);
      await db.query(
        `insert into payment_intents (order_id, provider, code_url, expires_at)
         select g, 'sandbox', ($1::text[])[g], $2::timestamptz from generate_series(1, array_length($1::text[], 1)) g`,
        [codeUrls, expiresAt],
      );
      await db.query('analyze');
      const seedMs = Date.now() - seedStarted;
      console.log(`  seeded ${ORDERS} paid trades (callback lost) in ${seedTradesMs} ms, orders and intents in ${seedMs - seedTradesMs} ms`);

      // The server's own provider and Transactions instances: timers around the provider call and the payment transaction.
      const provider = (await app.services.providers.byName('sandbox')) as PaymentProvider;
      const queryMs: number[] = [];
      const txMs: number[] = [];
      const untime = [timeMethod(provider, 'query', queryMs), timeMethod(app.services.tx, 'runThenPublish', txMs)];

      await sandbox.setDelay(DELAY_MS);
      const scheduler = app.scheduler;
      const runOnce = async (): Promise<{ ok: boolean; ms: number; handlerMs: number; error?: string }> => {
        let startedAt = NaN;
        const asked = performance.now();
        const onStart = () => void (startedAt = performance.now());
        scheduler.once(`start:${JOB}`, onStart);
        const finished = new Promise<{ ok: boolean; error?: string }>((resolve) => {
          const ok = () => {
            scheduler.off(`fail:${JOB}`, fail);
            resolve({ ok: true });
          };
          const fail = (err: Error) => {
            scheduler.off(`success:${JOB}`, ok);
            resolve({ ok: false, error: err.message });
          };
          scheduler.once(`success:${JOB}`, ok);
          scheduler.once(`fail:${JOB}`, fail);
        });
        await app!.services.jobs.run(JOB);
        const timeout = sleep(TIMEOUT_MS).then(() => ({ ok: false, error: 'no success or fail event' }));
        const r = await Promise.race([finished, timeout]);
        scheduler.off(`start:${JOB}`, onStart);
        const end = performance.now();
        return { ...r, ms: end - asked, handlerMs: end - startedAt };
      };

      const maxRuns = Math.ceil(ORDERS / BATCH) * 3 + 5;
      const runs: Array<{ ok: boolean; ms: number; handlerMs: number; error?: string }> = [];
      const meter = cpuMeter(databaseName(databaseUrl));
      const statements = countStatements(db);
      const t0 = performance.now();
      for (;;) {
        const { rows } = await db.query<{ n: number }>(`select count(*)::int as n from orders where status = 'PENDING'`);
        if (rows[0].n === 0) break;
        if (runs.length >= maxRuns || performance.now() - t0 > TIMEOUT_MS) {
          console.warn(`  !! stopped after ${runs.length} runs / ${secs(performance.now() - t0)} s with ${rows[0].n} orders pending`);
          break;
        }
        const r = await runOnce();
        runs.push(r);
        console.log(`  run ${runs.length}: ${r.ok ? 'ok' : `FAILED (${r.error})`} ${Math.round(r.ms)} ms (handler ${Math.round(r.handlerMs)} ms), ${rows[0].n} pending before`);
      }
      const totalMs = performance.now() - t0;
      const cpu = meter();
      const sql = statements();
      untime.forEach((u) => u());

      const {
        rows: [c],
      } = await db.query(`select
          (select count(*) from orders where status = 'PAID' and paid_via = 'COMPENSATE')::int as paid_compensate,
          (select count(*) from orders where status <> 'PAID' or paid_via is distinct from 'COMPENSATE')::int as not_paid_compensate,
          (select count(*) from payments)::int as payments,
          (select count(distinct order_id) from payments where source = 'COMPENSATE')::int as payment_orders,
          (select count(*) from payments where needs_refund)::int as needs_refund`);
      const trades = (await (await fetch(`${sandbox.url}/sandbox/trades`)).json()) as Array<{ state: string }>;
      const check = {
        paidCompensate: c.paid_compensate,
        notPaidCompensate: c.not_paid_compensate,
        payments: c.payments,
        paymentOrders: c.payment_orders,
        needsRefund: c.needs_refund,
        sandboxNotPaid: trades.filter((t) => t.state !== 'SUCCESS').length,
        ok: false,
      };
      check.ok =
        check.paidCompensate === ORDERS && check.notPaidCompensate === 0 && check.payments === ORDERS && check.paymentOrders === ORDERS && check.needsRefund === 0;
      const okRuns = runs.filter((r) => r.ok);
      return {
        phase: 'reconciliation',
        sandbox: SANDBOX_MODE,
        orders: ORDERS,
        delayMs: DELAY_MS,
        concurrency,
        batch: BATCH,
        seedMs,
        runs: runs.length,
        failedRuns: runs.length - okRuns.length,
        totalMs: Math.round(totalMs),
        perSecond: Math.round((check.paidCompensate * 1000) / totalMs),
        runMs: { p50: Math.round(pct(sorted(runs.map((r) => r.ms)), 50)), max: Math.round(Math.max(...runs.map((r) => r.ms))) },
        handlerMs: { p50: Math.round(pct(sorted(runs.map((r) => r.handlerMs)), 50)), max: Math.round(Math.max(...runs.map((r) => r.handlerMs))) },
        providerQueryMs: summary(queryMs),
        paymentTxMs: summary(txMs),
        statementsPerOrder: r1(sql / Math.max(1, check.paidCompensate)),
        cpu,
        serverWarnings: counts.warn,
        serverErrors: counts.error,
        check,
      };
    } finally {
      await app?.stop();
      await sandbox.close();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// 2. Callbacks
// ---------------------------------------------------------------------------------------------

interface Round {
  sent: number;
  /** SQL statements the server sent per callback. */
  statementsPerCallback: number;
  status204: number;
  other: Record<string, number>;
  totalMs: number;
  perSecond: number;
  latencyMs: ReturnType<typeof summary>;
  cpu: CpuSample;
}

interface CallbackResult {
  phase: 'callbacks';
  sandbox: SandboxMode;
  orders: number;
  warmup: number;
  mixed: number;
  concurrency: number;
  seedMs: number;
  first: Round & { paymentTxMs: ReturnType<typeof summary> };
  duplicates: Round & { changed: boolean };
  serverWarnings: number;
  serverErrors: number;
  check: {
    paidCallback: number;
    notPaidCallback: number;
    payments: number;
    paymentOrders: number;
    needsRefund: number;
    notifications: number;
    mixedWalletsFrozenLeft: number;
    mixedWalletsWrong: number;
    debitRows: number;
    debitSum: number;
    ledgerMismatches: number;
    ok: boolean;
  };
}

/**
 * One round: every order's callback, `CALLBACK_CONCURRENCY` at a time; sent from this thread, or
 * with --sandbox=worker from the sandbox's thread (this thread then runs the server alone).
 */
async function deliverAll(db: pg.Client, database: string, sandbox: Sandbox, nos: readonly string[], kind: 'replay' | 'duplicate'): Promise<Round> {
  const meter = cpuMeter(database);
  const statements = countStatements(db);
  const sent = sandbox.send ? await sandbox.send(nos, kind, CALLBACK_CONCURRENCY) : await sendCallbacks(sandbox.url, nos, kind, CALLBACK_CONCURRENCY);
  const cpu = meter();
  const sql = statements();
  return {
    sent: nos.length,
    statementsPerCallback: r1(sql / nos.length),
    status204: sent.ok,
    other: sent.other,
    totalMs: Math.round(sent.totalMs),
    perSecond: Math.round((sent.ok * 1000) / sent.totalMs),
    latencyMs: summary(sent.latencies),
    cpu,
  };
}

const DIGEST = `select md5(coalesce(string_agg(x, ',' order by x), '')) as digest from (
    select concat_ws('|', 'o', id, status, paid_via, paid_at, expires_at, closed_at) as x from orders
    union all select concat_ws('|', 'p', id, order_id, provider, transaction_id, amount, paid_at, source, needs_refund) from payments
    union all select concat_ws('|', 'w', user_id, balance, frozen, updated_at) from wallets
    union all select concat_ws('|', 'l', id, user_id, order_id, entry, amount) from wallet_ledger
    union all select concat_ws('|', 'n', provider, notification_id) from payment_notifications
    union all select concat_ws('|', 'e', id, topic) from outbox_events) s`;

async function runCallbacks(): Promise<CallbackResult> {
  const { startApp } = await import('../src/app.js');
  const { pino } = await import('pino');
  return withDatabase(async (databaseUrl, db) => {
    await migrateSchema(databaseUrl);
    const sandbox = await startBenchSandbox(SANDBOX_MODE);
    let app: App | undefined;
    try {
      // The measured callbacks, and before them --callback-warmup others (orders of their own, not
      // timed): a server that has been up has its callback path compiled and its statements planned.
      const n = CALLBACKS + CALLBACK_WARMUP;
      const seedStarted = Date.now();
      const expiresAt = new Date(Date.now() + 30 * 60_000);
      // User k owns order k; odd orders MIXED (300 of 1,000 cents frozen), even orders WECHAT.
      await db.query(`insert into users (id, role) select 'bench-u' || lpad(g::text, 5, '0'), 'user' from generate_series(1, $1::int) g`, [n]);
      await db.query(`insert into products (id, name, price, kind) values (1, 'Bench product', ${PRICE}, 'GOODS')`);
      await db.query(`select setval(pg_get_serial_sequence('products', 'id'), 1)`);
      await db.query(
        `insert into orders (id, order_no, user_id, product_id, quantity, amount, wallet_amount, payment_method, channel, status, expires_at, created_at)
         select g, 'DL20261124' || lpad(g::text, 10, '0'), 'bench-u' || lpad(g::text, 5, '0'), 1, 1, ${PRICE},
                case when g % 2 = 1 then ${WALLET_PART} else 0 end, case when g % 2 = 1 then 'MIXED' else 'WECHAT' end,
                'H5', 'PENDING', $2::timestamptz, now()
           from generate_series(1, $1::int) g`,
        [n, expiresAt],
      );
      await db.query(`select setval(pg_get_serial_sequence('orders', 'id'), $1)`, [n]);
      await db.query(
        `insert into wallets (user_id, balance, frozen)
         select o.user_id, ${BALANCE}, case when o.payment_method = 'MIXED' then o.wallet_amount else 0 end from orders o`,
      );
      await db.query(`insert into wallet_ledger (user_id, entry, amount) select user_id, 'CREDIT', balance + frozen from wallets`);
      await db.query(
        `insert into wallet_ledger (user_id, order_id, entry, amount)
         select user_id, id, 'FREEZE', wallet_amount from orders where payment_method = 'MIXED'`,
      );
      const { rows: mixedRows } = await db.query(`select count(*)::int as n from orders where payment_method = 'MIXED'`);
      const mixed: number = mixedRows[0].n;

      const { log, counts } = countingLogger(pino);
      app = await startApp(serverConfig(databaseUrl, sandbox.url, 5), { log });
      await startupRunFinished(db);
      const notifyUrl = `http://127.0.0.1:${app.port}/api/payments/sandbox/notify`;
      const orders = Array.from({ length: n }, (_, k) => ({ orderNo: orderNo(k + 1), amount: (k + 1) % 2 === 1 ? PRICE - WALLET_PART : PRICE }));
      const codeUrls = await seedTrades(sandbox.url, orders, expiresAt, notifyUrl);
      await db.query(
        `insert into payment_intents (order_id, provider, code_url, expires_at)
         select g, 'sandbox', ($1::text[])[g], $2::timestamptz from generate_series(1, array_length($1::text[], 1)) g`,
        [codeUrls, expiresAt],
      );
      await db.query('analyze');
      const seedMs = Date.now() - seedStarted;
      // The server builds its sandbox provider (fetches the keys) on first use: not in the measured window.
      await app.services.providers.byName('sandbox');
      await sandbox.setDelay(DELAY_MS); // v3 answers only; a callback's path never asks the provider
      console.log(`  seeded ${n} orders (${mixed} MIXED), paid trades with the callback lost, in ${seedMs} ms`);

      const warmNos = orders.slice(CALLBACKS).map((o) => o.orderNo);
      if (warmNos.length > 0) {
        const warm = sandbox.send ? await sandbox.send(warmNos, 'replay', CALLBACK_CONCURRENCY) : await sendCallbacks(sandbox.url, warmNos, 'replay', CALLBACK_CONCURRENCY);
        console.log(`  warm-up: ${warm.ok}/${warmNos.length} callbacks of other orders answered 204 in ${Math.round(warm.totalMs)} ms (not timed)`);
        await sleep(500);
      }
      const nos = orders.slice(0, CALLBACKS).map((o) => o.orderNo);
      const txMs: number[] = [];
      const untime = timeMethod(app.services.tx, 'runThenPublish', txMs);
      const first = await deliverAll(db, databaseName(databaseUrl), sandbox, nos, 'replay');
      untime();
      console.log(`  callbacks: ${first.status204}/${first.sent} answered 204 in ${first.totalMs} ms${Object.keys(first.other).length ? `; other: ${JSON.stringify(first.other)}` : ''}`);
      // Events are published after commit: let the relay finish before the digest.
      await sleep(1000);

      const {
        rows: [c],
      } = await db.query(`select
          (select count(*) from orders where status = 'PAID' and paid_via = 'CALLBACK')::int as paid_callback,
          (select count(*) from orders where status <> 'PAID' or paid_via is distinct from 'CALLBACK')::int as not_paid_callback,
          (select count(*) from payments)::int as payments,
          (select count(distinct order_id) from payments where source = 'CALLBACK')::int as payment_orders,
          (select count(*) from payments where needs_refund)::int as needs_refund,
          (select count(*) from payment_notifications)::int as notifications,
          (select coalesce(sum(w.frozen), 0) from wallets w join orders o on o.user_id = w.user_id and o.payment_method = 'MIXED')::int as mixed_frozen_left,
          (select count(*) from wallets w join orders o on o.user_id = w.user_id and o.payment_method = 'MIXED'
            where w.frozen <> 0 or w.balance <> ${BALANCE})::int as mixed_wallets_wrong,
          (select count(*) from wallet_ledger l join orders o on o.id = l.order_id and o.payment_method = 'MIXED' where l.entry = 'DEBIT')::int as debit_rows,
          (select coalesce(sum(amount), 0) from wallet_ledger where entry = 'DEBIT')::int as debit_sum,
          (select count(*) from wallets w
             left join (select user_id, sum(case entry when 'CREDIT' then amount when 'DEBIT' then -amount else 0 end) as net
                          from wallet_ledger group by user_id) l using (user_id)
            where w.balance + w.frozen <> coalesce(l.net, 0))::int as ledger_mismatches`);
      const check = {
        paidCallback: c.paid_callback,
        notPaidCallback: c.not_paid_callback,
        payments: c.payments,
        paymentOrders: c.payment_orders,
        needsRefund: c.needs_refund,
        notifications: c.notifications,
        mixedWalletsFrozenLeft: c.mixed_frozen_left,
        mixedWalletsWrong: c.mixed_wallets_wrong,
        debitRows: c.debit_rows,
        debitSum: c.debit_sum,
        ledgerMismatches: c.ledger_mismatches,
        ok: false,
      };
      check.ok =
        check.paidCallback === n &&
        check.notPaidCallback === 0 &&
        check.payments === n &&
        check.paymentOrders === n &&
        check.needsRefund === 0 &&
        check.notifications === n &&
        check.mixedWalletsFrozenLeft === 0 &&
        check.mixedWalletsWrong === 0 &&
        check.debitRows === mixed &&
        check.debitSum === mixed * WALLET_PART &&
        check.ledgerMismatches === 0;

      // Every callback again, as WeChat's retry: nothing may change.
      const before = (await db.query(DIGEST)).rows[0].digest as string;
      const dup = await deliverAll(db, databaseName(databaseUrl), sandbox, nos, 'duplicate');
      await sleep(1000);
      const after = (await db.query(DIGEST)).rows[0].digest as string;
      console.log(`  duplicates: ${dup.status204}/${dup.sent} answered 204 in ${dup.totalMs} ms; data ${before === after ? 'unchanged' : 'CHANGED'}`);

      return {
        phase: 'callbacks',
        sandbox: SANDBOX_MODE,
        orders: CALLBACKS,
        warmup: CALLBACK_WARMUP,
        mixed,
        concurrency: CALLBACK_CONCURRENCY,
        seedMs,
        first: { ...first, paymentTxMs: summary(txMs) },
        duplicates: { ...dup, changed: before !== after },
        serverWarnings: counts.warn,
        serverErrors: counts.error,
        check,
      };
    } finally {
      await app?.stop();
      await sandbox.close();
    }
  });
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  stopAfter(MAX_MS);

  console.log(
    `Deadline payments benchmark: reconciliation of ${ORDERS} stale paid WECHAT orders (RECONCILE_CONCURRENCY ${CONCURRENCIES.join(', ')}, ` +
      `batch ${BATCH}, sandbox answering in ${DELAY_MS} ms), ${CALLBACKS} callbacks (${CALLBACK_CONCURRENCY} at a time); sandbox on the ${SANDBOX_MODE} thread`,
  );
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
  const startedAll = Date.now();
  const reconciles: ReconcileResult[] = [];
  let callbacks: CallbackResult | undefined;
  if (!flag('skip-reconcile')) {
    for (const c of CONCURRENCIES) {
      console.log(`running reconciliation, RECONCILE_CONCURRENCY ${c} ...`);
      const r = await runReconcile(c);
      reconciles.push(r);
      console.log(`  ${JSON.stringify(r)}`);
    }
  }
  if (!flag('skip-callbacks')) {
    console.log(`running callbacks ...`);
    callbacks = await runCallbacks();
    console.log(`  ${JSON.stringify(callbacks)}`);
  }
  let refunds: RefundResult | undefined;
  if (!flag('skip-refunds')) {
    console.log(`running refunds, REFUND_RECONCILE_CONCURRENCY ${REFUND_CONCURRENCY} ...`);
    refunds = await runRefunds({
      refunds: REFUNDS,
      concurrency: REFUND_CONCURRENCY,
      delayMs: DELAY_MS,
      batch: BATCH,
      seedConcurrency: SEED_CONCURRENCY,
      sandbox: SANDBOX_MODE,
      timeoutMs: TIMEOUT_MS,
    });
    console.log(`  ${JSON.stringify(refunds)}`);
  }
  // Payment reconciliation's own rate at the refunds' concurrency, in this run: what refunds are held to.
  const paymentsBeside = refunds && reconciles.find((r) => r.concurrency === refunds.concurrency);

  if (reconciles.length > 0) {
    console.log(
      '\n| reconciliation | orders | provider answers in | RECONCILE_CONCURRENCY | batch | runs (failed) | total s | orders/s | PAID via COMPENSATE | payments (needsRefund) | provider query p50 / p99 ms | payment tx p50 / p99 ms | SQL statements / order | CPU s: node / postgres / redis / other processes (event loop busy) |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of reconciles) {
      console.log(
        `| sandbox on ${r.sandbox} thread | ${r.orders} | ${r.delayMs} ms | ${r.concurrency} | ${r.batch} | ${r.runs} (${r.failedRuns}) | ${secs(r.totalMs)} | ${r.perSecond} | ` +
          `${r.check.paidCompensate}${r.check.ok ? '' : ' **CHECK FAILED**'} | ${r.check.payments} (${r.check.needsRefund}) | ${r.providerQueryMs.p50} / ${r.providerQueryMs.p99} | ` +
          `${r.paymentTxMs.p50} / ${r.paymentTxMs.p99} | ${r.statementsPerOrder} | ${r.cpu.nodeS} / ${r.cpu.postgresS} / ${r.cpu.redisS} / ${r.cpu.otherS} (${Math.round(r.cpu.elu * 100)}%) |`,
      );
    }
  }
  if (callbacks) {
    const c = callbacks;
    console.log(
      '\n| callbacks | orders (MIXED) | at a time | answered 204 | total s | callbacks/s | latency p50 / p99 / max ms | payment tx p50 / p99 ms | SQL statements / callback | PAID via CALLBACK | payments (needsRefund) | MIXED wallets frozen 0, DEBIT rows | CPU s: node / postgres / redis / other processes (event loop busy) |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    const row = (name: string, r: Round, tx: string, paid: string, payments: string, wallets: string) =>
      console.log(
        `| ${name} | ${c.orders}${c.warmup ? ` (+${c.warmup} warm-up)` : ''}, MIXED ${c.mixed} in all | ${c.concurrency} | ${r.status204} | ${secs(r.totalMs)} | ${r.perSecond} | ${r.latencyMs.p50} / ${r.latencyMs.p99} / ${r.latencyMs.max} | ` +
          `${tx} | ${r.statementsPerCallback} | ${paid} | ${payments} | ${wallets} | ${r.cpu.nodeS} / ${r.cpu.postgresS} / ${r.cpu.redisS} / ${r.cpu.otherS} (${Math.round(r.cpu.elu * 100)}%) |`,
      );
    row(
      `first delivery (sandbox on ${c.sandbox} thread)`,
      c.first,
      `${c.first.paymentTxMs.p50} / ${c.first.paymentTxMs.p99}`,
      `${c.check.paidCallback}${c.check.ok ? '' : ' **CHECK FAILED**'}`,
      `${c.check.payments} (${c.check.needsRefund})`,
      `${c.check.mixedWalletsWrong === 0 && c.check.mixedWalletsFrozenLeft === 0 ? 'yes' : '**NO**'}, ${c.check.debitRows}`,
    );
    row('every callback again (duplicates)', c.duplicates, '–', c.duplicates.changed ? '**data changed**' : 'nothing changed', '–', '–');
  }

  if (refunds) {
    const r = refunds;
    console.log(
      '\n| refunds via refund-reconciliation | refunds | provider answers in | REFUND_RECONCILE_CONCURRENCY | batch | runs (failed) | total s | refunds/s | provider-bound ceiling | payment reconciliation, same concurrency, this run | SUCCEEDED, orders REFUNDED, refunds at the sandbox | provider query p50 / p99 ms | settle tx p50 / p99 ms | SQL statements / refund | CPU s: node / postgres / redis / other processes (event loop busy) |',
    );
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    console.log(
      `| sandbox on ${r.sandbox} thread | ${r.refunds} | ${r.delayMs} ms | ${r.concurrency} | ${r.batch} | ${r.runs} (${r.failedRuns}) | ${secs(r.totalMs)} | ${r.perSecond} | ` +
        `${r.ceilingPerSecond}/s (${r.concurrency} / ${r.delayMs} ms) | ${paymentsBeside ? `${paymentsBeside.perSecond} orders/s` : 'not run'} | ` +
        `${r.check.succeeded}, ${r.check.ordersRefunded}, ${r.check.sandboxRefunds}${r.check.ok ? '' : ' **CHECK FAILED**'} | ${r.providerQueryMs.p50} / ${r.providerQueryMs.p99} | ` +
        `${r.settleTxMs.p50} / ${r.settleTxMs.p99} | ${r.statementsPerRefund} | ${r.cpu.nodeS} / ${r.cpu.postgresS} / ${r.cpu.redisS} / ${r.cpu.otherS} (${Math.round(r.cpu.elu * 100)}%) |`,
    );
  }

  console.log('\nTargets:');
  for (const r of reconciles) {
    const target = RECONCILE_TARGETS[r.concurrency];
    if (target === undefined) continue;
    console.log(
      `  ≥ ${target} orders/s at RECONCILE_CONCURRENCY ${r.concurrency}, ${r.delayMs} ms answers: ${r.perSecond}/s → ${r.perSecond >= target && r.check.ok ? 'met' : 'MISSED'}`,
    );
  }
  if (refunds) {
    const share = Math.round((refunds.perSecond / refunds.ceilingPerSecond) * 100);
    console.log(
      paymentsBeside
        ? `  refunds no slower than payments at concurrency ${refunds.concurrency}, ${refunds.delayMs} ms answers: ${refunds.perSecond}/s against ${paymentsBeside.perSecond}/s (${share}% of the ${refunds.ceilingPerSecond}/s ceiling) → ${refunds.perSecond >= paymentsBeside.perSecond && refunds.check.ok ? 'met' : 'MISSED'}`
        : `  refunds no slower than payments: ${refunds.perSecond}/s (${share}% of the ${refunds.ceilingPerSecond}/s ceiling); no payment reconciliation at concurrency ${refunds.concurrency} in this run to compare with`,
    );
    if (!refunds.check.ok) console.log(`  !! refunds: ${JSON.stringify(refunds.check)}`);
    if (refunds.serverWarnings + refunds.serverErrors > 0) console.log(`  !! refunds: the server logged ${refunds.serverWarnings} warnings, ${refunds.serverErrors} errors`);
  }
  if (callbacks) {
    console.log(`  ≥ ${CALLBACK_TARGET} verified callbacks applied/s: ${callbacks.first.perSecond}/s → ${callbacks.first.perSecond >= CALLBACK_TARGET && callbacks.check.ok ? 'met' : 'MISSED'}`);
  }
  for (const r of reconciles) {
    if (!r.check.ok) console.log(`  !! reconciliation at ${r.concurrency}: ${JSON.stringify(r.check)}`);
    if (r.serverWarnings + r.serverErrors > 0) console.log(`  !! reconciliation at ${r.concurrency}: the server logged ${r.serverWarnings} warnings, ${r.serverErrors} errors`);
  }
  if (callbacks && !callbacks.check.ok) console.log(`  !! callbacks: ${JSON.stringify(callbacks.check)}`);
  if (callbacks && (callbacks.duplicates.changed || callbacks.duplicates.status204 !== callbacks.orders)) {
    console.log(`  !! duplicates: ${callbacks.duplicates.status204} answered 204, data ${callbacks.duplicates.changed ? 'changed' : 'unchanged'}`);
  }
  if (callbacks && callbacks.serverWarnings + callbacks.serverErrors > 0) {
    console.log(`  !! callbacks: the server logged ${callbacks.serverWarnings} warnings, ${callbacks.serverErrors} errors`);
  }
  console.log(`\ntotal ${secs(Date.now() - startedAll)} s`);
}

if (isMainThread) {
  await main();
  process.exit(0);
}

/**
 * bench:payments, part 3: refunds settled through `refund-reconciliation` (docs/benchmarks.md,
 * "Refunds"). N PAID WECHAT orders, each with its payment, whose refunds the sandbox made (SUCCESS)
 * with the notification lost; here they are PENDING, as refundOrder left them when the notification
 * never came. The sandbox's trades and refunds are made through the sandbox provider (create, pay
 * with the callback lost, a refund plan of SUCCESS with the notification lost, refund), the server
 * starts (its start-up run of the job is let finish), the orders, payments and refunds are inserted
 * with SQL, the sandbox answers every v3 call after --delay-ms, and `refund-reconciliation` is run
 * back to back until no refund is PENDING. Refunds settled per second = N / (first run asked → last
 * run succeeded), beside the provider-bound ceiling (concurrency / answer time). Checked: every refund
 * SUCCEEDED, every order REFUNDED, and the sandbox holds exactly N refunds (none made twice).
 */
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import type { App } from '../src/app.js';
import type { PaymentProvider } from '../src/payments/provider.js';
import { countingLogger, countStatements, cpuMeter, databaseName, migrateSchema, r1, summary, timeMethod, type CpuSample } from './measure.js';
import { control, startBenchSandbox, type SandboxMode } from './sandbox-thread.js';
import { benchConfig, pool, sleep, withDatabase } from './support.js';

const JOB = 'refund-reconciliation';
const PRICE = 1000;

export interface RefundBenchOptions {
  refunds: number;
  concurrency: number;
  delayMs: number;
  batch: number;
  seedConcurrency: number;
  sandbox: SandboxMode;
  timeoutMs: number;
}

export interface RefundResult {
  phase: 'refunds';
  sandbox: SandboxMode;
  refunds: number;
  delayMs: number;
  concurrency: number;
  batch: number;
  seedMs: number;
  runs: number;
  failedRuns: number;
  totalMs: number;
  perSecond: number;
  /** concurrency / answer time: what the provider's latency allows at best. */
  ceilingPerSecond: number;
  providerQueryMs: ReturnType<typeof summary>;
  settleTxMs: ReturnType<typeof summary>;
  statementsPerRefund: number;
  cpu: CpuSample;
  serverWarnings: number;
  serverErrors: number;
  check: { succeeded: number; ordersRefunded: number; notSucceeded: number; sandboxRefunds: number; ok: boolean };
}

const orderNo = (i: number) => `DL20261209${String(i).padStart(10, '0')}`;

/** Trades paid in the sandbox and refunded there (SUCCESS, notification lost); the transaction ids, by order. */
async function seedSandbox(sandboxUrl: string, n: number, seedConcurrency: number): Promise<string[]> {
  const { connectSandbox } = await import('../src/payments/sandbox/provider.js');
  const provider = await connectSandbox(sandboxUrl);
  const transactionIds: string[] = new Array(n);
  const expiresAt = new Date(Date.now() + 20 * 60_000);
  const nowhere = 'http://127.0.0.1:9/api/payments/sandbox'; // nothing listens: callbacks and notifications are lost anyway
  await pool(
    Array.from({ length: n }, (_, k) => k + 1),
    seedConcurrency,
    async (k, i) => {
      const no = orderNo(k);
      await provider.create({ orderNo: no, amount: PRICE, description: `Order ${no}`, expiresAt, notifyUrl: `${nowhere}/notify` });
      const paid = await control(sandboxUrl, no, 'pay', { callback: 'lose' });
      if (paid.status !== 200 || paid.json.trade?.state !== 'SUCCESS') throw new Error(`paying ${no} answered ${paid.status} ${JSON.stringify(paid.json)}`);
      transactionIds[i] = paid.json.trade.transactionId;
      await control(sandboxUrl, no, 'refund-plan', { status: 'SUCCESS', callback: 'lose' });
      const refund = await provider.refund({
        outRefundNo: `R${k}-1`,
        orderNo: no,
        transactionId: transactionIds[i],
        amount: PRICE,
        total: PRICE,
        reason: 'bench',
        notifyUrl: `${nowhere}/refund-notify`,
      });
      if (refund.state !== 'SUCCEEDED') throw new Error(`refunding ${no} answered ${JSON.stringify(refund)}`);
    },
  );
  return transactionIds;
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

/** One run of the job through the jobs API, timed to its success (or fail) event. */
async function runOnce(app: App, timeoutMs: number): Promise<{ ok: boolean; ms: number; error?: string }> {
  const asked = performance.now();
  const finished = new Promise<{ ok: boolean; error?: string }>((resolve) => {
    const ok = () => {
      app.scheduler.off(`fail:${JOB}`, fail);
      resolve({ ok: true });
    };
    const fail = (err: Error) => {
      app.scheduler.off(`success:${JOB}`, ok);
      resolve({ ok: false, error: err.message });
    };
    app.scheduler.once(`success:${JOB}`, ok);
    app.scheduler.once(`fail:${JOB}`, fail);
  });
  await app.services.jobs.run(JOB);
  const r = await Promise.race([finished, sleep(timeoutMs).then(() => ({ ok: false, error: 'no success or fail event' }))]);
  return { ...r, ms: performance.now() - asked };
}

export async function runRefunds(o: RefundBenchOptions): Promise<RefundResult> {
  const { startApp } = await import('../src/app.js');
  const { pino } = await import('pino');
  const N = o.refunds;
  return withDatabase(async (databaseUrl, db) => {
    await migrateSchema(databaseUrl);
    const sandbox = await startBenchSandbox(o.sandbox);
    let app: App | undefined;
    try {
      const users = Math.min(N, 1000);
      await db.query(`insert into users (id, role) select 'bench-u' || lpad(g::text, 5, '0'), 'user' from generate_series(1, ${users}) g`);
      await db.query(`insert into wallets (user_id, balance, frozen) select id, 0, 0 from users`);
      await db.query(`insert into products (id, name, price, kind) values (1, 'Bench product', ${PRICE}, 'GOODS')`);
      await db.query(`select setval(pg_get_serial_sequence('products', 'id'), 1)`);
      const seedStarted = Date.now();
      const transactionIds = await seedSandbox(sandbox.url, N, o.seedConcurrency);
      const seedSandboxMs = Date.now() - seedStarted;

      const { log, counts } = countingLogger(pino);
      app = await startApp(
        benchConfig(databaseUrl, {
          PAYMENTS_SANDBOX: 'true',
          SANDBOX_PAY_URL: sandbox.url,
          RECONCILE_INTERVAL_MINUTES: '1440',
          REFUND_RECONCILE_INTERVAL_MINUTES: '1440', // a day: only the benchmark's runs count
          REFUND_RECONCILE_BATCH_SIZE: String(o.batch),
          REFUND_RECONCILE_CONCURRENCY: String(o.concurrency),
        }),
        { log },
      );
      if (!(await startupRunFinished(db))) console.warn(`  !! the start-up run of ${JOB} did not finish within 20 s`);

      // As refundOrder leaves them when the provider's notification never comes: PAID orders, their
      // payments, and their refunds PENDING under the numbers the sandbox refunded them by.
      await db.query(
        `insert into orders (id, order_no, user_id, product_id, quantity, amount, wallet_amount, payment_method, channel, status, paid_at, paid_via, created_at)
         select g, 'DL20261209' || lpad(g::text, 10, '0'), 'bench-u' || lpad(((g - 1) % ${users} + 1)::text, 5, '0'), 1, 1, ${PRICE}, 0,
                'WECHAT', 'H5', 'PAID', now() - interval '5 minutes', 'COMPENSATE', now() - interval '10 minutes'
           from generate_series(1, $1::int) g`,
        [N],
      );
      await db.query(
        `insert into payments (id, order_id, order_no, provider, transaction_id, amount, paid_at, source)
         select g, g, 'DL20261209' || lpad(g::text, 10, '0'), 'sandbox', ($1::text[])[g], ${PRICE}, now() - interval '5 minutes', 'COMPENSATE'
           from generate_series(1, array_length($1::text[], 1)) g`,
        [transactionIds],
      );
      await db.query(
        `insert into refunds (id, kind, payment_id, order_id, provider, out_refund_no, attempt, amount, wallet_amount, status, reason, actor_id, created_at)
         select g, 'ORDER', g, g, 'sandbox', 'R' || g || '-1', 1, ${PRICE}, 0, 'PENDING', 'bench', 'bench-admin', now() - ($1::int - g) * interval '1 millisecond'
           from generate_series(1, $1::int) g`,
        [N],
      );
      for (const table of ['orders', 'payments', 'refunds']) await db.query(`select setval(pg_get_serial_sequence('${table}', 'id'), $1)`, [N]);
      await db.query('analyze');
      const seedMs = Date.now() - seedStarted;
      console.log(`  seeded ${N} refunds made in the sandbox (notification lost) in ${seedSandboxMs} ms, orders, payments and refunds in ${seedMs - seedSandboxMs} ms`);

      const provider = (await app.services.providers.byName('sandbox')) as PaymentProvider;
      const queryMs: number[] = [];
      const txMs: number[] = [];
      const untime = [timeMethod(provider, 'queryRefund', queryMs), timeMethod(app.services.tx, 'runThenPublish', txMs)];
      await sandbox.setDelay(o.delayMs);

      const runs: Array<{ ok: boolean; ms: number; error?: string }> = [];
      const maxRuns = Math.ceil(N / o.batch) * 3 + 5;
      const meter = cpuMeter(databaseName(databaseUrl));
      const statements = countStatements(db);
      const t0 = performance.now();
      for (;;) {
        const { rows } = await db.query<{ n: number }>(`select count(*)::int as n from refunds where status = 'PENDING'`);
        if (rows[0].n === 0) break;
        if (runs.length >= maxRuns || performance.now() - t0 > o.timeoutMs) {
          console.warn(`  !! stopped after ${runs.length} runs with ${rows[0].n} refunds pending`);
          break;
        }
        const r = await runOnce(app, o.timeoutMs);
        runs.push(r);
        console.log(`  run ${runs.length}: ${r.ok ? 'ok' : `FAILED (${r.error})`} ${Math.round(r.ms)} ms, ${rows[0].n} pending before`);
      }
      const totalMs = performance.now() - t0;
      const cpu = meter();
      const sql = statements();
      untime.forEach((u) => u());

      const {
        rows: [c],
      } = await db.query(`select
          (select count(*) from refunds where status = 'SUCCEEDED')::int as succeeded,
          (select count(*) from refunds where status <> 'SUCCEEDED')::int as not_succeeded,
          (select count(*) from orders where status = 'REFUNDED')::int as orders_refunded`);
      const sandboxRefunds = ((await (await fetch(`${sandbox.url}/sandbox/refunds`)).json()) as unknown[]).length;
      const check = { succeeded: c.succeeded, ordersRefunded: c.orders_refunded, notSucceeded: c.not_succeeded, sandboxRefunds, ok: false };
      check.ok = check.succeeded === N && check.ordersRefunded === N && check.notSucceeded === 0 && check.sandboxRefunds === N;
      return {
        phase: 'refunds',
        sandbox: o.sandbox,
        refunds: N,
        delayMs: o.delayMs,
        concurrency: o.concurrency,
        batch: o.batch,
        seedMs,
        runs: runs.length,
        failedRuns: runs.filter((r) => !r.ok).length,
        totalMs: Math.round(totalMs),
        perSecond: Math.round((check.succeeded * 1000) / totalMs),
        ceilingPerSecond: Math.round((o.concurrency * 1000) / Math.max(1, o.delayMs)),
        providerQueryMs: summary(queryMs),
        settleTxMs: summary(txMs),
        statementsPerRefund: r1(sql / Math.max(1, check.succeeded)),
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

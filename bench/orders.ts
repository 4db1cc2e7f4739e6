/**
 * npm run bench:orders — order expiry (docs/benchmarks.md, "Order expiry"). Three phases, each in a
 * database of its own (created and dropped here); talks only to 127.0.0.1.
 *
 * 1. spread: N PENDING orders (every odd id MIXED with 300 cents frozen, every even id WECHAT with
 *    nothing frozen), `expires_at` spread evenly over 60 s starting after the server is up and the
 *    subscriber connected. Orders, wallets (balance/frozen consistent with them) and FREEZE ledger
 *    rows are seeded with SQL, as `createOrder` would have left them; then the server starts in this
 *    process (startApp, default config) and its start-up recovery arms the wake-up. Lateness is
 *    measured server side (closed_at − the original expires_at, kept in `bench_due`) and client side
 *    (an admin graphql-ws client in a worker thread subscribed to `orderExpired`: receipt − expires_at).
 * 2. backlog: the same N orders, all due at one instant a few seconds after start-up (`instant`) or
 *    already overdue when the server starts, settled by start-up recovery (`overdue`); time to drain
 *    and expiries/s, for each batch size (ORDER_EXPIRY_BATCH_SIZE).
 * 3. million: 1,000,000 orders (all but ~11,000 settled with expires_at null), ANALYZE, then
 *    EXPLAIN (ANALYZE, BUFFERS) of the exact SQL text MikroORM sends for OrderService.expireDue's
 *    select (in a transaction, rolled back) and for order-expiry's nextDeadline; median of --runs.
 *
 * The subscriber's worker thread is this same file (`isMainThread` picks the role).
 *
 * After phases 1 and 2, SQL checks that every seeded wallet has frozen = 0 and its balance restored,
 * one UNFREEZE per MIXED order, ledger sums equal balance + frozen, and stock returned.
 *
 * Options: --orders=100000 --users=10000 --spread=60 --lead=15 --clients=1 --batches=100,1000 --lanes=<default>
 *   --backlog=instant,overdue --million=1000000 --runs=20 --timeout=120 --max-minutes=15
 *   --skip-spread --skip-backlog --skip-million
 */
import { cpus, totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { createClient } from 'graphql-ws';
import pg from 'pg';
import WebSocket from 'ws';
import type { App } from '../src/app.js';
import { benchConfig, pct, sleep, stopAfter, withDatabase } from './support.js';
import { ORDER_EXPIRED_EVENTS_SQL } from './outbox-events.js';

const arg = (name: string, fallback: string) =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const flag = (name: string) => process.argv.includes(`--${name}`);

const ORDERS = Number(arg('orders', '100000'));
const USERS = Number(arg('users', '10000'));
const SPREAD_MS = Number(arg('spread', '60')) * 1000;
/** From the orders' insert to the first expires_at: seeding, start-up and the subscriber's connection fit in it. */
const LEAD_MS = Number(arg('lead', '15')) * 1000;
const CLIENTS = Number(arg('clients', '1'));
const BATCHES = arg('batches', '100,1000').split(',').map(Number);
/** ORDER_EXPIRY_LANES for the runs; the server's default when not given. */
const LANES = arg('lanes', '');
type BacklogMode = 'instant' | 'overdue';
const BACKLOG_MODES = arg('backlog', 'instant,overdue').split(',') as BacklogMode[];
const MILLION = Number(arg('million', '1000000'));
const PENDING_FUTURE = Number(arg('pending-future', '10000'));
const PENDING_OVERDUE = Number(arg('pending-overdue', '1000'));
const RUNS = Number(arg('runs', '20'));
/** How long after the last expires_at a run may take before it is cut short and reported as it is. */
const TIMEOUT_MS = Number(arg('timeout', '120')) * 1000;
const MAX_MS = Number(arg('max-minutes', '15')) * 60_000;

const PRODUCTS = 10;
const PRICE = 1000;
const STOCK = 1_000_000;
const WALLET_PART = 300; // a MIXED order's frozen part
const BALANCE = 10_000; // each seeded wallet's balance after its orders froze their parts
const SUBSCRIPTION = 'subscription { orderExpired { eventId order { id status } } }';

const median = (xs: number[]) => pct([...xs].sort((a, b) => a - b), 50);
const secs = (ms: number) => (ms / 1000).toFixed(1);

// ---------------------------------------------------------------------------------------------
// The subscriber (worker thread): receives { url, token, clients, due }, posts 'ready', then 'done'.
// ---------------------------------------------------------------------------------------------

interface ClientReport {
  type: 'done';
  lateness: number[];
  heard: number;
  duplicates: number;
  early: number;
  wrongStatus: number;
  firstReceipt: number;
  lastReceipt: number;
}

function clientThread(): void {
  const { url, token, clients: count, due } = workerData as { url: string; token: string; clients: number; due: Float64Array };
  const n = due.reduce((k, d) => (Number.isNaN(d) ? k : k + 1), 0);
  const lateness: number[] = [];
  const seen = Array.from({ length: count }, () => new Set<string>());
  const perOrder = new Map<string, number>();
  let duplicates = 0;
  let early = 0;
  let wrongStatus = 0;
  let heard = 0;
  let firstReceipt = Infinity;
  let lastReceipt = 0;
  let acks = 0;
  let reported = false;
  const report = () => {
    if (reported) return;
    reported = true;
    const r: ClientReport = { type: 'done', lateness, heard, duplicates, early, wrongStatus, firstReceipt, lastReceipt };
    parentPort!.postMessage(r);
  };
  const clients = Array.from({ length: count }, () =>
    createClient({ url, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0 }),
  );
  clients.forEach((client, i) => {
    client.on('connected', () => {
      // Subscriptions are registered right after the ack: give the server a moment.
      if (++acks === count) setTimeout(() => parentPort!.postMessage({ type: 'ready' }), 500);
    });
    client.subscribe<{ orderExpired: { eventId: string; order: { id: string; status: string } } }>(
      { query: SUBSCRIPTION },
      {
        next: ({ data }) => {
          const now = Date.now();
          const o = data!.orderExpired.order;
          if (seen[i].has(o.id)) return void duplicates++;
          seen[i].add(o.id);
          if (o.status !== 'EXPIRED') wrongStatus++;
          firstReceipt = Math.min(firstReceipt, now);
          lastReceipt = Math.max(lastReceipt, now);
          const late = now - due[Number(o.id)];
          if (late < 0) early++;
          lateness.push(late);
          const k = (perOrder.get(o.id) ?? 0) + 1;
          perOrder.set(o.id, k);
          if (k === count && ++heard === n) report();
        },
        error: (e) => {
          const c = e as { message?: string; code?: number; reason?: string };
          console.error(`subscription error: ${c.message ?? `close ${c.code} ${c.reason}`}`);
        },
        complete: () => undefined,
      },
    );
  });
  // A client's dispose may or may not return a promise; every one has finished before the exit.
  const close = async () => {
    await Promise.all(clients.map((c) => Promise.resolve(c.dispose())));
    process.exit(0);
  };
  parentPort!.on('message', (m) => {
    if (m === 'progress') parentPort!.postMessage({ type: 'progress', heard });
    if (m === 'report') report();
    if (m === 'close') void close();
  });
}

// ---------------------------------------------------------------------------------------------
// Databases and seeding
// ---------------------------------------------------------------------------------------------

/** The schema, by the server's own migrations, before anything is seeded. */
async function migrateSchema(url: string) {
  const { initOrm, migrate } = await import('../src/db/orm.js');
  const orm = await initOrm(url);
  await migrate(orm, url);
  return orm;
}

const userId = (expr: string) => `'bench-u' || lpad((((${expr}) - 1) % ${USERS} + 1)::text, 5, '0')`;

async function seedUsersAndProducts(db: pg.Client): Promise<void> {
  await db.query(`insert into users (id, role) select 'bench-u' || lpad(g::text, 5, '0'), 'user' from generate_series(1, ${USERS}) g`);
  await db.query(
    `insert into products (id, name, price, kind, stock)
     select g, 'Bench product ' || g, ${PRICE}, 'GOODS', ${STOCK} from generate_series(1, ${PRODUCTS}) g`,
  );
  await db.query(`select setval(pg_get_serial_sequence('products', 'id'), ${PRODUCTS})`);
  // STOCK is what products.take left after the seeded orders: each order that closes puts its 1 back.
}

/**
 * N PENDING orders, id i due at t0 + floor((i − 1) · span / N) ms; odd ids MIXED (300 cents frozen),
 * even ids WECHAT. Then what createOrder leaves beside them: wallets whose frozen is the sum of their
 * orders' parts, a CREDIT per wallet and a FREEZE per MIXED order in the ledger. `bench_due` and
 * `bench_wallets` keep the original deadlines and wallets for the checks afterwards.
 */
async function seedPendingOrders(db: pg.Client, n: number, t0: number, spanMs: number): Promise<void> {
  await db.query(
    `insert into orders (id, order_no, user_id, product_id, quantity, amount, wallet_amount, payment_method, channel, status, expires_at, created_at)
     select g, 'DL20261121' || lpad(g::text, 10, '0'), ${userId('g')}, (g - 1) % ${PRODUCTS} + 1, 1, ${PRICE},
            case when g % 2 = 1 then ${WALLET_PART} else 0 end, case when g % 2 = 1 then 'MIXED' else 'WECHAT' end,
            'H5', 'PENDING', d.due, d.due - interval '30 minutes'
       from generate_series(1, $1::int) g,
            lateral (select to_timestamp(($2::float8 + floor((g - 1) * $3::float8 / $1::int)) / 1000) as due) d`,
    [n, t0, spanMs],
  );
  await db.query(`select setval(pg_get_serial_sequence('orders', 'id'), $1)`, [n]);
  await db.query(`create table bench_due as select id as order_id, expires_at as due_at from orders`);
  await db.query(`alter table bench_due add primary key (order_id)`);
  await db.query(
    `insert into wallets (user_id, balance, frozen)
     select u.id, ${BALANCE}, coalesce(sum(o.wallet_amount) filter (where o.payment_method in ('WALLET', 'MIXED')), 0)
       from users u left join orders o on o.user_id = u.id and o.status = 'PENDING'
      where u.id like 'bench-u%' group by u.id`,
  );
  await db.query(`create table bench_wallets as select user_id, balance as balance0, frozen as frozen0 from wallets`);
  await db.query(`insert into wallet_ledger (user_id, entry, amount) select user_id, 'CREDIT', balance + frozen from wallets`);
  await db.query(
    `insert into wallet_ledger (user_id, order_id, entry, amount)
     select user_id, id, 'FREEZE', wallet_amount from orders where payment_method in ('WALLET', 'MIXED') and wallet_amount > 0`,
  );
  await db.query(`analyze`);
}

/** Index = order id: its original expires_at in ms (NaN for ids that are not bench orders). */
async function loadDue(db: pg.Client, n: number): Promise<Float64Array> {
  const due = new Float64Array(n + 1).fill(NaN);
  const { rows } = await db.query<{ id: string; ms: string }>(`select order_id as id, extract(epoch from due_at) * 1000 as ms from bench_due`);
  for (const r of rows) due[Number(r.id)] = Math.round(Number(r.ms));
  return due;
}

interface WalletCheck {
  seededUsers: number;
  frozenLeft: number;
  walletsNotRestored: number;
  mixedOrders: number;
  unfreezeRows: number;
  unfreezeSum: number;
  frozenSeeded: number;
  expiredMixedWithoutUnfreeze: number;
  ledgerMismatches: number;
  productsWrongStock: number;
  ok: boolean;
}

async function checkWallets(db: pg.Client): Promise<WalletCheck> {
  // Statistics from before the expiry say no order is EXPIRED: without this the anti join below is quadratic.
  await db.query('analyze orders, wallet_ledger, wallets');
  const { rows } = await db.query(`select
      (select count(*) from bench_wallets)::int as seeded_users,
      (select coalesce(sum(w.frozen), 0) from wallets w join bench_wallets b using (user_id))::bigint as frozen_left,
      (select count(*) from wallets w join bench_wallets b using (user_id)
        where w.frozen <> 0 or w.balance <> b.balance0 + b.frozen0)::int as wallets_not_restored,
      (select count(*) from orders where payment_method = 'MIXED')::int as mixed_orders,
      (select count(*) from wallet_ledger where entry = 'UNFREEZE')::int as unfreeze_rows,
      (select coalesce(sum(amount), 0) from wallet_ledger where entry = 'UNFREEZE')::bigint as unfreeze_sum,
      (select sum(frozen0) from bench_wallets)::bigint as frozen_seeded,
      (select count(*) from orders o where o.status = 'EXPIRED' and o.payment_method = 'MIXED'
          and not exists (select 1 from wallet_ledger l where l.order_id = o.id and l.entry = 'UNFREEZE'))::int as expired_mixed_without_unfreeze,
      (select count(*) from wallets w join bench_wallets b using (user_id)
         left join (select user_id, sum(case entry when 'CREDIT' then amount when 'DEBIT' then -amount else 0 end) as net
                      from wallet_ledger group by user_id) l using (user_id)
        where w.balance + w.frozen <> coalesce(l.net, 0))::int as ledger_mismatches,
      (select count(*) from products p
         left join (select product_id, count(*) as k from orders where status <> 'PENDING' group by product_id) x on x.product_id = p.id
        where p.stock <> ${STOCK} + coalesce(x.k, 0))::int as products_wrong_stock`);
  const r = rows[0];
  const c: WalletCheck = {
    seededUsers: r.seeded_users,
    frozenLeft: Number(r.frozen_left),
    walletsNotRestored: r.wallets_not_restored,
    mixedOrders: r.mixed_orders,
    unfreezeRows: r.unfreeze_rows,
    unfreezeSum: Number(r.unfreeze_sum),
    frozenSeeded: Number(r.frozen_seeded),
    expiredMixedWithoutUnfreeze: r.expired_mixed_without_unfreeze,
    ledgerMismatches: r.ledger_mismatches,
    productsWrongStock: r.products_wrong_stock,
    ok: false,
  };
  c.ok =
    c.frozenLeft === 0 &&
    c.walletsNotRestored === 0 &&
    c.unfreezeRows === c.mixedOrders &&
    c.unfreezeSum === c.frozenSeeded &&
    c.expiredMixedWithoutUnfreeze === 0 &&
    c.ledgerMismatches === 0 &&
    c.productsWrongStock === 0;
  return c;
}

// ---------------------------------------------------------------------------------------------
// Phases 1 and 2: expiry through the running server
// ---------------------------------------------------------------------------------------------

type Mode = 'spread' | BacklogMode;

interface ExpiryResult {
  mode: Mode;
  n: number;
  mixed: number;
  batch: number;
  seedMs: number;
  startupMs: number;
  /** How long before the first expires_at the subscriber was ready (negative: it was late). */
  readyBeforeFirstDueMs: number | null;
  expired: number;
  pendingLeft: number;
  expiredEvents: number;
  eventDuplicates: number;
  unpublishedEvents: number;
  serverEarly: number;
  server: { p50: number; p99: number; max: number };
  client: { heard: number; duplicates: number; early: number; wrongStatus: number; p50: number; p99: number; max: number } | null;
  /** The last expiry's transaction start (closed_at) after the last expires_at. */
  lastClosedAfterLastDueMs: number;
  /** Backlog: from the instant they were due (instant) or the first batch (overdue) to the last closed_at. */
  drainMs: number;
  perSecond: number;
  wallets: WalletCheck;
}

async function runExpiry(mode: Mode, batch: number): Promise<ExpiryResult> {
  const { startApp } = await import('../src/app.js');
  const { signToken, tokenKeys } = await import('../src/auth.js');
  const { pino } = await import('pino');
  return withDatabase(async (databaseUrl, db) => {
    const orm = await migrateSchema(databaseUrl);
    await orm.close();
    await seedUsersAndProducts(db);
    const seedStarted = Date.now();
    // spread: over SPREAD_MS from LEAD_MS on; instant: all at LEAD_MS; overdue: all a minute ago.
    const t0 = mode === 'overdue' ? seedStarted - 60_000 : seedStarted + LEAD_MS;
    const span = mode === 'spread' ? SPREAD_MS : 0;
    await seedPendingOrders(db, ORDERS, t0, span);
    const due = await loadDue(db, ORDERS);
    const seedMs = Date.now() - seedStarted;
    const lastDue = t0 + Math.floor(((ORDERS - 1) * span) / ORDERS);

    // --clients share the admin's token: WS_MAX_SOCKETS_PER_USER (20) raised to their number.
    const config = benchConfig(databaseUrl, { ORDER_EXPIRY_BATCH_SIZE: String(batch), WS_MAX_SOCKETS_PER_USER: String(Math.max(20, CLIENTS)), ...(LANES ? { ORDER_EXPIRY_LANES: LANES } : {}) });
    const startStarted = Date.now();
    const app: App = await startApp(config, { log: pino({ level: 'warn' }) });
    const startupMs = Date.now() - startStarted;
    console.log(`  seeded ${ORDERS} orders in ${seedMs} ms; startApp took ${startupMs} ms`);

    let worker: Worker | undefined;
    const handlers = new Map<string, (m: any) => void>();
    const nextMessage = (type: string) => new Promise<any>((resolve) => handlers.set(type, resolve));
    let readyBeforeFirstDueMs: number | null = null;
    let clientDone: Promise<ClientReport> | undefined;
    let clientReport: ClientReport | undefined;
    if (mode !== 'overdue') {
      const token = signToken(tokenKeys(config), 'bench-admin', 'admin');
      worker = new Worker(new URL(import.meta.url), {
        workerData: { url: app.url.replace('http', 'ws'), token, clients: CLIENTS, due },
      });
      worker.on('message', (m) => {
        const h = handlers.get(m.type);
        handlers.delete(m.type);
        h?.(m);
      });
      worker.on('error', (e) => console.error('client worker failed', e));
      const ready = nextMessage('ready');
      clientDone = nextMessage('done');
      await Promise.race([ready, sleep(30_000).then(() => Promise.reject(new Error('the subscriber did not connect in 30 s')))]);
      readyBeforeFirstDueMs = t0 - Date.now();
      if (readyBeforeFirstDueMs < 0) {
        console.warn(`  !! the subscriber was ready ${-readyBeforeFirstDueMs} ms AFTER the first expires_at: raise --lead`);
      } else {
        console.log(`  subscriber ready ${readyBeforeFirstDueMs} ms before the first expires_at`);
      }
      void clientDone.then((r) => (clientReport = r));
    }

    // Wait: until the subscriber heard everything (or, overdue, nothing is pending), or the timeout.
    const deadline = lastDue + TIMEOUT_MS;
    let drainedAt: number | undefined;
    let lastLog = 0;
    for (;;) {
      const { rows } = await db.query<{ n: number }>(`select count(*)::int as n from orders where status = 'PENDING'`);
      const pending = rows[0].n;
      if (pending === 0 && drainedAt === undefined) drainedAt = Date.now();
      if (Date.now() - lastLog >= 10_000) {
        lastLog = Date.now();
        let heard = '';
        if (worker) {
          const p = nextMessage('progress');
          worker.postMessage('progress');
          heard = `, heard ${(await p).heard}`;
        }
        console.log(`  t${Date.now() >= t0 ? '+' : '−'}${secs(Math.abs(Date.now() - t0))} s: pending ${pending}${heard}`);
      }
      if (mode === 'overdue' ? pending === 0 : clientReport) break;
      if (drainedAt !== undefined && Date.now() - drainedAt > 20_000) {
        console.warn('  !! nothing pending for 20 s but the subscriber has not heard every order: reporting what it has');
        break;
      }
      if (Date.now() > deadline) {
        console.warn(`  !! timeout: ${secs(TIMEOUT_MS)} s after the last expires_at, ${pending} orders still pending`);
        break;
      }
      await sleep(500);
    }
    if (worker && !clientReport) {
      worker.postMessage('report');
      clientReport = await clientDone;
    }

    // Server side, from the database.
    const late = (
      await db.query<{ ms: string }>(
        `select extract(epoch from o.closed_at - d.due_at) * 1000 as ms from orders o join bench_due d on d.order_id = o.id
          where o.status = 'EXPIRED' order by 1`,
      )
    ).rows.map((r) => Math.round(Number(r.ms)));
    const {
      rows: [s],
    } = await db.query(`select
        (select count(*) from orders where status = 'EXPIRED')::int as expired,
        (select count(*) from orders where status = 'PENDING')::int as pending,
        (select count(*) from orders where payment_method = 'MIXED')::int as mixed,
        (select extract(epoch from min(closed_at)) * 1000 from orders where status = 'EXPIRED') as first_closed,
        (select extract(epoch from max(closed_at)) * 1000 from orders where status = 'EXPIRED') as last_closed,
        (select count(*) from ${ORDER_EXPIRED_EVENTS_SQL} e)::int as expired_events,
        (select count(distinct order_id) from ${ORDER_EXPIRED_EVENTS_SQL} e)::int as expired_event_orders,
        (select count(*) from outbox_events where published_at is null)::int as unpublished`);
    const wallets = await checkWallets(db);

    if (worker) {
      worker.postMessage('close');
      await new Promise((r) => worker.once('exit', r));
    }
    await app.stop();

    const firstClosed = Number(s.first_closed);
    const lastClosed = Number(s.last_closed);
    const drainStart = mode === 'overdue' ? firstClosed : t0;
    const drainMs = Math.round(lastClosed - drainStart);
    const client = clientReport
      ? (() => {
          const l = clientReport.lateness.sort((a, b) => a - b);
          return {
            heard: clientReport.heard,
            duplicates: clientReport.duplicates,
            early: clientReport.early,
            wrongStatus: clientReport.wrongStatus,
            p50: pct(l, 50),
            p99: pct(l, 99),
            max: l[l.length - 1],
          };
        })()
      : null;
    return {
      mode,
      n: ORDERS,
      mixed: s.mixed,
      batch,
      seedMs,
      startupMs,
      readyBeforeFirstDueMs,
      expired: s.expired,
      pendingLeft: s.pending,
      expiredEvents: s.expired_events,
      eventDuplicates: s.expired_events - s.expired_event_orders,
      unpublishedEvents: s.unpublished,
      serverEarly: late.filter((x) => x < 0).length,
      server: { p50: pct(late, 50), p99: pct(late, 99), max: late[late.length - 1] },
      client,
      lastClosedAfterLastDueMs: Math.round(lastClosed - lastDue),
      drainMs,
      perSecond: Math.round((s.expired * 1000) / Math.max(1, drainMs)),
      wallets,
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Phase 3: the expiry's queries at 1,000,000 orders
// ---------------------------------------------------------------------------------------------

interface QueryTiming {
  name: string;
  sql: string;
  /** EXPLAIN (ANALYZE, BUFFERS) "Execution Time", ms. */
  execMedian: number;
  execMax: number;
  planMedian: number;
  /** The plain statement's round trip from this process (pg client on 127.0.0.1), ms. */
  roundTripMedian: number;
  roundTripMax: number;
  firstRunExec: number;
  rows: number;
  usesIndex: boolean;
  plan: string;
}

interface MillionResult {
  total: number;
  pendingFuture: number;
  pendingOverdue: number;
  seedMs: number;
  tableMb: number;
  indexMb: number;
  queries: QueryTiming[];
}

async function runMillion(): Promise<MillionResult> {
  const { dueOrdersQuery, nextExpiryQuery, pendingCountQuery } = await import('../src/services/orders/rules.js');
  return withDatabase(async (databaseUrl, db) => {
    const orm = await migrateSchema(databaseUrl);
    try {
      await seedUsersAndProducts(db);
      const started = Date.now();
      const settled = MILLION - PENDING_FUTURE - PENDING_OVERDUE;
      // Ids 1..settled: settled long ago (70% PAID, 15% CANCELLED, 15% EXPIRED), expires_at null.
      // Then the overdue PENDING ones (due over the last 10 minutes), then the future ones (next 30 minutes).
      await db.query(
        `insert into orders (id, order_no, user_id, product_id, quantity, amount, wallet_amount, payment_method, channel,
                             status, expires_at, cancel_reason, paid_at, closed_at, created_at)
         select g, 'DL20261121' || lpad(g::text, 10, '0'), ${userId('g')}, (g - 1) % ${PRODUCTS} + 1, 1, ${PRICE},
                case when g % 2 = 1 then ${WALLET_PART} else 0 end, case when g % 2 = 1 then 'MIXED' else 'WECHAT' end, 'H5',
                s.status,
                case when g > $1::int + $2::int then now() + interval '60 seconds' + (g - $1::int - $2::int) * interval '1800 seconds' / $3::int
                     when g > $1::int then now() - interval '600 seconds' + (g - $1::int) * interval '599 seconds' / $2::int end,
                case when s.status in ('CANCELLED', 'EXPIRED') then 'bench' end,
                case when s.status = 'PAID' then c.created + interval '1 minute' end,
                case when s.status in ('CANCELLED', 'EXPIRED') then c.created + interval '30 minutes' end,
                c.created
           from generate_series(1, $1::int + $2::int + $3::int) g,
                lateral (select case when g > $1::int then 'PENDING' when g % 20 < 14 then 'PAID'
                                     when g % 20 < 17 then 'CANCELLED' else 'EXPIRED' end as status) s,
                lateral (select now() - interval '90 days' * (1 - g::float8 / ($1::int + $2::int + $3::int)) as created) c`,
        [settled, PENDING_OVERDUE, PENDING_FUTURE],
      );
      await db.query(`select setval(pg_get_serial_sequence('orders', 'id'), $1)`, [MILLION]);
      await db.query('analyze orders');
      const seedMs = Date.now() - started;
      const {
        rows: [size],
      } = await db.query(
        `select pg_table_size('orders') / 1048576.0 as table_mb, pg_relation_size('orders_expires_at_status_idx') / 1048576.0 as index_mb`,
      );
      const now = new Date();
      // The exact statements the server sends, built by the same functions src/ uses (no skipped ids, as usual).
      const em = orm.em.fork();
      // A locking query can only be built inside a transaction; its text is all that is kept.
      const expireDueSql = await em.fork().transactional((tem) => dueOrdersQuery(tem, now, 100).getFormattedQuery());
      const statements = [
        { name: 'expireDue select (limit 100, for update skip locked)', sql: expireDueSql, tx: true },
        { name: 'nextDeadline', sql: nextExpiryQuery(em).getFormattedQuery(), tx: false },
        { name: 'countPending (start-up recovery only)', sql: pendingCountQuery(em).getFormattedQuery(), tx: false },
      ];
      const queries: QueryTiming[] = [];
      for (const st of statements) {
        const exec: number[] = [];
        const planning: number[] = [];
        const trips: number[] = [];
        let plan = '';
        let firstRunExec = NaN;
        let rows = 0;
        for (let i = 0; i <= RUNS; i++) {
          if (st.tx) await db.query('begin');
          const res = await db.query(`explain (analyze, buffers) ${st.sql}`);
          if (st.tx) await db.query('rollback');
          plan = res.rows.map((r) => r['QUERY PLAN']).join('\n');
          const e = Number(/Execution Time: ([\d.]+) ms/.exec(plan)?.[1]);
          if (i === 0) firstRunExec = e;
          else {
            exec.push(e);
            planning.push(Number(/Planning Time: ([\d.]+) ms/.exec(plan)?.[1]));
          }
        }
        for (let i = 0; i < RUNS; i++) {
          if (st.tx) await db.query('begin');
          const t = performance.now();
          const res = await db.query(st.sql);
          trips.push(performance.now() - t);
          rows = res.rowCount ?? 0;
          if (st.tx) await db.query('rollback');
        }
        queries.push({
          name: st.name,
          sql: st.sql,
          execMedian: median(exec),
          execMax: Math.max(...exec),
          planMedian: median(planning),
          roundTripMedian: median(trips),
          roundTripMax: Math.max(...trips),
          firstRunExec,
          rows,
          usesIndex: plan.includes('orders_expires_at_status_idx'),
          plan,
        });
      }
      return {
        total: MILLION,
        pendingFuture: PENDING_FUTURE,
        pendingOverdue: PENDING_OVERDUE,
        seedMs,
        tableMb: Math.round(Number(size.table_mb)),
        indexMb: Math.round(Number(size.index_mb)),
        queries,
      };
    } finally {
      await orm.close();
    }
  });
}

// ---------------------------------------------------------------------------------------------

const modeName = (m: Mode) =>
  m === 'spread' ? `spread over ${SPREAD_MS / 1000} s` : m === 'instant' ? 'backlog: all due at one instant' : 'backlog: overdue at start-up';

async function main(): Promise<void> {
  stopAfter(MAX_MS);

  console.log(
    `Deadline order-expiry benchmark: ${ORDERS} orders (odd ids MIXED with ${WALLET_PART} cents frozen, even ids WECHAT), ${USERS} users, ` +
      `${CLIENTS} admin graphql-ws client(s) on orderExpired`,
  );
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
  const startedAll = Date.now();
  const results: ExpiryResult[] = [];
  const runs: Array<[Mode, number]> = [];
  if (!flag('skip-spread')) runs.push(['spread', 100]);
  if (!flag('skip-backlog')) for (const mode of BACKLOG_MODES) for (const b of BATCHES) runs.push([mode, b]);
  for (const [mode, batch] of runs) {
    console.log(`running ${modeName(mode)}, batch ${batch} ...`);
    const r = await runExpiry(mode, batch);
    results.push(r);
    console.log(`  ${JSON.stringify(r)}`);
  }
  let million: MillionResult | undefined;
  if (!flag('skip-million')) {
    console.log(`running the expiry queries at ${MILLION} orders ...`);
    million = await runMillion();
    console.log(`  seeded in ${million.seedMs} ms; orders ${million.tableMb} MB, orders_expires_at_status_idx ${million.indexMb} MB`);
  }

  if (results.length > 0) {
    console.log('\n| run | orders (MIXED) | batch | expired | ORDER_EXPIRED events (dup) | wallets consistent | server lateness p50 / p99 / max ms | client heard (dup, early) | client lateness p50 / p99 / max ms | last closed after last due (ms) | drain s | expiries/s |');
    console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const r of results) {
      const c = r.client;
      console.log(
        `| ${modeName(r.mode)} | ${r.n} (${r.mixed}) | ${r.batch} | ${r.expired} | ${r.expiredEvents} (${r.eventDuplicates}) | ${r.wallets.ok ? 'yes' : '**NO**'} | ` +
          `${r.server.p50} / ${r.server.p99} / ${r.server.max} | ${c ? `${c.heard} (${c.duplicates}, ${c.early})` : '–'} | ` +
          `${c ? `${c.p50} / ${c.p99} / ${c.max}` : '–'} | ${r.lastClosedAfterLastDueMs} | ` +
          `${r.mode === 'spread' ? '–' : secs(r.drainMs)} | ${r.mode === 'spread' ? '–' : r.perSecond} |`,
      );
    }
    console.log('\nWallet checks (seeded users):');
    for (const r of results) {
      const w = r.wallets;
      console.log(
        `  ${modeName(r.mode)}, batch ${r.batch}: sum(frozen) ${w.frozenLeft} over ${w.seededUsers} wallets, ${w.walletsNotRestored} not restored, ` +
          `UNFREEZE rows ${w.unfreezeRows}/${w.mixedOrders} MIXED orders, ${w.unfreezeSum}/${w.frozenSeeded} cents, ` +
          `${w.expiredMixedWithoutUnfreeze} expired MIXED without UNFREEZE, ${w.ledgerMismatches} ledger mismatches, ` +
          `${w.productsWrongStock} products with wrong stock, ${r.pendingLeft} pending left, ${r.unpublishedEvents} unpublished events, ` +
          `${r.serverEarly} expired early; seed ${r.seedMs} ms, startApp ${r.startupMs} ms` +
          (r.readyBeforeFirstDueMs === null ? '' : `, subscriber ready ${r.readyBeforeFirstDueMs} ms before the first due`),
      );
    }
  }
  if (million) {
    console.log(
      `\nQueries at ${million.total} orders (${million.pendingFuture} PENDING due later, ${million.pendingOverdue} PENDING overdue, the rest settled with expires_at null), ` +
        `median of ${RUNS} runs after one warm-up:`,
    );
    console.log('| query | rows | uses orders_expires_at_status_idx | execution ms median / max | planning ms median | round trip ms median / max | first (cold) run ms |');
    console.log('|---|---|---|---|---|---|---|');
    for (const q of million.queries) {
      console.log(
        `| ${q.name} | ${q.rows} | ${q.usesIndex ? 'yes' : 'no'} | ${q.execMedian.toFixed(3)} / ${q.execMax.toFixed(3)} | ${q.planMedian.toFixed(3)} | ` +
          `${q.roundTripMedian.toFixed(3)} / ${q.roundTripMax.toFixed(3)} | ${q.firstRunExec.toFixed(3)} |`,
      );
    }
    for (const q of million.queries) console.log(`\n${q.name}:\n${q.sql}\n${q.plan}`);
  }

  console.log('\nTargets:');
  const spread = results.filter((r) => r.mode === 'spread');
  for (const r of spread) {
    const p99 = Math.max(r.server.p99, r.client?.p99 ?? 0);
    console.log(`  p99 lateness < 1000 ms (spread): server ${r.server.p99} ms, client ${r.client?.p99 ?? '–'} ms → ${p99 < 1000 ? 'met' : 'MISSED'}`);
  }
  for (const r of results.filter((r) => r.mode !== 'spread')) {
    console.log(`  ≥ 15,000 expiries/s (issue 12; ${modeName(r.mode)}, batch ${r.batch}): ${r.perSecond}/s → ${r.perSecond >= 15_000 ? 'met' : 'MISSED'}`);
  }
  for (const r of results) {
    const clean = r.wallets.ok && r.eventDuplicates === 0 && (r.client?.duplicates ?? 0) === 0 && r.expired === r.n && r.serverEarly === 0;
    if (!clean) console.log(`  !! ${modeName(r.mode)}, batch ${r.batch}: not every order expired exactly once with consistent wallets`);
  }
  if (million) {
    for (const q of million.queries.slice(0, 2)) {
      console.log(`  < 5 ms at ${million.total} orders (${q.name}): ${q.execMedian.toFixed(3)} ms → ${q.execMedian < 5 ? 'met' : 'MISSED'}`);
    }
  }
  console.log(`\ntotal ${secs(Date.now() - startedAll)} s`);
}

if (isMainThread) {
  await main();
  process.exit(0);
} else {
  clientThread();
}

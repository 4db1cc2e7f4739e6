/**
 * npm run bench:chaos — heard once under SIGKILL (issue 27, "Heard once, proven at volume").
 *
 * One database, one Redis prefix, three server processes (`dist/src/main.js`, NODE_ENV=production): A
 * and B run the jobs, W runs no periodic job (ENABLE_CRON=false) and is where the watcher listens: an
 * admin graphql-ws client on W subscribes `auctionEnded` and `orderExpired`. As every instance does,
 * W settles due deadlines on its own timers (and runs the wake-up jobs its Agenda picks up), so the
 * watcher hears some batches at their commit on W itself and the rest through Redis.
 *
 * Each round: --auctions auctions and --orders unpaid orders come due at one instant T, about --lead
 * seconds ahead (armed through the API: a createOrder and a createAuction on each of A and B, the rest
 * seeded with SQL at the same T); A or B (alternately) is SIGKILLed at a random moment in
 * [T + --kill-from, T + --kill-to] ms; the round waits until every one of them is settled, the outbox
 * has nothing unpublished and the watcher has heard each (or --timeout), then --quiet ms more for late
 * copies; then the killed instance is started again for the next round.
 *
 * Reported per round and in total: expected (settled in the database), heard (distinct entities the
 * watcher heard), lost, duplicates (entities heard more than once). For each duplicate: the entity,
 * each event id it was heard with, the outbox row holding that id and which instance published that
 * row, after commit or by the sweep (from the servers' debug lines `outbox: publishing after commit`
 * and `outbox: republishing`, and `deadlines settled`). Talks only to 127.0.0.1; bounded by
 * --max-minutes.
 *
 * Options (`--name value` or `--name=value`): --rounds 50 --auctions 60 --orders 60 --lead 3
 *   --kill-from -50 --kill-to 250 --batch 20 (ORDER_EXPIRY_BATCH_SIZE and AUCTION_END_BATCH_SIZE;
 *   0 = the server's defaults) --sweep 2 (OUTBOX_SWEEP_SECONDS) --republish-after 1
 *   (OUTBOX_REPUBLISH_AFTER_SECONDS) --timeout 150 (seconds after T; a killed instance holding the
 *   outbox-sweep job's lock stops the sweep for JOB_LOCK_LIFETIME_SECONDS) --quiet 1500
 *   --lock-lifetime 0 (JOB_LOCK_LIFETIME_SECONDS of the three; 0 = the server's 120: a round whose
 *   killed instance held that lock and left a row unpublished waits ~2 minutes for the sweep, about
 *   1 round in 20) --max-minutes <rounds × 2 + 5>
 *   --keep-logs (the servers' logs stay in the temporary directory printed at the start)
 *   --restart-now (the killed instance is started again at once, not after the round)
 *   --watcher-serves-only (W settles nothing: DEADLINE_TIMERS=false and its scheduler stopped after
 *   start-up, this file with --serve-watcher; every batch then reaches the watcher through Redis)
 */
import 'reflect-metadata';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdtempSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient, type Client } from 'graphql-ws';
import type pg from 'pg';
import WebSocket from 'ws';
import { freePort, SERVER_NODE_FLAGS, sleep, stopAfter, withDatabase } from './support.js';
import { AUCTION_ENDED_EVENTS_SQL } from './outbox-events.js';
import { ORDER_EXPIRED_EVENTS_SQL } from './outbox-events.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.findIndex((a) => a === `--${name}` || a.startsWith(`--${name}=`));
  if (i < 0) return fallback;
  const a = process.argv[i];
  return a.includes('=') ? a.slice(a.indexOf('=') + 1) : (process.argv[i + 1] ?? fallback);
}

const SECRET = 'bench-secret-0123456789abcdef';

// ---------------------------------------------------------------------------------------------
// The benchmark
// ---------------------------------------------------------------------------------------------

interface Heard {
  eventId: string;
  at: number;
}

interface Incarnation {
  label: string;
  pid: number;
  log: string;
}

class Server {
  proc: ChildProcess | undefined;
  incarnations: Incarnation[] = [];
  private out: WriteStream | undefined;
  constructor(
    readonly name: string,
    readonly port: number,
    private readonly env: Record<string, string>,
    private readonly dir: string,
    private readonly args: string[],
  ) {}
  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get label(): string {
    return this.incarnations.at(-1)?.label ?? this.name;
  }
  async start(): Promise<void> {
    const label = `${this.name}${this.incarnations.length + 1}`;
    const log = join(this.dir, `${label}.log`);
    this.out = createWriteStream(log);
    const proc = spawn(process.execPath, this.args, {
      env: { ...process.env, ...this.env, PORT: String(this.port), INSTANCE_NAME: `chaos-${label}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    proc.stdout.pipe(this.out, { end: false });
    proc.stderr.pipe(this.out, { end: false });
    this.incarnations.push({ label, pid: proc.pid!, log });
    const end = Date.now() + 60_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`${label} exited (${proc.exitCode}) while starting: see ${log}`);
      const ok = await fetch(`${this.base}/health`).then((r) => r.ok, () => false);
      if (ok) return;
      if (Date.now() > end) throw new Error(`${label} did not start: see ${log}`);
      await sleep(100);
    }
  }
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  }
}


interface RoundResult {
  round: number;
  victim: string;
  killAtMs: number;
  expected: number;
  heard: number;
  lost: number;
  duplicates: number;
  settleMs: number;
  unpublishedLeft: number;
  /** Its entities, and when the round was closed (copies heard after that are late). */
  keys: string[];
  endedAt: number;
}

interface Publication {
  instance: string;
  via: 'commit' | 'sweep';
}

async function main(): Promise<void> {
  const ROUNDS = Number(arg('rounds', '50'));
  const AUCTIONS = Number(arg('auctions', '60'));
  const ORDERS = Number(arg('orders', '60'));
  const LEAD_S = Number(arg('lead', '3'));
  const KILL_FROM = Number(arg('kill-from', '-50'));
  const KILL_TO = Number(arg('kill-to', '250'));
  const BATCH = Number(arg('batch', '20'));
  const SWEEP_S = arg('sweep', '2');
  const REPUBLISH_S = arg('republish-after', '1');
  const TIMEOUT_MS = Number(arg('timeout', '150')) * 1000;
  const QUIET_MS = Number(arg('quiet', '1500'));
  const LOCK_LIFETIME_S = Number(arg('lock-lifetime', '0'));
  const MAX_MIN = Number(arg('max-minutes', String(Math.ceil(ROUNDS * 2 + 5))));
  const KEEP_LOGS = process.argv.includes('--keep-logs');
  const WATCHER_SERVES_ONLY = process.argv.includes('--watcher-serves-only');
  const RESTART_NOW = process.argv.includes('--restart-now');
  stopAfter(MAX_MIN * 60_000);

  const began = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'chaos-'));
  console.log(`Chaos: ${ROUNDS} rounds; each ${AUCTIONS} auctions + ${ORDERS} orders due at one instant, one of two job instances SIGKILLed in [T${KILL_FROM >= 0 ? '+' : ''}${KILL_FROM}, T+${KILL_TO}] ms`);
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, load ${loadavg().map((l) => l.toFixed(2)).join(' ')}, Node ${process.version}, ${new Date().toISOString()}`);
  console.log(
    `watcher: ${WATCHER_SERVES_ONLY ? 'serves clients only' : 'settles on its timers like every instance'}; killed instance restarted ${RESTART_NOW ? 'at once' : 'after the round'}; JOB_LOCK_LIFETIME_SECONDS ${LOCK_LIFETIME_S > 0 ? LOCK_LIFETIME_S : "the server's"}`,
  );
  console.log(`servers' logs: ${dir}`);

  const result = await withDatabase(async (databaseUrl, db) => {
    const prefix = `bench:chaos:${randomBytes(4).toString('hex')}`;
    const common: Record<string, string> = {
      NODE_ENV: 'production',
      DATABASE_URL: databaseUrl,
      JWT_SECRET: SECRET,
      REDIS_PREFIX: prefix,
      REDIS_URL: 'redis://127.0.0.1:6379',
      LOG_LEVEL: 'debug',
      ...(LOCK_LIFETIME_S > 0 ? { JOB_LOCK_LIFETIME_SECONDS: String(LOCK_LIFETIME_S) } : {}),
    };
    const jobs: Record<string, string> = {
      ...common,
      ORDER_EXPIRE_MINUTES: String(LEAD_S / 60),
      OUTBOX_SWEEP_SECONDS: SWEEP_S,
      OUTBOX_REPUBLISH_AFTER_SECONDS: REPUBLISH_S,
      ...(BATCH > 0 ? { ORDER_EXPIRY_BATCH_SIZE: String(BATCH), AUCTION_END_BATCH_SIZE: String(BATCH) } : {}),
    };
    const here = fileURLToPath(import.meta.url);
    // W settles like every instance; --watcher-serves-only: it settles nothing (no timers, its scheduler stopped).
    const watcher = WATCHER_SERVES_ONLY
      ? new Server('W', await freePort(), { ...common, LOG_LEVEL: 'info', ENABLE_CRON: 'false', DEADLINE_TIMERS: 'false' }, dir, [...SERVER_NODE_FLAGS, here, '--serve-watcher'])
      : new Server('W', await freePort(), { ...jobs, ENABLE_CRON: 'false' }, dir, [...SERVER_NODE_FLAGS, 'dist/src/main.js']);
    const a = new Server('A', await freePort(), jobs, dir, [...SERVER_NODE_FLAGS, 'dist/src/main.js']);
    const b = new Server('B', await freePort(), jobs, dir, [...SERVER_NODE_FLAGS, 'dist/src/main.js']);
    const servers = [watcher, a, b];
    // Interrupted (Ctrl-C, SIGTERM, --max-minutes: `stopAfter` exits): no server process is left behind.
    process.on('exit', () => servers.forEach((s) => s.proc?.kill('SIGKILL')));
    let client: Client | undefined;
    try {
      await watcher.start(); // migrates, before anything is due
      await a.start();
      await b.start();

      const { signToken, tokenKeys } = await import('../src/auth.js');
      const { loadConfig } = await import('../src/config.js');
      const keys = tokenKeys(loadConfig({ ...common, PORT: '0' }));
      const bearer = (user: string, role: 'user' | 'admin' = 'user') => `Bearer ${signToken(keys, user, role)}`;

      await db.query(`insert into users (id, role) values ('chaos-seller', 'user'), ('chaos-buyer', 'user'), ('chaos-admin', 'admin')`);
      const { rows: productRows } = await db.query<{ id: string }>(`insert into products (name, price, kind) values ('Chaos goods', 100, 'GOODS') returning id`);
      const productId = String(productRows[0].id);

      // The watcher: every event it hears, by entity.
      const heard = new Map<string, Heard[]>();
      const hear = (key: string, eventId: string) => {
        const list = heard.get(key) ?? [];
        list.push({ eventId, at: Date.now() });
        heard.set(key, list);
      };
      let clientTrouble: string | undefined;
      client = createClient({
        url: watcher.base.replace('http', 'ws') + '/graphql',
        webSocketImpl: WebSocket,
        connectionParams: { authorization: bearer('chaos-admin', 'admin') },
        retryAttempts: 0,
        lazy: false,
        on: { closed: (e) => void (clientTrouble ??= `watcher socket closed: ${JSON.stringify((e as { code?: number }).code)}`) },
      });
      const sinks = {
        error: (e: unknown) => void (clientTrouble ??= `subscription error: ${JSON.stringify(e)}`),
        complete: () => undefined,
      };
      client.subscribe<{ auctionEnded: { eventId: string; auction: { id: string } } }>(
        { query: 'subscription { auctionEnded { eventId auction { id } } }' },
        { next: ({ data }) => hear(`auction:${data!.auctionEnded.auction.id}`, data!.auctionEnded.eventId), ...sinks },
      );
      client.subscribe<{ orderExpired: { eventId: string; order: { id: string } } }>(
        { query: 'subscription { orderExpired { eventId order { id } } }' },
        { next: ({ data }) => hear(`order:${data!.orderExpired.order.id}`, data!.orderExpired.eventId), ...sinks },
      );
      await new Promise<void>((resolve, reject) => {
        const off = client!.on('connected', () => (off(), resolve()));
        setTimeout(() => reject(new Error('the watcher did not connect')), 10_000);
      });
      await sleep(1000); // the two subscriptions, sent with the connection, registered on W

      const gql = async (server: Server, user: string, query: string, variables: Record<string, unknown>) => {
        const res = await fetch(`${server.base}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: bearer(user) },
          body: JSON.stringify({ query, variables }),
        });
        const body = (await res.json()) as { data?: Record<string, any>; errors?: unknown };
        if (body.errors) throw new Error(`${server.label}: ${JSON.stringify(body.errors)}`);
        return body.data!;
      };

      const rounds: RoundResult[] = [];
      const roundOf = new Map<string, number>();
      for (let round = 1; round <= ROUNDS; round++) {
        // Two arming orders (a WALLET order each, through A and through B) put the order-expiry wake-up
        // at their expiresAt; two auctions created for the same instant arm auction-end there.
        const armUsers = [a, b].map((s) => `chaos-r${round}-${s.name.toLowerCase()}`);
        await db.query(`insert into users (id, role) select u, 'user' from unnest($1::text[]) u`, [armUsers]);
        await db.query(`insert into wallets (user_id, balance, frozen) select u, 1000, 0 from unnest($1::text[]) u`, [armUsers]);
        const CREATE_ORDER = 'mutation($i: CreateOrderInput!) { createOrder(input: $i) { id expiresAt } }';
        const armOrders = await Promise.all(
          [a, b].map((s, i) => gql(s, armUsers[i], CREATE_ORDER, { i: { productId, paymentMethod: 'WALLET', quantity: 1 } })),
        );
        const T = Math.min(...armOrders.map((d) => new Date(d.createOrder.expiresAt).getTime()));
        const CREATE_AUCTION = 'mutation($i: CreateAuctionInput!) { createAuction(input: $i) { id } }';
        const armAuctions = await Promise.all(
          [a, b].map((s) =>
            gql(s, 'chaos-seller', CREATE_AUCTION, {
              i: { nftId: 'nft', title: `chaos r${round}`, startingPrice: 100, minIncrement: 10, endTime: new Date(T).toISOString(), softCloseSeconds: 0 },
            }),
          ),
        );
        const { rows: auctionRows } = await db.query<{ id: string }>(
          `insert into auctions (seller_id, nft_id, title, starting_price, min_increment, end_time, soft_close_seconds)
           select 'chaos-seller', 'nft', $2, 100, 10, $3, 0 from generate_series(1, $1::int) returning id`,
          [AUCTIONS, `chaos r${round}`, new Date(T)],
        );
        const { rows: orderRows } = await db.query<{ id: string }>(
          `insert into orders (order_no, user_id, product_id, quantity, amount, wallet_amount, payment_method, channel, status, expires_at)
           select 'CHAOS' || $2::int || '-' || g, 'chaos-buyer', $3, 1, 100, 0, 'WECHAT', 'H5', 'PENDING', $4 from generate_series(1, $1::int) g returning id`,
          [ORDERS, round, productId, new Date(T)],
        );
        const auctionIds = [...auctionRows.map((r) => String(r.id)), ...armAuctions.map((d) => String(d.createAuction.id))];
        const orderIds = [...orderRows.map((r) => String(r.id)), ...armOrders.map((d) => String(d.createOrder.id))];
        const keys = [...auctionIds.map((id) => `auction:${id}`), ...orderIds.map((id) => `order:${id}`)];
        for (const k of keys) roundOf.set(k, round);

        const victim = round % 2 === 1 ? a : b;
        const victimLabel = victim.label;
        const killAtMs = Math.round(KILL_FROM + Math.random() * (KILL_TO - KILL_FROM));
        await sleep(T + killAtMs - Date.now());
        await victim.kill();
        // --restart-now: started again at once, its start-up recovery beside the others' settling (as bench:failover).
        const restarting = RESTART_NOW ? victim.start() : undefined;

        // Settled, published, heard: or the timeout.
        const deadline = T + TIMEOUT_MS;
        let settledAt = 0;
        let unpublished = 0;
        for (;;) {
          const { rows } = await db.query<{ a: string; o: string; u: string }>(
            `select (select count(*) from auctions where id = any($1::bigint[]) and status = 'ENDED') as a,
                    (select count(*) from orders where id = any($2::bigint[]) and status = 'EXPIRED') as o,
                    (select count(*) from outbox_events where published_at is null) as u`,
            [auctionIds, orderIds],
          );
          const settled = Number(rows[0].a) + Number(rows[0].o) === keys.length;
          if (settled && !settledAt) settledAt = Date.now();
          unpublished = Number(rows[0].u);
          if (settled && unpublished === 0 && keys.every((k) => heard.has(k))) break;
          if (Date.now() > deadline) break;
          await sleep(200);
        }
        await sleep(QUIET_MS);
        const expected = await settledKeys(db, auctionIds, orderIds);
        const r: RoundResult = {
          round,
          victim: victimLabel,
          killAtMs,
          expected: expected.length,
          heard: expected.filter((k) => heard.has(k)).length,
          lost: expected.filter((k) => !heard.has(k)).length,
          duplicates: keys.filter((k) => (heard.get(k)?.length ?? 0) > 1).length,
          settleMs: settledAt ? settledAt - T : NaN,
          unpublishedLeft: unpublished,
          keys: expected,
          endedAt: Date.now(),
        };
        rounds.push(r);
        console.log(
          `round ${String(round).padStart(3)}: ${victimLabel} killed at T${killAtMs >= 0 ? '+' : ''}${killAtMs} ms | expected ${r.expected} | heard ${r.heard} | lost ${r.lost} | duplicates ${r.duplicates}` +
            ` | all settled at T+${r.settleMs} ms${unpublished > 0 ? ` | ${unpublished} outbox rows unpublished at the timeout` : ''}${clientTrouble ? ` | ${clientTrouble}` : ''}`,
        );
        await (restarting ?? victim.start());
      }

      // Late copies of any round count too.
      await sleep(QUIET_MS);
      const all = [...roundOf.keys()];
      const { rows: settledRows } = await db.query<{ k: string }>(
        `select 'auction:' || id as k from auctions where title like 'chaos r%' and status = 'ENDED'
          union all select 'order:' || id from orders where status = 'EXPIRED'`,
      );
      const expectedAll = new Set(settledRows.map((r) => r.k));
      const dups = all.filter((k) => (heard.get(k)?.length ?? 0) > 1);
      const lost = [...expectedAll].filter((k) => !heard.has(k));
      const unheardOf = [...heard.keys()].filter((k) => !expectedAll.has(k));
      // Who published what, from the servers' logs.
      const publications = readPublications(servers);
      const details = [];
      for (const k of dups) {
        const [kind, id] = k.split(':') as ['auction' | 'order', string];
        const events = [];
        for (const h of heard.get(k)!) {
          const rows = await outboxRowsOf(db, kind, h.eventId);
          events.push({
            eventId: h.eventId,
            heardAt: new Date(h.at).toISOString(),
            outbox: rows.map((row) => ({ ...row, publishedBy: publications.get(row.id) ?? [] })),
          });
        }
        const settledBy = publications.settledBy(kind === 'auction' ? 'auction-end' : 'order-expiry', id);
        details.push({ entity: k, round: roundOf.get(k), settledBy, events });
      }
      const watcherCatchUps = publications.catchUps;
      // Each round again, with what came after it: heard late (after the round's timeout) is not lost.
      const finals = rounds.map((r) => ({
        round: r.round,
        victim: r.victim,
        expected: r.expected,
        heard: r.keys.filter((k) => heard.has(k)).length,
        lost: r.keys.filter((k) => !heard.has(k)).length,
        duplicates: r.keys.filter((k) => (heard.get(k)?.length ?? 0) > 1).length,
        heardLate: r.keys.filter((k) => (heard.get(k)?.[0]?.at ?? 0) > r.endedAt).length,
      }));
      // Each entity's AUCTION_ENDED / ORDER_EXPIRED as the outbox holds them: more than one is a second settle.
      const { rows: writtenTwice } = await db.query<{ k: string; n: string }>(
        `select 'auction:' || auction_id as k, count(*) as n from ${AUCTION_ENDED_EVENTS_SQL} e group by 1 having count(*) > 1
          union all select 'order:' || order_id, count(*) from ${ORDER_EXPIRED_EVENTS_SQL} e group by 1 having count(*) > 1`,
      );
      return {
        rounds,
        total: {
          rounds: rounds.length,
          expected: expectedAll.size,
          heard: [...expectedAll].filter((k) => heard.has(k)).length,
          lost: lost.length,
          duplicates: dups.length,
          heardLate: finals.reduce((n, f) => n + f.heardLate, 0),
          copiesHeard: [...heard.values()].reduce((n, l) => n + l.length, 0),
          heardButNotSettled: unheardOf.length,
          republishedRows: publications.republished,
          settledByServer: publications.settledByServer,
          eventsWrittenTwice: writtenTwice.map((r) => `${r.k} ×${r.n}`),
          watcherCatchUps,
          clientTrouble: clientTrouble ?? null,
        },
        finals,
        lostEntities: lost.slice(0, 20),
        duplicates: details,
      };
    } finally {
      await client?.dispose();
      await Promise.all(servers.map((s) => s.kill()));
    }
  });

  const odd = result.finals.filter((f) => f.lost > 0 || f.duplicates > 0 || f.heardLate > 0);
  if (odd.length > 0) {
    console.log('\nrounds as they stand at the end (those with anything lost, heard twice or heard after the round):');
    for (const f of odd) console.log(`  round ${f.round} (${f.victim} killed): expected ${f.expected} | heard ${f.heard} | lost ${f.lost} | duplicates ${f.duplicates} | heard late ${f.heardLate}`);
  }
  const minutes = ((Date.now() - began) / 60_000).toFixed(1);
  console.log('\n| rounds | expected | heard | lost | duplicates | duration |');
  console.log('|---|---|---|---|---|---|');
  console.log(`| ${result.total.rounds} | ${result.total.expected} | ${result.total.heard} | ${result.total.lost} | ${result.total.duplicates} | ${minutes} min |`);
  console.log(`\ntotal: ${JSON.stringify(result.total)}`);
  if (result.lostEntities.length > 0) console.log(`lost (first 20): ${result.lostEntities.join(' ')}`);
  for (const d of result.duplicates) console.log(`duplicate: ${JSON.stringify(d)}`);
  if (!KEEP_LOGS && result.duplicates.length === 0 && result.total.lost === 0) rmSync(dir, { recursive: true, force: true });
  else console.log(`servers' logs kept in ${dir}`);
  process.exit(0);
}

/** The entities of a round that the database says were settled (ENDED / EXPIRED), as `kind:id`. */
async function settledKeys(db: pg.Client, auctionIds: string[], orderIds: string[]): Promise<string[]> {
  const { rows } = await db.query<{ k: string }>(
    `select 'auction:' || id as k from auctions where id = any($1::bigint[]) and status = 'ENDED'
      union all select 'order:' || id from orders where id = any($2::bigint[]) and status = 'EXPIRED'`,
    [auctionIds, orderIds],
  );
  return rows.map((r) => r.k);
}

/** The outbox rows that hold this AUCTION_ENDED / ORDER_EXPIRED event id (an entry of a batch, or a row of its own). */
async function outboxRowsOf(db: pg.Client, kind: 'auction' | 'order', eventId: string) {
  const topic = kind === 'auction' ? '@auction-ends' : '@order-closes';
  const own = kind === 'auction' ? 'AUCTION_ENDED' : 'ORDER_EXPIRED';
  const { rows } = await db.query<{ id: string; created_at: Date; claimed_at: Date | null; published_at: Date | null }>(
    `select o.id, o.created_at, o.claimed_at, o.published_at from outbox_events o
      where (o.topic = $1 and exists (select 1 from jsonb_array_elements(o.payload -> 'entries') e where e ->> 1 = $3))
         or (o.topic = $2 and o.id::text = $3)`,
    [topic, own, eventId],
  );
  return rows.map((r) => ({
    id: r.id,
    createdAt: r.created_at.toISOString(),
    claimedAt: r.claimed_at?.toISOString() ?? null,
    publishedAt: r.published_at?.toISOString() ?? null,
  }));
}

/** From every incarnation's log: who published which outbox row, who settled which deadline, and W's catch-ups. */
function readPublications(servers: Server[]) {
  const byRow = new Map<string, Publication[]>();
  const settled = new Map<string, string[]>();
  /** Deadlines each server (all its incarnations) settled. */
  const settledByServer: Record<string, number> = {};
  const catchUps: string[] = [];
  for (const server of servers) {
    for (const inc of server.incarnations) {
      if (!existsSync(inc.log)) continue;
      for (const line of readFileSync(inc.log, 'utf8').split('\n')) {
        if (!line.startsWith('{')) continue;
        let entry: { msg?: string; outboxIds?: string[]; kind?: string; ids?: string[]; via?: string; since?: string; read?: number; delivered?: number };
        try {
          entry = JSON.parse(line);
        } catch {
          continue;
        }
        if (entry.msg === 'outbox: publishing after commit' || entry.msg === 'outbox: republishing') {
          const via = entry.msg === 'outbox: republishing' ? 'sweep' : 'commit';
          for (const id of entry.outboxIds ?? []) {
            const list = byRow.get(id) ?? [];
            list.push({ instance: inc.label, via });
            byRow.set(id, list);
          }
        } else if (entry.msg === 'deadlines settled') {
          settledByServer[server.name] = (settledByServer[server.name] ?? 0) + (entry.ids?.length ?? 0);
          for (const id of entry.ids ?? []) {
            const key = `${entry.kind}:${id}`;
            settled.set(key, [...(settled.get(key) ?? []), `${inc.label} (${entry.via})`]);
          }
        } else if (entry.msg?.startsWith('events: caught up')) {
          catchUps.push(`${inc.label}: since ${entry.since}, read ${entry.read}, delivered ${entry.delivered}`);
        }
      }
    }
  }
  // Rows the sweep sent again: after a publication that was not marked (copies the watcher must drop), or never published before.
  const swept = [...byRow.values()].filter((l) => l.some((p) => p.via === 'sweep'));
  return {
    republished: { rows: swept.length, afterAPublication: swept.filter((l) => l.length > 1).length },
    get: (rowId: string) => byRow.get(rowId),
    settledBy: (kind: string, id: string) => settled.get(`${kind}:${id}`) ?? [],
    settledByServer,
    catchUps,
  };
}

// ---------------------------------------------------------------------------------------------
// --watcher-serves-only: W serves clients only (a process of its own, this file with --serve-watcher).
// ---------------------------------------------------------------------------------------------
/** W: started as its own process, with DEADLINE_TIMERS=false. */
async function serveWatcher(): Promise<void> {
  const { loadConfig } = await import('../src/config.js');
  const { startApp } = await import('../src/app.js');
  const app = await startApp(loadConfig(process.env));
  // No deadline is due while it starts (it starts first, before anything is seeded), so its start-up
  // recovery settles nothing; from here on its Agenda runs no wake-up, and it has no timers.
  await app.scheduler.stop(false);
  await app.deadlines.stop();
  process.stdout.write(`ready ${app.url}\n`);
}

if (process.argv.includes('--serve-watcher')) await serveWatcher();
else await main();


/**
 * How long graphql-ws subscribers of one auction's `auctionEnded(auctionId)` take to be accepted, with
 * bench:fanout's clients (bench/fanout-clients.ts, each process opening 100 connections at a time, one
 * user's token): the built server (`node <root>/dist/src/main.js`, NODE_ENV=production, its own
 * database) or bench:peers' fan-out peer (bench/peers/fanout-server.ts). Measured: when every client has
 * its `connection_ack` ("connected", bench:peers' figure), when the server runs every subscription
 * (`deadline_subscriptions_active`, Deadline only), the CPU the server and the clients used meanwhile
 * (wall time beyond it is waiting), and whether every subscriber then hears the auction's end once.
 *
 *   npm run build && node dist/bench/fanout-accept.js [--subscribers=2000] [--processes=4] [--rounds=1]
 *     [--root=<a checkout with a build, default this one>] [--peer] [--cpu-prof=<dir>]
 *
 * --root runs another build's server (say, a worktree at an earlier commit) with this checkout's clients,
 * so a before/after differs only in the server. --cpu-prof writes the server's CPU profile there.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { signToken } from '../src/auth.js';
import { arg, flag, killChild, killChildren, nextMessage, startChild } from './peers/common.js';
import { SERVER_NODE_FLAGS, armThroughApi, freePort, sleep, withDatabase } from './support.js';

const SUBSCRIBERS = Number(arg('subscribers', '2000'));
const PROCESSES = Number(arg('processes', '4'));
const ROUNDS = Number(arg('rounds', '1'));
const ROOT = arg('root', fileURLToPath(new URL('../..', import.meta.url)));
const PEER = flag('peer');
const CPU_PROF = arg('cpu-prof', '');
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const JWT_SECRET = 'bench-secret-0123456789abcdef';

/** A process's CPU time so far (user + system), in ms; 0 once it has gone. */
function cpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // utime, stime: clock ticks of 10 ms
  } catch {
    return 0;
  }
}

async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

const subscriptionsActive = async (base: string): Promise<number> => {
  const text = await fetch(`${base}/metrics`).then((r) => r.text());
  return Number(/^deadline_subscriptions_active\S* (\d+)/m.exec(text)?.[1] ?? 0);
};

process.on('exit', killChildren);
console.log(`Accepting ${SUBSCRIBERS} graphql-ws subscribers of one auctionEnded(auctionId) in ${PROCESSES} processes: ${PEER ? 'the fan-out peer' : join(ROOT, 'dist/src/main.js')}`);

await withDatabase(async (databaseUrl, db) => {
  for (let round = 1; round <= ROUNDS; round++) {
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const prefix = `bench-accept:${randomBytes(4).toString('hex')}`;
    let server: ChildProcess;
    let auctionId = '1';
    let url = `${base.replace('http', 'ws')}/graphql`;
    if (PEER) {
      server = startChild(process.execPath, [fileURLToPath(new URL('./peers/fanout-server.js', import.meta.url)), JSON.stringify({ redisUrl: REDIS_URL, trigger: `${prefix}:AUCTION_ENDED` })], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const ready = await nextMessage<{ type: string; port: number }>(server, 'ready');
      url = `ws://127.0.0.1:${ready.port}/graphql`;
    } else {
      const profFlags = CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${CPU_PROF}`] : [];
      server = startChild(process.execPath, [...SERVER_NODE_FLAGS, ...profFlags, 'dist/src/main.js'], {
        cwd: ROOT,
        env: {
          ...process.env,
          NODE_ENV: 'production',
          PORT: String(port),
          DATABASE_URL: databaseUrl,
          REDIS_URL,
          REDIS_PREFIX: prefix,
          JWT_SECRET,
          LOG_LEVEL: 'warn',
          WS_MAX_SOCKETS_PER_USER: String(SUBSCRIBERS + 100),
        },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      await until('the server answers /health', 60_000, () => fetch(`${base}/health`).then((r) => r.ok, () => false));
      await db.query(`insert into users (id, role) values ('bench-seller', 'user') on conflict do nothing`);
      const { rows } = await db.query<{ id: string }>(
        `insert into auctions (seller_id, nft_id, title, starting_price, min_increment, end_time, soft_close_seconds)
         values ('bench-seller', 'nft', 'Accept lot', 100, 10, now() + interval '1 hour', 0) returning id::text`,
      );
      auctionId = rows[0].id;
    }
    await sleep(1000);
    const token = signToken({ secret: JWT_SECRET }, 'bench-seller', 'user');
    const per = Math.ceil(SUBSCRIBERS / PROCESSES);
    const clients: ChildProcess[] = [];
    const connected: Array<Promise<unknown>> = [];
    const heard: Array<Promise<{ last: number; heard?: number; duplicates: number }>> = [];
    const serverCpu0 = cpuMs(server.pid);
    const start = Date.now();
    for (let p = 0; p < PROCESSES; p++) {
      const count = Math.min(per, SUBSCRIBERS - p * per);
      const child = fork(new URL('./fanout-clients.js', import.meta.url), [url, token, String(count), auctionId]);
      clients.push(child);
      child.on('message', (m: { type: string; error?: string }) => m.type === 'error' && console.error('  subscriber error:', m.error));
      connected.push(nextMessage(child, 'connected', 600_000));
      heard.push(new Promise((resolve) => child.on('message', (m: { type: string; last: number; duplicates: number }) => m.type === 'heard' && resolve(m))));
    }
    await Promise.all(connected);
    const connectMs = Date.now() - start;
    let subscribedMs = NaN;
    if (!PEER) {
      await until('every subscription running', 600_000, async () => (await subscriptionsActive(base)) >= SUBSCRIBERS);
      subscribedMs = Date.now() - start;
    }
    const serverCpu = cpuMs(server.pid) - serverCpu0;
    const clientCpu = clients.reduce((a, c) => a + cpuMs(c.pid), 0);
    let last = '';
    if (!PEER) {
      // The end, 1.5 s from now: createAuction arms the deadline engine at the earlier end time.
      const end = Date.now() + 1500;
      await db.query(`update auctions set end_time = $1 where id = $2`, [new Date(end), auctionId]);
      await armThroughApi(base, token, new Date(end));
      const timer = setTimeout(() => clients.forEach((c) => c.connected && c.send('report')), end - Date.now() + 30_000);
      const reports = await Promise.all(heard);
      clearTimeout(timer);
      const total = reports.reduce((a, r) => a + (r.heard ?? per), 0);
      const duplicates = reports.reduce((a, r) => a + r.duplicates, 0);
      last = `; heard by ${total}/${SUBSCRIBERS} (${duplicates} twice), the last ${Math.max(...reports.map((r) => r.last)) - end} ms after the end`;
    }
    console.log(
      `round ${round}: connected in ${connectMs} ms, subscribed in ${subscribedMs} ms; CPU meanwhile: server ${serverCpu} ms, clients ${clientCpu} ms${last}`,
    );
    await Promise.all(clients.map((c) => killChild(c)));
    await new Promise<void>((resolve) => {
      if (server.exitCode !== null || server.signalCode !== null) return resolve();
      const timer = setTimeout(() => server.kill('SIGKILL'), 15_000);
      server.once('exit', () => (clearTimeout(timer), resolve()));
      server.kill('SIGTERM');
    });
    if (!PEER) await db.query(`delete from bids; delete from auctions`).catch(() => undefined);
  }
});
process.exit();

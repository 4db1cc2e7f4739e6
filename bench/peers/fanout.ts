/**
 * bench:peers' fan-out: one auction end to 10,000 graphql-ws subscribers held by other processes
 * (bench/fanout-clients.ts), Deadline's server against the stack the graphql-ws and Apollo
 * documentation lead to (bench/peers/fanout-server.ts). Measured: when the last subscriber heard the
 * end, how long they took to connect and subscribe, and the server's RSS per idle subscription.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { RedisPubSub } from 'graphql-redis-subscriptions';
import { Redis } from 'ioredis';
import { signToken } from '../../src/auth.js';
import { END_ONE_SQL, children, killChild, nextMessage, sleep, startChild } from './common.js';
import { JWT_SECRET, REDIS_URL, type Session, type SystemDef, type SystemRun } from './peers.js';
import { fmtMs } from './report.js';

export interface FanoutFigures {
  lastMs: number;
  /** How long the subscribers took to connect and subscribe (each process opening 100 at a time). */
  connectMs: number;
  heard: number;
  duplicates: number;
  rssPerSubscriptionKb: number;
}
export const FANOUT_PEER_DEF: SystemDef = {
  key: 'fanout-peer',
  label: 'graphql-ws useServer + graphql-redis-subscriptions',
  type: 'peer',
  settings: "graphql-ws's `useServer` on `ws`, @graphql-tools/schema, RedisPubSub with `withFilter` on the auction id; the end published by a timer at the end time (no scheduler's delay)",
};

const rssKb = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);

/**
 * One round: the server started, `subscribers` graphql-ws subscribers of `auctionEnded(auctionId)` in
 * `processes` processes, the auction ended (Deadline: by its engine at the end time; the peer: by a
 * timer at the end time), and when the last subscriber heard it.
 */
export async function fanoutRound(kind: 'deadline' | 'peer', deadlineRun: SystemRun, peerRun: SystemRun, subscribers: number, processes: number): Promise<FanoutFigures> {
  const FANOUT = subscribers;
  const FANOUT_PROCESSES = processes;
  const t = Date.now();
  const run = kind === 'deadline' ? deadlineRun : peerRun;
  let session: Session | undefined;
  let server: ChildProcess | undefined;
  let url: string;
  let pid: number;
  const trigger = `${peerRun.prefix}:AUCTION_ENDED`;
  if (kind === 'deadline') {
    // Every subscriber holds one user's token: WS_MAX_SOCKETS_PER_USER (20) raised to their number.
    session = await deadlineRun.start(1, { WS_MAX_SOCKETS_PER_USER: String(FANOUT + 100) });
    pid = session.pids()[0]!;
    url = `${session.base().replace('http', 'ws')}/graphql`;
  } else {
    server = startChild(process.execPath, [new URL('./fanout-server.js', import.meta.url).pathname, JSON.stringify({ redisUrl: REDIS_URL, trigger })], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const { port } = await nextMessage<{ type: string; port: number }>(server, 'ready');
    pid = server.pid!;
    url = `ws://127.0.0.1:${port}/graphql`;
  }
  const clients: ChildProcess[] = [];
  try {
    const [row] = await run.insert([Date.now() + 3_600_000]);
    await sleep(1000);
    const before = rssKb(pid);
    const token = signToken({ secret: JWT_SECRET }, 'bench-seller', 'user');
    const per = Math.ceil(FANOUT / FANOUT_PROCESSES);
    const heard: Array<Promise<{ last: number; heard?: number; duplicates: number }>> = [];
    const connected: Array<Promise<unknown>> = [];
    for (let p = 0; p < FANOUT_PROCESSES; p++) {
      const count = Math.min(per, FANOUT - p * per);
      const child = fork(new URL('../fanout-clients.js', import.meta.url), [url, token, String(count), row.id]);
      children.add(child);
      child.once('exit', () => children.delete(child));
      clients.push(child);
      child.on('message', (m: { type: string; error?: string }) => m.type === 'error' && console.error('  subscriber error:', m.error));
      connected.push(nextMessage(child, 'connected', 180_000));
      heard.push(new Promise((resolve) => child.on('message', (m: { type: string; last: number; duplicates: number }) => m.type === 'heard' && resolve(m))));
    }
    const connecting = Date.now();
    await Promise.all(connected);
    const connectMs = Date.now() - connecting;
    await sleep(1000);
    const after = rssKb(pid);
    const end = Date.now() + 1500;
    if (kind === 'deadline') {
      await run.db().query(`update auctions set end_time = $1 where id = $2`, [new Date(end), row.id]);
      await session!.schedule([{ id: row.id, due: end }]);
    } else {
      // No scheduler's delay for the peer: a timer at the end time, then the update and the publish.
      const pubsub = new RedisPubSub({ publisher: new Redis(REDIS_URL), subscriber: new Redis(REDIS_URL) });
      await sleep(end - Date.now());
      const { rows } = await run.db().query<{ id: string; end_time: Date; status: string }>(END_ONE_SQL, [row.id]);
      await pubsub.publish(trigger, { auctionEnded: { auction: { id: rows[0].id, endTime: rows[0].end_time.toISOString(), status: rows[0].status } } });
      await pubsub.close();
    }
    const timer = setTimeout(() => clients.forEach((c) => c.connected && c.send('report')), end - Date.now() + 30_000);
    const reports = await Promise.all(heard);
    clearTimeout(timer);
    const f: FanoutFigures = {
      lastMs: Math.max(...reports.map((r) => r.last)) - end,
      connectMs,
      heard: reports.reduce((a, r) => a + (r.heard ?? per), 0),
      duplicates: reports.reduce((a, r) => a + r.duplicates, 0),
      rssPerSubscriptionKb: (after - before) / FANOUT,
    };
    if (f.heard < FANOUT) f.lastMs = Infinity;
    console.log(
      `  fan-out, ${kind === 'deadline' ? 'Deadline' : FANOUT_PEER_DEF.label}: last of ${f.heard}/${FANOUT} subscribers ${fmtMs(f.lastMs)} ms after the end; ` +
        `RSS ${f.rssPerSubscriptionKb.toFixed(1)} KB per idle subscription (subscribers connected in ${connectMs} ms, session so far ${Date.now() - t} ms)`,
    );
    return f;
  } finally {
    await Promise.all(clients.map((c) => killChild(c)));
    await session?.stop();
    await killChild(server);
  }
}

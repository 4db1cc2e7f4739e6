/**
 * npm run bench:fanout — one `auctionEnded` to --subscribers (10,000) graphql-ws subscribers held by
 * --processes (4) other processes (bench/fanout-clients.ts): how long from the auction's endTime until
 * the last subscriber has it (target: under 500 ms), and the server's RSS per idle subscription (this
 * process is the server: RSS after a GC with every subscriber connected, minus RSS before, divided by
 * their number). Talks only to 127.0.0.1.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { cpus, totalmem } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { pino } from 'pino';
import { startApp } from '../src/app.js';
import { signToken, tokenKeys } from '../src/auth.js';
import { AUCTION_END } from '../src/jobs/auction-end.js';
import { benchConfig, stopAfter, withDatabase } from './support.js';

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const SUBSCRIBERS = Number(arg('subscribers', '10000'));
const PROCESSES = Number(arg('processes', '4'));
const ROUNDS = Number(arg('rounds', '3'));
const TARGET_MS = 500;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
stopAfter(10 * 60_000);

const settle = async () => {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 200));
  }
  return process.memoryUsage().rss;
};

console.log(`Fan-out: one auctionEnded to ${SUBSCRIBERS} graphql-ws subscribers in ${PROCESSES} processes, ${ROUNDS} rounds`);
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`);

await withDatabase(async (databaseUrl) => {
  // Every subscriber holds a token of one user: WS_MAX_SOCKETS_PER_USER (20) raised to their number.
  const config = benchConfig(databaseUrl, { ENABLE_CRON: 'false', WS_MAX_SOCKETS_PER_USER: String(SUBSCRIBERS) });
  const app = await startApp(config, { log: pino({ level: 'warn' }) });
  const seller = signToken(tokenKeys(config), 'fanout-seller', 'user');
  const em = app.services.orm.em.fork();
  await em.execute(`insert into users (id, role) values ('fanout-seller', 'user') on conflict do nothing`);
  const results: Array<{ lastMs: number; endedMs: number; heard: number; duplicates: number }> = [];
  let perSubscriptionKb = NaN;
  for (let round = 0; round < ROUNDS; round++) {
    const endTime = new Date(Date.now() + 3_600_000);
    const [{ id }] = await em.execute<Array<{ id: string }>>(
      `insert into auctions (seller_id, nft_id, title, starting_price, min_increment, end_time, soft_close_seconds)
       values ('fanout-seller', 'nft', 'Fan-out lot', 100, 10, ?, 0) returning id`,
      [endTime],
    );
    const before = await settle();
    const children: ChildProcess[] = [];
    const per = Math.ceil(SUBSCRIBERS / PROCESSES);
    const connected: Array<Promise<void>> = [];
    const heard: Array<Promise<{ last: number; heard?: number; duplicates: number }>> = [];
    for (let p = 0; p < PROCESSES; p++) {
      const count = Math.min(per, SUBSCRIBERS - p * per);
      const child = fork(new URL('./fanout-clients.js', import.meta.url), [app.url.replace('http', 'ws'), seller, String(count), String(id)]);
      children.push(child);
      connected.push(new Promise((resolve) => child.on('message', (m: { type: string }) => m.type === 'connected' && resolve())));
      heard.push(new Promise((resolve) => child.on('message', (m: { type: string; last: number; duplicates: number }) => m.type === 'heard' && resolve(m))));
      child.on('message', (m: { type: string; error?: string }) => m.type === 'error' && console.error('  subscriber error:', m.error));
    }
    await Promise.all(connected);
    // Every subscription is registered when the bus has a listener for each.
    while (app.services.bus.listenerCount('AUCTION_ENDED') < SUBSCRIBERS) await new Promise((r) => setTimeout(r, 50));
    const after = await settle();
    if (round === 0) perSubscriptionKb = (after - before) / SUBSCRIBERS / 1024;

    // End it now: move its end to a moment ago's next millisecond and let the wake-up settle it.
    const end = new Date(Date.now() + 500);
    await em.execute(`update auctions set end_time = ? where id = ?`, [end, id]);
    await app.deadlines.arm(AUCTION_END, end);
    const timer = setTimeout(() => children.forEach((c) => c.send('report')), 30_000);
    const reports = await Promise.all(heard);
    clearTimeout(timer);
    const lastMs = Math.max(...reports.map((r) => r.last)) - end.getTime();
    const [{ ms }] = await em.execute<Array<{ ms: string }>>(`select extract(epoch from ended_at - end_time) * 1000 as ms from auctions where id = ?`, [id]);
    const endedMs = Math.round(Number(ms));
    const total = reports.reduce((a, r) => a + (r.heard ?? Math.min(per, SUBSCRIBERS)), 0);
    results.push({ lastMs, endedMs, heard: total, duplicates: reports.reduce((a, r) => a + r.duplicates, 0) });
    console.log(`round ${round + 1}: ended ${endedMs} ms after endTime; last subscriber heard it ${lastMs} ms after endTime; heard by ${total}/${SUBSCRIBERS}`);
    await Promise.all(children.map((c) => new Promise((r) => (c.send('close'), c.once('exit', r)))));
    while (app.services.bus.listenerCount('AUCTION_ENDED') > 0) await new Promise((r) => setTimeout(r, 50));
  }
  await app.stop();
  console.log(`\n| subscribers | processes | ended after endTime (ms), per round | last heard after endTime (ms), per round | target | server RSS per idle subscription |`);
  console.log('|---|---|---|---|---|---|');
  console.log(`| ${SUBSCRIBERS} | ${PROCESSES} | ${results.map((r) => r.endedMs).join(' / ')} | ${results.map((r) => r.lastMs).join(' / ')} | < ${TARGET_MS} | ${perSubscriptionKb.toFixed(1)} KB |`);
  if (results.some((r) => r.heard !== SUBSCRIBERS || r.duplicates > 0)) {
    console.log('!! not every subscriber heard the end exactly once');
    process.exitCode = 1;
  }
});
process.exit();

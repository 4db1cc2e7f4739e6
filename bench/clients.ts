/**
 * The benchmark's graphql-ws clients, in a worker thread so that parsing 10 × N events does not
 * compete with the server for its event loop (clients are other machines in real life).
 * Receives { url, token, clients, n }; posts 'ready', then { lateness, duplicates, heard, lastReceipt }.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const { url, token, clients: count, n } = workerData as { url: string; token: string; clients: number; n: number };
const lateness: number[] = [];
const seen = Array.from({ length: count }, () => new Set<string>());
const perAuction = new Map<string, number>();
let duplicates = 0;
let heard = 0;
let lastReceipt = 0;
let acks = 0;

const clients = Array.from({ length: count }, () =>
  createClient({ url, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0 }),
);
const report = () => parentPort!.postMessage({ type: 'done', lateness, duplicates, heard, lastReceipt });

clients.forEach((client, i) => {
  // The countdown answers at once on subscribe: a sign this socket's subscriptions are registered.
  client.on('connected', () => {
    if (++acks === count) setTimeout(() => parentPort!.postMessage({ type: 'ready' }), 300);
  });
  client.subscribe<{ auctionEnded: { auction: { id: string; endTime: string } } }>(
    { query: 'subscription { auctionEnded { auction { id endTime } } }' },
    {
      next: ({ data }) => {
        const now = Date.now();
        const a = data!.auctionEnded.auction;
        if (seen[i].has(a.id)) return void duplicates++;
        seen[i].add(a.id);
        lastReceipt = Math.max(lastReceipt, now);
        lateness.push(now - new Date(a.endTime).getTime());
        const k = (perAuction.get(a.id) ?? 0) + 1;
        perAuction.set(a.id, k);
        if (k === count && ++heard === n) report();
      },
      error: (e) => console.error('subscription error', e),
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
  if (m === 'report') report();
  if (m === 'close') void close();
});

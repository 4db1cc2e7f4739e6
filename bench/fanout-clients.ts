/**
 * One process of bench:fanout's subscribers (forked: clients are other machines in real life). Opens
 * `count` graphql-ws connections, each subscribed to `auctionEnded(auctionId)`; tells the parent when all
 * are connected, and reports the receipt time of the last of its subscribers to hear the end.
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

const [url, token, countArg, auctionId] = process.argv.slice(2);
const count = Number(countArg);
let heard = 0;
let duplicates = 0;
let last = 0;
const clients: Client[] = [];

/** Connections opened 100 at a time (a burst of thousands of handshakes is not what is measured). */
async function open(i: number): Promise<void> {
  const client = createClient({ url, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0 });
  const ready = new Promise<void>((resolve) => client.on('connected', () => resolve()));
  let got = false;
  client.subscribe(
    { query: 'subscription($id: ID!) { auctionEnded(auctionId: $id) { auction { id endTime } } }', variables: { id: auctionId } },
    {
      next: () => {
        if (got) return void duplicates++;
        got = true;
        last = Math.max(last, Date.now());
        if (++heard === count) process.send!({ type: 'heard', last, duplicates });
      },
      error: (e) => process.send!({ type: 'error', error: `client ${i}: ${String((e as Error)?.message ?? e)}` }),
      complete: () => undefined,
    },
  );
  clients.push(client);
  await ready;
}

for (let i = 0; i < count; i += 100) {
  await Promise.all(Array.from({ length: Math.min(100, count - i) }, (_, j) => open(i + j)));
}
process.send!({ type: 'connected' });

// A client's dispose may or may not return a promise; every one has finished before the exit.
const close = async () => {
  await Promise.all(clients.map((c) => Promise.resolve(c.dispose())));
  process.exit(0);
};
process.on('message', (m) => {
  if (m === 'report') process.send!({ type: 'heard', last, heard, duplicates });
  if (m === 'close') void close();
});

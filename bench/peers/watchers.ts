/**
 * The clients that hear the ends, in the benchmark's own process (it does nothing else while a round
 * runs): lateness is taken where a user sees it, when the client receives the event. Deadline is heard
 * over graphql-ws, the peers on Redis directly (fewer hops: an advantage to them), the floor on one raw
 * WebSocket.
 */
import { createClient, type Client } from 'graphql-ws';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { auctionIdOf } from './common.js';

/** Which of the expected auctions were heard, and when (first receipt); copies counted. */
export class Recorder {
  private expected = new Map<string, number>();
  readonly heard = new Map<string, number>();
  duplicates = 0;
  private left = 0;
  private done: (() => void) | undefined;

  /** From now on, these auctions (id → due time, ms) are the ones that count. */
  expect(dues: Map<string, number>): void {
    this.expected = dues;
    this.heard.clear();
    this.duplicates = 0;
    this.left = dues.size;
    this.done = undefined;
  }

  record(id: string | undefined, at: number): void {
    if (id === undefined || !this.expected.has(id)) return;
    if (this.heard.has(id)) return void this.duplicates++;
    this.heard.set(id, at);
    if (--this.left === 0) this.done?.();
  }

  /** Until every expected auction was heard, or `until` (ms since the epoch) passes. */
  wait(until: number): Promise<void> {
    if (this.left === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(finish, Math.max(0, until - Date.now()));
      this.done = finish;
      function finish() {
        clearTimeout(timer);
        resolve();
      }
    });
  }

  /** Lateness (receipt − due, ms) of every expected auction, Infinity for those never heard; ascending. */
  lateness(): number[] {
    return [...this.expected].map(([id, due]) => (this.heard.has(id) ? this.heard.get(id)! - due : Infinity)).sort((a, b) => a - b);
  }
}

export interface Watcher {
  recorder: Recorder;
  close(): Promise<void>;
}

/** A client subscribed on Redis to the channel the peer's workers publish on. */
export async function redisWatcher(redisUrl: string, channel: string): Promise<Watcher> {
  const recorder = new Recorder();
  const sub = new Redis(redisUrl);
  sub.on('message', (_channel: string, message: string) => recorder.record(auctionIdOf(message), Date.now()));
  await sub.subscribe(channel);
  return { recorder, close: () => Promise.resolve(sub.disconnect()) };
}

/** A graphql-ws client subscribed to `auctionEnded`, as Deadline's users watch. */
export async function graphqlWsWatcher(url: string, token: string): Promise<Watcher> {
  const recorder = new Recorder();
  const client: Client = createClient({ url, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0 });
  const connected = new Promise<void>((resolve, reject) => {
    client.on('connected', () => resolve());
    client.on('error', (e) => reject(e instanceof Error ? e : new Error(`graphql-ws watcher: ${String((e as { reason?: string })?.reason ?? e)}`)));
  });
  client.subscribe<{ auctionEnded: { auction: { id: string } } }>(
    { query: 'subscription { auctionEnded { auction { id } } }' },
    {
      next: ({ data }) => recorder.record(data?.auctionEnded.auction.id, Date.now()),
      error: (e) => console.error('  graphql-ws watcher:', e),
      complete: () => undefined,
    },
  );
  await connected;
  return { recorder, close: () => client.dispose() as Promise<void> };
}

/** One raw WebSocket client of the floor: every frame one event. */
export async function rawWsWatcher(url: string): Promise<Watcher> {
  const recorder = new Recorder();
  const socket = new WebSocket(url);
  // Text frames: ws gives each as one Buffer.
  socket.on('message', (data: Buffer) => recorder.record(auctionIdOf(data.toString('utf8')), Date.now()));
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => resolve());
    socket.once('error', reject);
  });
  return {
    recorder,
    close: () =>
      new Promise<void>((resolve) => {
        if (socket.readyState === WebSocket.CLOSED) return resolve();
        socket.once('close', () => resolve());
        socket.terminate();
      }),
  };
}

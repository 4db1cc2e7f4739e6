import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import type { App } from '../../src/app.js';
import { JOB_EVENTS_CHANNEL, type JobEventMessage } from '../../src/events/types.js';
import { LogCapture, setUp, subscribed, type Subscription, token, waitUntil, wsClient } from '../support/harness.js';

/**
 * A subscriber that stops reading, on a real server: a raw graphql-ws client whose TCP socket is paused
 * while megabytes of events are published to it and to a normal subscriber on the same server.
 */
const LIMIT = 256 * 1024;
const EVENT_BYTES = 8_000;
const QUERY = 'subscription { jobEvents { name event at error } }';
const SLOW_CLOSE = 'closed a WebSocket that does not read its events';

let app: App;
const logs = new LogCapture();
const admin = token('slow-admin', true);

beforeAll(async () => {
  ({ app } = await setUp('slow_subscriber', { WS_MAX_BUFFERED_BYTES: String(LIMIT), ENABLE_CRON: 'false' }, { log: logs }));
});

/** A graphql-ws client by hand, so its TCP socket can be paused: connection_init, ack, subscribe. */
async function rawSubscriber(): Promise<WebSocket> {
  const socket = new WebSocket(app.url.replace('http', 'ws'), 'graphql-transport-ws');
  await new Promise<void>((resolve, reject) => {
    socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${admin}` } })));
    socket.once('message', (data) => (JSON.parse((data as Buffer).toString()).type === 'connection_ack' ? resolve() : reject(new Error((data as Buffer).toString()))));
    socket.once('error', reject);
  });
  socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: QUERY } }));
  return socket;
}

function jobEvent(name: string): JobEventMessage {
  return { eventId: randomUUID(), name, event: 'FAILED', at: new Date().toISOString(), durationMs: 1, instance: 'test', error: 'x'.repeat(EVENT_BYTES) };
}

test('a subscriber that stops reading is closed with 1013 at the limit; the others hear everything at once', async () => {
  const normalClient = wsClient(app, admin);
  const normal: Subscription = await subscribed(app, normalClient, QUERY, {}, JOB_EVENTS_CHANNEL, 1);

  // The server's end of the slow client's connection, found by its port.
  const serverSockets: Socket[] = [];
  const onUpgrade = (_req: unknown, socket: Socket) => serverSockets.push(socket);
  app.httpServer.on('upgrade', onUpgrade);
  const slow = await rawSubscriber();
  await waitUntil(() => app.services.bus.listenerCount(JOB_EVENTS_CHANNEL) === 2, 5_000, 'the slow subscription');
  app.httpServer.off('upgrade', onUpgrade);
  const slowLocalPort = (slow as unknown as { _socket: Socket })._socket.localPort;
  const serverSide = serverSockets.find((s) => s.remotePort === slowLocalPort)!;
  expect(serverSide).toBeDefined();
  let slowMessages = 0;
  slow.on('message', () => slowMessages++);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => slow.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
  (slow as unknown as { _socket: Socket })._socket.pause();

  // What the server holds unsent for it, sampled between event-loop turns while events are published.
  let maxBuffered = 0;
  const sampler = setInterval(() => (maxBuffered = Math.max(maxBuffered, serverSide.writableLength)), 2);
  const slowClosed = () => logs.messages().includes(SLOW_CLOSE);
  const published: string[] = [];
  // How long the normal subscriber took to hear each batch, published while the slow one backs up.
  const batchMs: number[] = [];
  const publish = async (names: string[]) => {
    const began = Date.now();
    await app.services.bus.publish(names.map((name) => ({ channel: JOB_EVENTS_CHANNEL, payload: { ...jobEvent(name) } })));
    published.push(...names);
    await normal.waitFor((s) => s.events.length >= published.length, 10_000, 'the batch at the normal subscriber');
    batchMs.push(Date.now() - began);
  };
  try {
    // Until the server gives up on it (the kernel's buffers take a few MB first), at most 80 MB.
    for (let batch = 0; batch < 200 && !slowClosed(); batch++) {
      await publish(Array.from({ length: 50 }, (_, i) => `slow-test-${batch}-${i}`));
      maxBuffered = Math.max(maxBuffered, serverSide.writableLength);
    }
    await waitUntil(slowClosed, 10_000, 'the slow subscriber to be closed');
  } finally {
    clearInterval(sampler);
  }
  const publishedBytes = published.length * EVENT_BYTES;
  expect(publishedBytes).toBeGreaterThan(4 * LIMIT);
  // Never more than the limit and one event's frame held for it.
  expect(maxBuffered).toBeLessThanOrEqual(LIMIT + EVENT_BYTES + 1_024);

  // Reading again, it finds what was sent before the close, then the close frame with its code.
  (slow as unknown as { _socket: Socket })._socket.resume();
  await expect(closed).resolves.toEqual({ code: 1013, reason: 'Subscriber too slow' });
  expect(slowMessages).toBeLessThan(published.length);
  // Its subscription ended: the server listens for the normal subscriber only.
  await waitUntil(() => app.services.bus.listenerCount(JOB_EVENTS_CHANNEL) === 1, 5_000, 'the slow subscription to end');

  // The normal subscriber heard every event, in order, each batch of 400 KB within moments, before
  // the close and after it.
  await publish(Array.from({ length: 20 }, (_, i) => `slow-test-tail-${i}`));
  expect(normal.events.map((e) => e.jobEvents.name)).toEqual(published);
  expect(normal.errors).toEqual([]);
  expect(Math.max(...batchMs)).toBeLessThan(2_000);

  const metrics = await (await fetch(new URL('/metrics', app.url))).text();
  expect(metrics).toMatch(/^deadline_websocket_slow_closes_total 1$/m);
  expect(logs.lines.filter((l) => l.msg === SLOW_CLOSE)).toHaveLength(1);

  normal.dispose();
  await normalClient.dispose();
});

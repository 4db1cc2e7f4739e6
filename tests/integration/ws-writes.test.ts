import type { IncomingMessage } from 'node:http';
import { Worker } from 'node:worker_threads';
import WebSocketClient, { WebSocketServer, type WebSocket } from 'ws';
import { guardWrites, type SendText } from '../../src/http/ws-writes.js';

/** A server socket and its `sendText`, corked as graphql-ws.ts corks it (on the upgrade request's socket). */
async function serve(): Promise<{ server: WebSocketServer; url: string; next: () => Promise<{ socket: WebSocket; sendText: SendText }> }> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const url = `ws://127.0.0.1:${(server.address() as { port: number }).port}`;
  const next = () =>
    new Promise<{ socket: WebSocket; sendText: SendText }>((resolve) =>
      server.once('connection', (socket: WebSocket, request: IncomingMessage) =>
        resolve({ socket, sendText: guardWrites(socket, { maxBufferedBytes: 10 * 1024 * 1024, onSlowClose: () => undefined }, request.socket) }),
      ),
    );
  return { server, url, next };
}

/**
 * The messages sent in one long turn start reaching the client before the turn ends. The client is a
 * worker thread, so it reads while the server's thread is still busy.
 */
const client = `
const { parentPort, workerData } = require('node:worker_threads');
const WebSocket = require('ws');
const ws = new WebSocket(workerData.url);
let first;
let count = 0;
ws.on('message', () => {
  first ??= Date.now();
  if (++count === workerData.frames) parentPort.postMessage({ first, count });
});
`;

test('messages sent in one long turn reach the client while the turn still runs', async () => {
  const { server, url, next } = await serve();
  const connected = next();
  const frames = 64;
  const worker = new Worker(client, { eval: true, workerData: { url, frames } });
  const { socket, sendText } = await connected;
  try {
    const received = new Promise<{ first: number; count: number }>((resolve) => worker.once('message', resolve));

    // One turn: 64 KiB of messages, then 500 ms of other work on this thread (as a burst of events would).
    const frame = 'x'.repeat(1024);
    for (let i = 0; i < frames; i++) sendText(frame);
    const busyUntil = Date.now() + 500;
    while (Date.now() < busyUntil) {
      // the rest of the turn
    }
    const turnEnded = Date.now();

    const { first, count } = await received;
    expect(count).toBe(frames);
    // Held until the turn's end, the first message would arrive only after it.
    expect(first).toBeLessThan(turnEnded - 250);
  } finally {
    await worker.terminate();
    socket.terminate();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('sendText: messages of every length arrive whole and in order with those sent by send, and before a close', async () => {
  const { server, url, next } = await serve();
  const connected = next();
  const peer = new WebSocketClient(url);
  const heard: string[] = [];
  peer.on('message', (data, isBinary) => heard.push(isBinary ? '(binary)' : (data as Buffer).toString('utf8')));
  const closed = new Promise<number>((resolve) => peer.once('close', resolve));
  const { socket, sendText } = await connected;
  try {
    // 7-bit, 16-bit and 64-bit payload lengths, multi-byte UTF-8, and more than one flush's worth.
    const sent = ['short', 'é'.repeat(100), 'm'.repeat(300), 'l'.repeat(70_000), ...Array.from({ length: 200 }, (_, i) => `{"n":${i},"pad":"${'p'.repeat(150)}"}`)];
    for (const [i, text] of sent.entries()) {
      sendText(text);
      if (i === 2) socket.send('by send');
    }
    socket.send('last by send');
    sendText('after the last send');
    socket.close(1000, 'done');
    sendText('after the close');
    expect(await closed).toBe(1000);
    expect(heard).toEqual([...sent.slice(0, 3), 'by send', ...sent.slice(3), 'last by send', 'after the last send']);
  } finally {
    peer.terminate();
    await new Promise((resolve) => server.close(resolve));
  }
});

test('a client that stops reading is closed with 1013 once the unsent bytes pass the limit, and finds what was sent before', async () => {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const limit = 256 * 1024;
  const slowCloses: number[] = [];
  const connected = new Promise<{ socket: WebSocket; sendText: SendText }>((resolve) =>
    server.once('connection', (socket: WebSocket, request: IncomingMessage) =>
      resolve({ socket, sendText: guardWrites(socket, { maxBufferedBytes: limit, onSlowClose: (n) => slowCloses.push(n) }, request.socket) }),
    ),
  );
  const peer = new WebSocketClient(`ws://127.0.0.1:${(server.address() as { port: number }).port}`);
  await new Promise((resolve) => peer.once('open', resolve));
  const { socket, sendText } = await connected;
  let heard = 0;
  peer.on('message', () => heard++);
  const closed = new Promise<number>((resolve) => peer.once('close', resolve));
  peer.pause(); // stops reading: the kernel's buffers fill, then the server's
  try {
    const message = 'e'.repeat(8_000);
    let sent = 0;
    // One message per turn, as events come: the kernel takes a few MB first.
    while (socket.readyState === socket.OPEN && sent < 10_000) {
      sendText(message);
      sent++;
      expect(socket.bufferedAmount).toBeLessThanOrEqual(limit + message.length + 64);
      await new Promise((resolve) => setImmediate(resolve));
    }
    expect(slowCloses).toHaveLength(1);
    expect(slowCloses[0]).toBeGreaterThan(limit);
    sendText(message); // closed: taken no more
    peer.resume();
    expect(await closed).toBe(1013);
    // Everything it was sent before the close, then the close.
    expect(heard).toBe(sent);
  } finally {
    peer.terminate();
    await new Promise((resolve) => server.close(resolve));
  }
});

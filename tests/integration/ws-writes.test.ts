import { Worker } from 'node:worker_threads';
import { WebSocketServer, type WebSocket } from 'ws';
import { guardWrites } from '../../src/http/ws-writes.js';

/**
 * The frames a socket sends in one long event-loop turn start leaving before the turn ends. The
 * client is a worker thread, so it reads while the server's thread is still busy.
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

test('frames sent in one long turn reach the client while the turn still runs', async () => {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const connected = new Promise<WebSocket>((resolve) => server.once('connection', resolve));
  const frames = 64;
  const worker = new Worker(client, { eval: true, workerData: { url: `ws://127.0.0.1:${(server.address() as { port: number }).port}`, frames } });
  const socket = await connected;
  try {
    guardWrites(socket, { maxBufferedBytes: 10 * 1024 * 1024, onSlowClose: () => undefined });
    const received = new Promise<{ first: number; count: number }>((resolve) => worker.once('message', resolve));

    // One turn: 64 KiB of frames, then 500 ms of other work on this thread (as a burst of events would).
    const frame = 'x'.repeat(1024);
    for (let i = 0; i < frames; i++) socket.send(frame);
    const busyUntil = Date.now() + 500;
    while (Date.now() < busyUntil) {
      // the rest of the turn
    }
    const turnEnded = Date.now();

    const { first, count } = await received;
    expect(count).toBe(frames);
    // Before: the first frame left only once the turn had ended.
    expect(first).toBeLessThan(turnEnded - 250);
  } finally {
    await worker.terminate();
    socket.terminate();
    await new Promise((resolve) => server.close(resolve));
  }
});

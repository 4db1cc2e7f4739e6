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

test('sendText: messages of every frame length arrive whole and in order with those sent by send, and before a close', async () => {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const connected = new Promise<WebSocket>((resolve) => server.once('connection', resolve));
  const { default: WebSocketClient } = await import('ws');
  const peer = new WebSocketClient(`ws://127.0.0.1:${(server.address() as { port: number }).port}`);
  const heard: string[] = [];
  peer.on('message', (data, isBinary) => heard.push(isBinary ? '(binary)' : data.toString()));
  const closed = new Promise<number>((resolve) => peer.once('close', resolve));
  const socket = await connected;
  try {
    const sendText = guardWrites(socket, { maxBufferedBytes: 10 * 1024 * 1024, onSlowClose: () => undefined })!;
    expect(sendText).toBeDefined();
    // 7-bit, 16-bit and 64-bit payload lengths, multi-byte UTF-8, and more than one flush's worth.
    const sent = ['short', 'é'.repeat(100), 'm'.repeat(300), 'l'.repeat(70_000), ...Array.from({ length: 200 }, (_, i) => `{"n":${i},"pad":"${'p'.repeat(150)}"}`)];
    for (const [i, text] of sent.entries()) {
      sendText(text);
      if (i === 2) socket.send('by send');
    }
    socket.send('last by send');
    sendText('after the last send');
    socket.close(1000, 'done');
    expect(await closed).toBe(1000);
    expect(heard).toEqual([...sent.slice(0, 3), 'by send', ...sent.slice(3), 'last by send', 'after the last send']);
  } finally {
    peer.terminate();
    await new Promise((resolve) => server.close(resolve));
  }
});

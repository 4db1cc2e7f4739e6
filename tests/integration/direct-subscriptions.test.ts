import { createServer, type Server } from 'node:http';
import { buildSchema, parse } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import WebSocket, { WebSocketServer } from 'ws';
import type { Context } from '../../src/context.js';
import { sharedSubscribe } from '../../src/http/subscriptions.js';
import { guardWrites, type SendText } from '../../src/http/ws-writes.js';

/**
 * Results written straight to the socket (`sendDirect`) against graphql-ws's own path, on one
 * schema and real sockets: the same bytes for every `next`, then `complete` when the events end,
 * `error` when they fail, and the source stopped when the client completes.
 */
const schema = buildSchema(`
  type Tick { n: Int!, label: String, when: String }
  type Query { ok: Boolean }
  type Subscription { ticks(count: Int!, failAt: Int): Tick }
`);

/** Sources started by `ticks`, to see that a client's `complete` stops them. */
const stopped: string[] = [];
let sourceId = 0;

function ticks(count: number, failAt: number | null): AsyncIterableIterator<{ ticks: Record<string, unknown> }> {
  const id = String(++sourceId);
  let n = 0;
  return {
    async next() {
      if (failAt !== null && n === failAt) throw new Error(`tick ${n} failed`);
      if (n >= count) return { value: undefined, done: true };
      // Past a hundred, one event per turn, as events that come from the network do.
      if (n >= 100) await new Promise((resolve) => setImmediate(resolve));
      n++;
      return { value: { ticks: { n, label: n % 2 ? `odd "${n}" é` : null, when: undefined } }, done: false };
    },
    return() {
      stopped.push(id);
      return Promise.resolve({ value: undefined, done: true as const });
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

const root = { ticks: (args: { count: number; failAt?: number | null }) => ticks(args.count, args.failAt ?? null) };

async function start(direct: boolean): Promise<{ server: Server; url: string }> {
  const server = createServer();
  const wss = new WebSocketServer({ server });
  const senders = new WeakMap<WebSocket, SendText>();
  wss.on('connection', (socket) => {
    const sendText = guardWrites(socket, { maxBufferedBytes: 1024 * 1024, onSlowClose: () => undefined });
    if (sendText) senders.set(socket, sendText);
  });
  useServer(
    {
      schema,
      roots: { subscription: root },
      onSubscribe: (ctx, id, payload) => {
        const socket = ctx.extra.socket;
        const contextValue = {
          operationKey: JSON.stringify([payload.query, payload.variables]),
          operationText: JSON.stringify([payload.query, payload.operationName]),
          ...(direct ? { subscriber: { id, send: senders.get(socket)! } } : {}),
        } as Partial<Context>;
        return { schema, document: parse(payload.query), contextValue, variableValues: payload.variables, rootValue: root };
      },
      subscribe: sharedSubscribe,
    },
    wss,
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `ws://127.0.0.1:${(server.address() as { port: number }).port}` };
}

/** The raw messages one subscription gets, over the graphql-transport-ws protocol, until it ends (or `stopAfter`). */
async function messages(url: string, query: string, stopAfter?: number): Promise<string[]> {
  const ws = new WebSocket(url, 'graphql-transport-ws');
  const heard: string[] = [];
  await new Promise<void>((resolve, reject) => {
    setTimeout(() => reject(new Error(`the subscription did not end; heard ${heard.length}`)), 10_000).unref();
    ws.on('error', reject);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init' })));
    ws.on('message', (data) => {
      const text = (data as Buffer).toString();
      const message = JSON.parse(text) as { type: string };
      if (message.type === 'connection_ack') return void ws.send(JSON.stringify({ id: 'sub-1', type: 'subscribe', payload: { query } }));
      heard.push(text);
      if (message.type === 'complete' || message.type === 'error') resolve();
      if (stopAfter !== undefined && heard.length === stopAfter) {
        ws.send(JSON.stringify({ id: 'sub-1', type: 'complete' }));
        setTimeout(resolve, 200); // room for a message after our complete, which must not come
      }
    });
  });
  ws.close();
  return heard;
}

let viaGraphqlWs: { server: Server; url: string };
let direct: { server: Server; url: string };
beforeAll(async () => {
  viaGraphqlWs = await start(false);
  direct = await start(true);
});
afterAll(async () => {
  for (const s of [viaGraphqlWs, direct]) {
    s.server.closeAllConnections();
    await new Promise((resolve) => s.server.close(resolve));
  }
});

test('every next, and the complete after the last, is what graphql-ws itself sends', async () => {
  const query = 'subscription { ticks(count: 300) { n label when } }';
  const ours = await messages(direct.url, query);
  const theirs = await messages(viaGraphqlWs.url, query);
  expect(ours).toHaveLength(301);
  expect(ours).toEqual(theirs);
  expect(JSON.parse(ours[0])).toEqual({ id: 'sub-1', type: 'next', payload: { data: { ticks: { n: 1, label: 'odd "1" é', when: null } } } });
  expect(JSON.parse(ours[300])).toEqual({ id: 'sub-1', type: 'complete' });
});

test('events that fail end the subscription with the error, after the results before it', async () => {
  const query = 'subscription { ticks(count: 10, failAt: 4) { n } }';
  const ours = await messages(direct.url, query);
  expect(ours.map((m) => JSON.parse(m).type)).toEqual(['next', 'next', 'next', 'next', 'error']);
  expect(ours).toEqual(await messages(viaGraphqlWs.url, query));
});

test('a client that completes stops its source', async () => {
  const before = stopped.length;
  const ours = await messages(direct.url, 'subscription { ticks(count: 1000000) { n } }', 3);
  expect(ours.length).toBeGreaterThanOrEqual(3);
  expect(stopped.length).toBe(before + 1);
});

import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import type { App } from '../../src/app.js';
import { signToken } from '../../src/auth.js';
import { channelOf, JOB_EVENTS_CHANNEL, type JobEventMessage } from '../../src/events/types.js';
import { originAllowed } from '../../src/http/ws-limits.js';
import { createAuction, inSeconds, JWT_SECRET, setUp, subscribed, Subscription, token, waitUntil, wsClient } from '../support/harness.js';
import { createSale } from '../support/seckill.js';

/**
 * graphql-ws against hostile clients, on a real server with real sockets: message size, subscriptions
 * per socket, sockets per user, expired tokens, dead peers, browser origins, and ids made up to make
 * the server subscribe to Redis channels.
 */
const MAX_SUBSCRIPTIONS = 3;
const MAX_SOCKETS = 2;
const PING_SECONDS = 0.2;
const SHOP = 'https://shop.example.com';

let app: App;
let wsUrl: string;

beforeAll(async () => {
  ({ app } = await setUp('ws_limits', {
    ENABLE_CRON: 'false',
    WS_MAX_SUBSCRIPTIONS: String(MAX_SUBSCRIPTIONS),
    WS_MAX_SOCKETS_PER_USER: String(MAX_SOCKETS),
    WS_PING_SECONDS: String(PING_SECONDS),
    CORS_ORIGINS: SHOP,
  }));
  wsUrl = app.url.replace('http', 'ws');
});

type Closed = { code: number; reason: string };

/** A graphql-ws client by hand: the socket, and the close it ends with. */
function rawSocket(options: WebSocket.ClientOptions = {}): { socket: WebSocket; closed: Promise<Closed> } {
  const socket = new WebSocket(wsUrl, 'graphql-transport-ws', options);
  socket.on('error', () => undefined); // the close says what happened
  const closed = new Promise<Closed>((resolve) => socket.once('close', (code, reason) => resolve({ code, reason: String(reason) })));
  return { socket, closed };
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([p, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms).unref())]);

/** Opens and sends connection_init: 'ack', or the close that came instead. */
async function connect(bearer: string, options: WebSocket.ClientOptions = {}): Promise<{ socket: WebSocket; closed: Promise<Closed>; outcome: 'ack' | Closed }> {
  const { socket, closed } = rawSocket(options);
  const acked = new Promise<'ack'>((resolve) =>
    socket.on('message', (data) => JSON.parse((data as Buffer).toString()).type === 'connection_ack' && resolve('ack')),
  );
  socket.once('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${bearer}` } })));
  const outcome = await withTimeout(Promise.race([acked, closed]), 5_000, 'connection_ack or a close');
  return { socket, closed, outcome };
}

const closeAll = (sockets: WebSocket[]) => Promise.all(sockets.map((s) => new Promise((r) => (s.readyState === s.CLOSED ? r(undefined) : (s.once('close', r), s.close())))));

test('a message over WS_MAX_MESSAGE_BYTES (1 MiB) closes the socket with 1009; one under it is read', async () => {
  const { socket, closed } = rawSocket();
  await new Promise((r) => socket.once('open', r));
  socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: 'x'.repeat(5 * 1024 * 1024) } }));
  expect((await withTimeout(closed, 5_000, 'the close')).code).toBe(1009);

  // 900 KiB is read (and refused for what it says, not for its size).
  const under = rawSocket();
  await new Promise((r) => under.socket.once('open', r));
  under.socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: 'x'.repeat(900 * 1024) } }));
  expect((await withTimeout(under.closed, 5_000, 'the close')).code).toBe(4403);
});

function jobEvent(name: string): JobEventMessage {
  return { eventId: randomUUID(), name, event: 'SUCCEEDED', at: new Date().toISOString(), durationMs: 1, instance: 'test', error: null };
}

test('one subscription past WS_MAX_SUBSCRIPTIONS is answered LIMIT_EXCEEDED; the socket and its other subscriptions go on', async () => {
  const QUERY = 'subscription { jobEvents { name } }';
  const client = wsClient(app, token('limit-admin', true));
  try {
    const subs: Subscription[] = [];
    for (let i = 1; i <= MAX_SUBSCRIPTIONS; i++) subs.push(await subscribed(app, client, QUERY, {}, JOB_EVENTS_CHANNEL, i));
    const extra = new Subscription(client, QUERY);
    await extra.waitFor((s) => s.errors.length > 0, 5_000, 'the refusal');
    const [errors] = extra.errors as Array<Array<{ message: string; extensions?: { code?: string } }>>;
    expect(errors[0].extensions?.code).toBe('LIMIT_EXCEEDED');
    expect(errors[0].message).toContain(String(MAX_SUBSCRIPTIONS));
    expect(app.services.bus.listenerCount(JOB_EVENTS_CHANNEL)).toBe(MAX_SUBSCRIPTIONS);

    // The others still hear their events.
    await app.services.bus.publish([{ channel: JOB_EVENTS_CHANNEL, payload: { ...jobEvent('after-the-refusal') } }]);
    for (const s of subs) await s.waitFor((x) => x.events.some((e) => e.jobEvents.name === 'after-the-refusal'), 5_000, 'the event');

    // One completed makes room for another on the same socket.
    subs[0].dispose();
    await waitUntil(() => app.services.bus.listenerCount(JOB_EVENTS_CHANNEL) === MAX_SUBSCRIPTIONS - 1, 5_000, 'one fewer listener');
    const again = await subscribed(app, client, QUERY, {}, JOB_EVENTS_CHANNEL, MAX_SUBSCRIPTIONS);
    expect(again.errors).toEqual([]);
  } finally {
    await client.dispose();
  }
});

test('subscribe messages sent at once are all counted: no more than WS_MAX_SUBSCRIPTIONS run', async () => {
  const { socket, outcome } = await connect(token('burst-admin', true));
  expect(outcome).toBe('ack');
  const refused: string[] = [];
  socket.on('message', (data) => {
    const m = JSON.parse((data as Buffer).toString());
    if (m.type === 'error' && m.payload[0]?.extensions?.code === 'LIMIT_EXCEEDED') refused.push(m.id);
  });
  const before = app.services.bus.listenerCount(JOB_EVENTS_CHANNEL);
  for (let i = 0; i < 10; i++) socket.send(JSON.stringify({ id: `s${i}`, type: 'subscribe', payload: { query: 'subscription { jobEvents { name } }' } }));
  await waitUntil(() => refused.length === 10 - MAX_SUBSCRIPTIONS, 5_000, 'the refusals');
  await waitUntil(() => app.services.bus.listenerCount(JOB_EVENTS_CHANNEL) === before + MAX_SUBSCRIPTIONS, 5_000, 'the listeners');
  await closeAll([socket]);
});

test('a socket past WS_MAX_SOCKETS_PER_USER is closed with 4429; a closed one makes room; other users are not counted', async () => {
  const bearer = token('many-sockets');
  const first = await connect(bearer);
  const second = await connect(bearer);
  expect([first.outcome, second.outcome]).toEqual(['ack', 'ack']);
  const third = await connect(bearer);
  expect(third.outcome).toEqual({ code: 4429, reason: 'Too many sockets for this user' });

  const other = await connect(token('someone-else'));
  expect(other.outcome).toBe('ack');

  await closeAll([first.socket]);
  const sockets = [second.socket, other.socket];
  // The server counts the socket off when its end closes, a moment after the client's.
  await waitUntil(
    async () => {
      const next = await connect(bearer);
      sockets.push(next.socket);
      return next.outcome === 'ack';
    },
    5_000,
    'a socket accepted again',
  );
  await closeAll(sockets);
});

test('a socket is closed with 4403 when its token expires; one whose token has not stays open', async () => {
  const expiring = signToken({ secret: JWT_SECRET }, 'expiring-user', 'user', 2);
  const short = await connect(expiring);
  const long = await connect(token('lasting-user'));
  expect([short.outcome, long.outcome]).toEqual(['ack', 'ack']);
  const closed = await withTimeout(short.closed, 5_000, 'the close at expiry');
  expect(closed).toEqual({ code: 4403, reason: 'Token expired' });
  expect(long.socket.readyState).toBe(WebSocket.OPEN);
  await closeAll([long.socket]);
});

test('a peer that does not answer pings is terminated after ~2 intervals (WS_PING_SECONDS); one that answers stays', async () => {
  const began = Date.now();
  const silent = await connect(token('silent-user'), { autoPong: false });
  const alive = await connect(token('alive-user'));
  expect([silent.outcome, alive.outcome]).toEqual(['ack', 'ack']);
  let pings = 0;
  alive.socket.on('ping', () => pings++);
  // Terminated (no close frame, so the client sees 1006), and not before its first ping went unanswered.
  expect((await withTimeout(silent.closed, 3_000, 'the silent peer terminated')).code).toBe(1006);
  expect(Date.now() - began).toBeGreaterThanOrEqual(PING_SECONDS * 1000);
  // The answering one keeps being pinged, and open, well past that.
  await waitUntil(() => pings >= 8, 5_000, 'eight pings answered');
  expect(alive.socket.readyState).toBe(WebSocket.OPEN);
  await closeAll([alive.socket]);
});

test("a browser page's socket is refused (403) unless it is the server's own origin or listed in CORS_ORIGINS; no Origin is a server, accepted", async () => {
  const upgrade = (origin?: string) =>
    new Promise<number | 'open'>((resolve, reject) => {
      const socket = new WebSocket(wsUrl, 'graphql-transport-ws', origin ? { origin } : {});
      socket.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      socket.once('open', () => {
        socket.close();
        resolve('open');
      });
      socket.once('error', reject);
    });
  expect(await upgrade('https://evil.example.com')).toBe(403);
  expect(await upgrade('null')).toBe(403);
  expect(await upgrade(`http://evil.example.com:${app.port}`)).toBe(403);
  expect(await upgrade(SHOP)).toBe('open');
  expect(await upgrade(`http://localhost:${app.port}`)).toBe('open');
  expect(await upgrade()).toBe('open');
});

test('origins: without CORS_ORIGINS only the same host; default ports compare equal', () => {
  const none = new Set<string>();
  expect(originAllowed(undefined, 'api.example.com', none)).toBe(true);
  expect(originAllowed('https://api.example.com', 'api.example.com', none)).toBe(true);
  expect(originAllowed('https://api.example.com', 'api.example.com:443', none)).toBe(true);
  expect(originAllowed('https://shop.example.com', 'api.example.com', none)).toBe(false);
  expect(originAllowed('https://shop.example.com', 'api.example.com', new Set([SHOP]))).toBe(true);
  expect(originAllowed('https://api.example.com.evil.io', 'api.example.com', none)).toBe(false);
  expect(originAllowed('https://api.example.com', undefined, none)).toBe(false);
});

test('every subscription taking an id answers NOT_FOUND for an unknown one before it listens to anything', async () => {
  const user = token('id-guesser');
  const client = wsClient(app, user);
  const bus = app.services.bus;
  const listened: string[] = [];
  const listen = bus.listen.bind(bus);
  bus.listen = (channel, listener) => {
    listened.push(channel);
    return listen(channel, listener);
  };
  try {
    const firstError = async (query: string) => {
      const sub = new Subscription(client, query);
      await sub.waitFor((s) => s.errors.length > 0 || s.completed, 5_000, query);
      sub.dispose();
      return (sub.errors[0] as Array<{ extensions?: { code?: string } }> | undefined)?.[0]?.extensions?.code;
    };
    const unknown = '987654321';
    expect(await firstError(`subscription { auctionUpdated(auctionId: "${unknown}") { id } }`)).toBe('NOT_FOUND');
    expect(await firstError(`subscription { auctionCountdown(auctionId: "${unknown}") { remainingMs } }`)).toBe('NOT_FOUND');
    expect(await firstError(`subscription { auctionEnded(auctionId: "${unknown}") { eventId } }`)).toBe('NOT_FOUND');
    expect(await firstError(`subscription { seckillResultReady(productId: "${unknown}") { status } }`)).toBe('NOT_FOUND');
    expect(await firstError(`subscription { orderUpdated(orderId: "${unknown}") { id } }`)).toBe('NOT_FOUND');
    expect(await firstError('subscription { auctionUpdated(auctionId: "not-an-id") { id } }')).toBe('BAD_USER_INPUT');
    expect(listened).toEqual([]);
    // Nothing on Redis either: no channel of this server's prefix names the id.
    const redis = new Redis(app.services.config.redisUrl);
    const channels = (await redis.pubsub('CHANNELS', `${app.services.config.redisPrefix}:*`)) as string[];
    await redis.quit();
    expect(channels.filter((c) => c.includes(unknown))).toEqual([]);

    // Ids that exist are listened to, as before.
    const auction = await createAuction(app, token('id-seller'), inSeconds(3600));
    const sale = await createSale(app, 1);
    const updated = await subscribed(app, client, 'subscription($id: ID!) { auctionUpdated(auctionId: $id) { id } }', { id: auction.id }, channelOf('AUCTION_UPDATED', auction.id));
    const result = await subscribed(app, client, 'subscription($p: ID!) { seckillResultReady(productId: $p) { status } }', { p: sale.id }, channelOf('SECKILL_RESULT', `${sale.id}:id-guesser`));
    expect([updated.errors, result.errors]).toEqual([[], []]);
    expect(listened).toEqual([channelOf('AUCTION_UPDATED', auction.id), channelOf('SECKILL_RESULT', `${sale.id}:id-guesser`)]);
  } finally {
    bus.listen = listen;
    await client.dispose();
  }
});

import type { Client } from 'graphql-ws';
import type { App } from '../../src/app.js';
import { channelOf } from '../../src/events/types.js';
import { AUCTION_END } from '../../src/jobs/auction-end.js';
import { createAuction, inSeconds, setUp, Subscription, token, waitUntil, wsClient } from '../support/harness.js';

/**
 * Many graphql-ws subscribers of one auction, each on a socket of its own (bench:fanout's shape, smaller):
 * all accepted without a look-up of the auction each, all hear its end; a made-up id is still refused.
 */
const SUBSCRIBERS = 100;
const ENDED = 'subscription($id: ID!) { auctionEnded(auctionId: $id) { auction { id status } } }';

let app: App;
const clients: Client[] = [];

beforeAll(async () => {
  ({ app } = await setUp('auction_subscribers', { ENABLE_CRON: 'false', WS_MAX_SOCKETS_PER_USER: String(SUBSCRIBERS + 20) }));
});

afterAll(async () => {
  await Promise.all(clients.map((c) => Promise.resolve(c.dispose())));
});

/** Counts the auction service's look-ups of each id (the subscriptions' existence check). */
function countLookups(): Map<string, number> {
  const counts = new Map<string, number>();
  const auctions = app.services.auctions;
  const get = auctions.get.bind(auctions);
  auctions.get = (em, id) => {
    counts.set(id, (counts.get(id) ?? 0) + 1);
    return get(em, id);
  };
  return counts;
}

const errorCode = (sub: Subscription) => (sub.errors[0] as Array<{ extensions?: { code?: string } }> | undefined)?.[0]?.extensions?.code;

test('a hundred subscribers of one auction are all accepted with a look-up or two between them, and all hear its end', async () => {
  const lookups = countLookups();
  const auction = await createAuction(app, token('crowd-seller'), inSeconds(3600));
  const watcher = token('crowd-watcher');
  const subs = Array.from({ length: SUBSCRIBERS }, () => {
    const client = wsClient(app, watcher);
    clients.push(client);
    return new Subscription(client, ENDED, { id: auction.id });
  });
  await waitUntil(() => app.services.bus.listenerCount('AUCTION_ENDED') >= SUBSCRIBERS, 30_000, 'every subscriber listening');
  expect(subs.flatMap((s) => s.errors)).toEqual([]);
  // One per subscriber before (100); the ones at once share a query, the later ones its answer.
  expect(lookups.get(auction.id)).toBeGreaterThanOrEqual(1);
  expect(lookups.get(auction.id)).toBeLessThanOrEqual(3);

  const end = new Date(Date.now() + 300);
  await app.services.orm.em.fork().execute('update auctions set end_time = ? where id = ?', [end, auction.id]);
  await app.deadlines.arm(AUCTION_END, end);
  await Promise.all(subs.map((s) => s.waitFor((x) => x.events.length >= 1, 20_000, 'auctionEnded')));
  for (const s of subs) expect(s.events[0].auctionEnded.auction).toEqual({ id: auction.id, status: 'ENDED' });
});

test('a made-up auction id is refused each time it is asked for, also by many at once, and is never remembered', async () => {
  const lookups = countLookups();
  const client = wsClient(app, token('id-guesser'));
  clients.push(client);
  const madeUp = '987654321987';
  const listenersBefore = app.services.bus.listenerCount('AUCTION_ENDED');
  for (let wave = 1; wave <= 2; wave++) {
    const subs = Array.from({ length: 3 }, () => new Subscription(client, ENDED, { id: madeUp }));
    await Promise.all(subs.map((s) => s.waitFor((x) => x.errors.length > 0 || x.completed, 10_000, `wave ${wave}: an answer`)));
    expect(subs.map(errorCode)).toEqual(['NOT_FOUND', 'NOT_FOUND', 'NOT_FOUND']);
    // Asked again in the second wave: a refusal is not kept.
    expect(lookups.get(madeUp)).toBeGreaterThanOrEqual(wave);
  }
  const malformed = new Subscription(client, ENDED, { id: 'not-an-id' });
  await malformed.waitFor((x) => x.errors.length > 0, 10_000, 'an answer');
  expect(errorCode(malformed)).toBe('BAD_USER_INPUT');
  expect(app.services.bus.listenerCount('AUCTION_ENDED')).toBe(listenersBefore);

  // An auction that exists, on the same socket, is still accepted.
  const real = await createAuction(app, token('crowd-seller'), inSeconds(3600));
  const ok = new Subscription(client, 'subscription($id: ID!) { auctionUpdated(auctionId: $id) { id } }', { id: real.id });
  await waitUntil(() => app.services.bus.listenerCount(channelOf('AUCTION_UPDATED', real.id)) >= 1, 10_000, 'a listener on the real auction');
  expect(ok.errors).toEqual([]);
});

test('a text accepted before is still checked against each subscribe’s variables, and an invalid one is refused every time', async () => {
  const client = wsClient(app, token('text-reuser'));
  clients.push(client);
  const auction = await createAuction(app, token('crowd-seller'), inSeconds(3600));
  const paged = 'subscription($id: ID!, $n: Int) { auctionUpdated(auctionId: $id) { id bids(first: $n) { edges { node { amount } } } } }';
  const first = new Subscription(client, paged, { id: auction.id, n: 2 });
  await waitUntil(() => app.services.bus.listenerCount(channelOf('AUCTION_UPDATED', auction.id)) >= 1, 10_000, 'the first subscriber listening');
  expect(first.errors).toEqual([]);
  // The same text, its page now far over the cost limit.
  const costly = new Subscription(client, paged, { id: auction.id, n: 1_000_000 });
  await costly.waitFor((x) => x.errors.length > 0, 10_000, 'a refusal');
  expect(errorCode(costly)).toBe('QUERY_TOO_COSTLY');

  for (let i = 0; i < 2; i++) {
    const invalid = new Subscription(client, 'subscription($id: ID!) { auctionEnded(auctionId: $id) { noSuchField } }', { id: auction.id });
    await invalid.waitFor((x) => x.errors.length > 0, 10_000, 'a refusal');
    expect(JSON.stringify(invalid.errors)).toMatch(/noSuchField/);
  }
});

import type { Client } from 'graphql-ws';
import type { App } from '../../src/app.js';
import { AUCTION_FIELDS, createAuction, gql, inSeconds, setUp, sleep, subscribed, token, waitUntil, wsClient } from '../support/harness.js';

const ENDED_SUB = `subscription($id: ID) { auctionEnded(auctionId: $id) { eventId winnerId finalPrice endedAt auction { id status endTime winnerId } } }`;

let app: App;
let client: Client;
const seller = token('seller-1');
const bidder = token('bidder-1');

beforeAll(async () => {
  ({ app } = await setUp('auctions', { COUNTDOWN_TICK_SECONDS: '0.2' }));
  client = wsClient(app, bidder);
});

afterAll(async () => {
  await client?.dispose();
});

async function auctionRow(id: string) {
  const [row] = await app.services.orm.em.fork().execute('select * from auctions where id = ?', [id]);
  return row as { status: string; end_time: Date; ended_at: Date | null; winner_id: string | null };
}

test('an auction ends at its time, with its winner, and its watchers hear auctionEnded once', async () => {
  const a = await createAuction(app, seller, inSeconds(1.2));
  const sub = await subscribed(app, client, ENDED_SUB, { id: a.id }, 'AUCTION_ENDED');
  const bid = await gql(app, `mutation { placeBid(input: { auctionId: "${a.id}", amount: 150 }) { highestBid highestBidderId } }`, {}, bidder);
  expect(bid.data?.placeBid).toEqual({ highestBid: 150, highestBidderId: 'bidder-1' });

  await sub.waitFor((s) => s.events.length >= 1, 10_000, 'auctionEnded');
  const event = sub.events[0].auctionEnded;
  expect(event.auction).toMatchObject({ id: a.id, status: 'ENDED', winnerId: 'bidder-1' });
  expect(event.winnerId).toBe('bidder-1');
  expect(event.finalPrice).toBe(150);
  expect(new Date(event.endedAt).getTime()).toBeGreaterThanOrEqual(new Date(a.endTime).getTime());

  // Once: nothing more arrives, even after the safety sweep runs again.
  await app.deadlines.sweep();
  await sleep(500); // room for a second event that must not come
  expect(sub.events).toHaveLength(1);
  const row = await auctionRow(a.id);
  expect(row.status).toBe('ENDED');
  expect(row.winner_id).toBe('bidder-1');
  sub.dispose();
});

test('an event runs the whole document of each subscriber: aliases, fragments, directives by variables, a field resolver that reads the database', async () => {
  const a = await createAuction(app, seller, inSeconds(1.2));
  const query = `subscription($id: ID, $withBids: Boolean!, $noPrice: Boolean!) {
    ended: auctionEnded(auctionId: $id) {
      ...Who
      price: finalPrice @skip(if: $noPrice)
      auction { lot: title bids @include(if: $withBids) { edges { node { amount bidderId } } } status }
    }
  }
  fragment Who on AuctionEnded { __typename winnerId eventId }`;
  const full = await subscribed(app, client, query, { id: a.id, withBids: true, noPrice: false }, 'AUCTION_ENDED');
  const bare = await subscribed(app, client, query, { id: a.id, withBids: false, noPrice: true }, 'AUCTION_ENDED');
  await gql(app, `mutation { placeBid(input: { auctionId: "${a.id}", amount: 150 }) { id } }`, {}, bidder);
  await gql(app, `mutation { placeBid(input: { auctionId: "${a.id}", amount: 170 }) { id } }`, {}, token('bidder-2'));
  await full.waitFor((s) => s.events.length >= 1, 10_000, 'auctionEnded (full)');
  await bare.waitFor((s) => s.events.length >= 1, 10_000, 'auctionEnded (bare)');
  const eventId = full.events[0].ended.eventId;
  expect(full.events).toEqual([
    {
      ended: {
        __typename: 'AuctionEnded',
        winnerId: 'bidder-2',
        eventId,
        price: 170,
        auction: { lot: 'Lot', bids: { edges: [{ node: { amount: 170, bidderId: 'bidder-2' } }, { node: { amount: 150, bidderId: 'bidder-1' } }] }, status: 'ENDED' },
      },
    },
  ]);
  expect(bare.events).toEqual([{ ended: { __typename: 'AuctionEnded', winnerId: 'bidder-2', eventId, auction: { lot: 'Lot', status: 'ENDED' } } }]);
  expect(full.errors).toEqual([]);
  full.dispose();
  bare.dispose();
});

test('a cancelled auction never ends, and only its seller (or an admin) may cancel it', async () => {
  const a = await createAuction(app, seller, inSeconds(1));
  const sub = await subscribed(app, client, ENDED_SUB, { id: a.id }, 'AUCTION_ENDED');

  const byOther = await gql(app, `mutation { cancelAuction(id: "${a.id}") { status } }`, {}, bidder);
  expect(byOther.errors?.[0].extensions?.code).toBe('FORBIDDEN');
  const viaRestByOther = await fetch(app.url.replace('/graphql', `/api/auction-tasks/${a.id}`), {
    method: 'DELETE',
    headers: { authorization: `Bearer ${bidder}` },
  });
  expect(viaRestByOther.status).toBe(403);

  const cancelled = await fetch(app.url.replace('/graphql', `/api/auction-tasks/${a.id}`), {
    method: 'DELETE',
    headers: { authorization: `Bearer ${seller}` },
  });
  expect(cancelled.status).toBe(200);
  expect(await cancelled.json()).toMatchObject({ success: true, data: { auctionId: a.id, status: 'CANCELLED' } });

  const again = await gql(app, `mutation { cancelAuction(id: "${a.id}") { status } }`, {}, seller);
  expect(again.errors?.[0].extensions?.code).toBe('CONFLICT');

  // Past its end (and a sweep after it): nothing may end it.
  await sleep(new Date(a.endTime).getTime() - Date.now() + 1_000);
  await app.deadlines.sweep();
  expect((await auctionRow(a.id)).status).toBe('CANCELLED');
  expect(sub.events).toHaveLength(0);
  sub.dispose();
});

test('an auction ending before the armed wake-up ends on time', async () => {
  const late = await createAuction(app, seller, inSeconds(30));
  const early = await createAuction(app, seller, inSeconds(1));
  const sub = await subscribed(app, client, ENDED_SUB, { id: early.id }, 'AUCTION_ENDED');
  await sub.waitFor((s) => s.events.length === 1, 5_000, 'the early auction to end');
  const lateness = new Date(sub.events[0].auctionEnded.endedAt).getTime() - new Date(early.endTime).getTime();
  expect(lateness).toBeGreaterThanOrEqual(0);
  expect(lateness).toBeLessThan(1500);
  expect((await auctionRow(late.id)).status).toBe('ACTIVE');
  // After the early end, the wake-up re-arms at the next pending end: the late auction's.
  const armedAt = async () => (await app.deadlines.armed())[0].wakeAt?.getTime();
  await waitUntil(async () => (await armedAt()) === new Date(late.endTime).getTime(), 3_000, 're-arming at the late end');
  sub.dispose();
});

test('a bid in the soft-close window moves the end, and the auction ends at the new time, not the old', async () => {
  const a = await createAuction(app, seller, inSeconds(1), { softCloseSeconds: 3 });
  const sub = await subscribed(app, client, ENDED_SUB, { id: a.id }, 'AUCTION_ENDED');
  const bid = await gql(app, `mutation { placeBid(input: { auctionId: "${a.id}", amount: 100 }) { endTime } }`, {}, bidder);
  const newEnd = new Date(bid.data!.placeBid.endTime).getTime();
  expect(newEnd).toBeGreaterThan(new Date(a.endTime).getTime() + 1500);

  // Past the old end: it must not have ended then.
  await sleep(new Date(a.endTime).getTime() - Date.now() + 700);
  expect((await auctionRow(a.id)).status).toBe('ACTIVE');
  expect(sub.events).toHaveLength(0);

  await sub.waitFor((s) => s.events.length === 1, 6_000, 'the extended auction to end');
  expect(new Date(sub.events[0].auctionEnded.endedAt).getTime()).toBeGreaterThanOrEqual(newEnd);
  sub.dispose();
});

test('bids are checked: too low, by the seller, after the end', async () => {
  const a = await createAuction(app, seller, inSeconds(20));
  const low = await gql(app, `mutation { placeBid(input: { auctionId: "${a.id}", amount: 99 }) { id } }`, {}, bidder);
  expect(low.errors?.[0].extensions?.code).toBe('CONFLICT');
  const own = await gql(app, `mutation { placeBid(input: { auctionId: "${a.id}", amount: 500 }) { id } }`, {}, seller);
  expect(own.errors?.[0].extensions?.code).toBe('FORBIDDEN');
  const ok = await gql(app, `mutation { placeBid(input: { auctionId: "${a.id}", amount: 100 }) { highestBid } }`, {}, bidder);
  expect(ok.data?.placeBid.highestBid).toBe(100);
  const notEnough = await gql(app, `mutation { placeBid(input: { auctionId: "${a.id}", amount: 105 }) { id } }`, {}, token('bidder-2'));
  expect(notEnough.errors?.[0].message).toMatch(/at least 110/);
  const missing = await gql(app, `mutation { placeBid(input: { auctionId: "999999", amount: 105 }) { id } }`, {}, bidder);
  expect(missing.errors?.[0].extensions?.code).toBe('NOT_FOUND');
});

test('Auction.bids is a connection: highest first, a page at a time by cursor, batched over a page of auctions', async () => {
  const [a, b] = [await createAuction(app, seller, inSeconds(60)), await createAuction(app, seller, inSeconds(60))];
  for (const [amount, who] of [[100, 'bidder-1'], [110, 'bidder-2'], [120, 'bidder-1']] as const) {
    expect((await gql(app, `mutation { placeBid(input: { auctionId: "${a.id}", amount: ${amount} }) { id } }`, {}, token(who))).errors).toBeUndefined();
  }
  expect((await gql(app, `mutation { placeBid(input: { auctionId: "${b.id}", amount: 300 }) { id } }`, {}, bidder)).errors).toBeUndefined();

  const bids = 'bids(first: 2, after: $after) { edges { cursor node { amount bidderId auctionId } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } }';
  // Both auctions' pages in one list: the loader asks for them together.
  const list = await gql(app, `query($after: String) { auctions(first: 2) { edges { node { id ${bids} } } } }`, { after: null }, bidder);
  expect(list.errors).toBeUndefined();
  const pages = new Map(list.data!.auctions.edges.map((e: any) => [e.node.id, e.node.bids]));
  expect(pages.get(b.id)).toMatchObject({
    edges: [{ node: { amount: 300, bidderId: 'bidder-1', auctionId: b.id } }],
    pageInfo: { hasNextPage: false, hasPreviousPage: false },
  });
  const first: any = pages.get(a.id);
  expect(first.edges.map((e: any) => e.node.amount)).toEqual([120, 110]);
  expect(first.pageInfo).toEqual({ hasNextPage: true, hasPreviousPage: false, startCursor: first.edges[0].cursor, endCursor: first.edges[1].cursor });

  const one = `query($id: ID!, $after: String) { auction(id: $id) { ${bids} } }`;
  const second = (await gql(app, one, { id: a.id, after: first.pageInfo.endCursor }, bidder)).data!.auction.bids;
  expect(second.edges.map((e: any) => e.node)).toEqual([{ amount: 100, bidderId: 'bidder-1', auctionId: a.id }]);
  expect(second.pageInfo).toEqual({ hasNextPage: false, hasPreviousPage: true, startCursor: second.edges[0].cursor, endCursor: second.edges[0].cursor });

  // An auction's cursor is not a bid's.
  const foreign = await gql(app, one, { id: a.id, after: Buffer.from(`id:${a.id}`).toString('base64url') }, bidder);
  expect(foreign.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
  const tooMany = await gql(app, `query($id: ID!) { auction(id: $id) { bids(first: 101) { edges { cursor } } } }`, { id: a.id }, bidder);
  expect(tooMany.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
});

test('the countdown ticks, follows an extension, sends a last event at the end and completes', async () => {
  const a = await createAuction(app, seller, inSeconds(1.5), { softCloseSeconds: 2 });
  const sub = await subscribed(
    app,
    client,
    `subscription($id: ID!) { auctionCountdown(auctionId: $id) { auctionId endTime serverTime remainingMs status } }`,
    { id: a.id },
    `AUCTION_UPDATED:${a.id}`,
  );
  await sub.waitFor((s) => s.events.length >= 3, 5_000, 'three ticks');
  const first = sub.events[0].auctionCountdown;
  expect(first).toMatchObject({ auctionId: a.id, status: 'ACTIVE' });
  expect(first.remainingMs).toBeGreaterThan(0);
  expect(first.remainingMs).toBeLessThanOrEqual(1500);

  const bid = await gql(app, `mutation { placeBid(input: { auctionId: "${a.id}", amount: 100 }) { endTime } }`, {}, bidder);
  const movedTo = bid.data!.placeBid.endTime;
  expect(new Date(movedTo).getTime()).toBeGreaterThan(new Date(a.endTime).getTime());
  await sub.waitFor((s) => s.events.some((e) => e.auctionCountdown.endTime === movedTo), 1_000, 'the moved endTime');

  await sub.waitFor((s) => s.completed, 8_000, 'the countdown to complete');
  const last = sub.events[sub.events.length - 1].auctionCountdown;
  expect(last.status).toBe('ENDED');
  expect(last.remainingMs).toBe(0);
  expect(sub.events.slice(0, -1).every((e) => e.auctionCountdown.status === 'ACTIVE')).toBe(true);
});

test('auctionUpdated follows bids and the end', async () => {
  const a = await createAuction(app, seller, inSeconds(1.5));
  const sub = await subscribed(app, client, `subscription($id: ID!) { auctionUpdated(auctionId: $id) { ${AUCTION_FIELDS} } }`, { id: a.id }, `AUCTION_UPDATED:${a.id}`);
  await gql(app, `mutation { placeBid(input: { auctionId: "${a.id}", amount: 120 }) { id } }`, {}, bidder);
  await sub.waitFor((s) => s.events.some((e) => e.auctionUpdated.status === 'ENDED'), 6_000, 'the end');
  expect(sub.events.map((e) => [e.auctionUpdated.status, e.auctionUpdated.highestBid])).toEqual([
    ['ACTIVE', 120],
    ['ENDED', 120],
  ]);
  sub.dispose();
});

test('queries: auction, auctions with cursor pagination and a status filter, me, serverTime', async () => {
  const created = [];
  for (let i = 0; i < 3; i++) created.push(await createAuction(app, token('pager'), inSeconds(60)));
  const pageInfo = 'pageInfo { hasNextPage hasPreviousPage startCursor endCursor }';
  const page1 = await gql(app, `{ auctions(first: 2, filter: { status: ACTIVE }) { edges { cursor node { id status } } ${pageInfo} } }`, {}, bidder);
  expect(page1.data!.auctions.edges.map((e: any) => e.node.id)).toEqual([created[2].id, created[1].id]);
  expect(page1.data!.auctions.pageInfo).toEqual({
    hasNextPage: true,
    hasPreviousPage: false,
    startCursor: page1.data!.auctions.edges[0].cursor,
    endCursor: page1.data!.auctions.edges[1].cursor,
  });
  const page2 = await gql(
    app,
    `query($after: String) { auctions(first: 2, after: $after, filter: { status: ACTIVE }) { edges { cursor node { id } } ${pageInfo} } }`,
    { after: page1.data!.auctions.pageInfo.endCursor },
    bidder,
  );
  expect(page2.data!.auctions.edges[0].node.id).toBe(created[0].id);
  // A second page has one before it, and starts at its own first edge.
  expect(page2.data!.auctions.pageInfo).toMatchObject({ hasPreviousPage: true, startCursor: page2.data!.auctions.edges[0].cursor });

  const one = await gql(app, `query($id: ID!) { auction(id: $id) { id title bids { edges { node { amount } } ${pageInfo} } } }`, { id: created[0].id }, bidder);
  expect(one.data!.auction).toEqual({
    id: created[0].id,
    title: 'Lot',
    bids: { edges: [], pageInfo: { hasNextPage: false, hasPreviousPage: false, startCursor: null, endCursor: null } },
  });
  // The GraphQL enum is SCREAMING_CASE; the token's claim stays `admin`.
  const me = await gql(app, `{ me { id role } serverTime }`, {}, token('boss', true));
  expect(me.data!.me).toEqual({ id: 'boss', role: 'ADMIN' });
  expect((await gql(app, `{ me { role } }`, {}, bidder)).data!.me).toEqual({ role: 'USER' });
  expect(Math.abs(new Date(me.data!.serverTime).getTime() - Date.now())).toBeLessThan(5000);
  const badCursor = await gql(app, `{ auctions(after: "nope") { edges { cursor } } }`, {}, bidder);
  expect(badCursor.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
});

test('bad input, missing or bad tokens, malformed and over-deep queries get clean errors', async () => {
  const past = await gql(
    app,
    `mutation { createAuction(input: { nftId: "n", title: "t", startingPrice: 1, minIncrement: 1, endTime: "2020-01-01T00:00:00Z" }) { id } }`,
    {},
    seller,
  );
  expect(past.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
  const invalid = await gql(
    app,
    `mutation { createAuction(input: { nftId: "n", title: "", startingPrice: -1, minIncrement: 0, endTime: "${inSeconds(10)}" }) { id } }`,
    {},
    seller,
  );
  expect(invalid.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
  expect(JSON.stringify(invalid.errors)).not.toMatch(/stacktrace|"target"/);

  const anonymous = await gql(app, `{ me { id } }`);
  expect(anonymous.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');
  const forged = await gql(app, `{ me { id } }`, {}, 'not-a-jwt');
  expect(forged.status).toBe(401);
  expect(forged.errors?.[0].extensions?.code).toBe('UNAUTHENTICATED');

  const malformed = await gql(app, `{ auctions(first: 2) { edges { `, {}, bidder);
  expect(malformed.errors?.[0].extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
  // Bodies the JSON parser refuses get GraphQL-shaped JSON with a code, not an HTML page.
  for (const [body, status, code] of [
    ['{"query": "{ me { id } }"', 400, 'BAD_REQUEST'],
    [JSON.stringify({ query: `{ me { id } }`, padding: 'x'.repeat(200_000) }), 413, 'PAYLOAD_TOO_LARGE'],
  ] as const) {
    const res = await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${bidder}` }, body });
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    expect((await res.json()).errors[0].extensions.code).toBe(code);
  }
  // The schema has no cycles, but introspection does: the classic hostile query.
  const ofTypes = (n: number): string => (n === 0 ? 'name' : `ofType { ${ofTypes(n - 1)} }`);
  const tooDeep = await gql(app, `{ __schema { types { fields { type { ${ofTypes(20)} } } } } }`, {}, bidder);
  expect(tooDeep.errors?.[0].message).toMatch(/levels deep; the limit is 15/);
  expect(tooDeep.data).toBeUndefined();
  const introspection = await gql(app, `{ __schema { types { fields { type { ${ofTypes(7)} } } } } }`, {}, bidder);
  expect(introspection.errors).toBeUndefined();
  const costly = await gql(app, `{ auctions(first: 100) { edges { node { id bids { edges { node { id bidderId amount createdAt auctionId } } } } } } }`, {}, bidder);
  expect(costly.errors?.[0].message).toMatch(/costs \d+; the limit is/);
  expect(costly.data).toBeUndefined();
});

test('POST /graphql with JSON answers as the Express route does, whichever way the body comes', async () => {
  // `POST /graphql` with a plain JSON body is read by the server itself (graphqlJsonPost); `/graphql/`
  // still goes through Express and express.json. Both must answer every body alike.
  // Express answers the bodies it refuses with res.json, which adds an ETag: how to tell which way a body went.
  const etags = new Map<string, boolean[]>();
  const post = async (url: string, body: string, contentType = 'application/json') => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': contentType, authorization: `Bearer ${bidder}` }, body });
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
    etags.set(url, [...(etags.get(url) ?? []), res.headers.has('etag')]);
    const json = await res.json();
    return { status: res.status, code: json.errors?.[0]?.extensions?.code ?? null, me: json.data?.me?.id ?? null };
  };
  const bodies = [
    JSON.stringify({ query: '{ me { id } }' }),
    `\uFEFF${JSON.stringify({ query: '{ me { id } }' })}`,
    '{"query": "{ me { id } }"',
    '"{ me { id } }"',
    '   ',
    JSON.stringify([{ query: '{ me { id } }' }]),
    JSON.stringify({ query: '{ me { id } }', padding: 'x'.repeat(200_000) }),
  ];
  const direct = [];
  for (const b of bodies) direct.push(await post(app.url, b));
  const viaExpress = [];
  for (const b of bodies) viaExpress.push(await post(`${app.url}/`, b));
  expect(direct).toEqual(viaExpress);
  // The malformed JSON, the JSON string and the too large body were refused by express.json on `/graphql/`
  // only: the direct path read them itself.
  expect(etags.get(app.url)).toEqual(bodies.map(() => false));
  expect([2, 3, 6].map((i) => etags.get(`${app.url}/`)![i])).toEqual([true, true, true]);
  expect(direct.map((r) => [r.status, r.code])).toEqual([
    [200, null],
    [200, null],
    [400, 'BAD_REQUEST'],
    [400, 'BAD_REQUEST'],
    [400, 'BAD_REQUEST'],
    [400, 'BAD_REQUEST'],
    [413, 'PAYLOAD_TOO_LARGE'],
  ]);
  expect(direct[0].me).toBe('bidder-1');
  expect(direct[1].me).toBe('bidder-1');
  expect(await post(`${app.url}?x=1`, bodies[0], 'Application/JSON; charset="UTF-8"')).toEqual(direct[0]);

  // Too large without a Content-Length (chunked): refused once the limit is passed, not after reading it all.
  const chunks = [JSON.stringify({ query: '{ me { id } }', padding: '' }).slice(0, -2), ...Array.from({ length: 30 }, () => 'x'.repeat(10_000)), '"}'];
  const stream = new ReadableStream({
    pull(controller) {
      const next = chunks.shift();
      if (next === undefined) controller.close();
      else controller.enqueue(new TextEncoder().encode(next));
    },
  });
  const chunked = await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${bidder}` }, body: stream, duplex: 'half' } as RequestInit);
  expect(chunked.status).toBe(413);
  expect((await chunked.json()).errors[0].extensions.code).toBe('PAYLOAD_TOO_LARGE');
});

test('a subscription without a valid token is refused', async () => {
  const anon = wsClient(app);
  const failed = await new Promise<unknown>((resolve) => {
    anon.subscribe({ query: `subscription { auctionEnded { eventId } }` }, { next: () => undefined, error: resolve, complete: () => resolve('completed') });
  });
  expect(String((failed as { code?: number }).code ?? failed)).toMatch(/4403/);
  await anon.dispose();
});

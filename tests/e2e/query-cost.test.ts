import { createRequire } from 'node:module';
import { jest } from '@jest/globals';
import { getIntrospectionQuery } from 'graphql';
import type { Client } from 'graphql-ws';
import type { App } from '../../src/app.js';
import { createAuction, gql, inSeconds, LogCapture, setUp, Subscription, token, wsClient } from '../support/harness.js';

/**
 * Hostile documents are refused before anything runs, over HTTP and over graphql-ws alike: past the
 * token limit by the parser (GRAPHQL_PARSE_FAILED), then by the limits with their own codes:
 * QUERY_TOO_COMPLEX (fragment definitions, a key repeated past 20), QUERY_TOO_DEEP, QUERY_TOO_COSTLY
 * (aliases count, a `first: $n` counts the request's `n`), before graphql's own validation. Queries a
 * client really writes (a few aliases, renames, codegen's variables, the playground's introspection)
 * still run.
 */
let app: App;
let ws: Client;
const user = token('cost-ann');
const log = new LogCapture();

beforeAll(async () => {
  ({ app } = await setUp('query_cost', {}, { log }));
  ws = wsClient(app, user); // one socket for the file: a user may hold WS_MAX_SOCKETS_PER_USER
});

afterAll(async () => {
  await ws?.dispose();
});

const aliases = (n: number, field: string) => Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(' ');
type Errors = Array<{ message: string; extensions?: { code?: string } }>;

/** The first thing a graphql-ws operation answers: its errors, or its first result's data. */
async function firstAnswer(query: string, variables: Record<string, unknown> = {}): Promise<{ errors?: Errors; data?: any }> {
  const sub = new Subscription(ws, query, variables);
  try {
    await sub.waitFor((s) => s.events.length > 0 || s.errors.length > 0 || s.completed, 10_000, 'an answer');
    return sub.errors.length > 0 ? { errors: sub.errors[0] as Errors } : { data: sub.events[0] };
  } finally {
    sub.dispose();
  }
}

/** `levels` of fragments on `type`, each spreading two of the next level; the last level asks `leaf`. */
function fragmentBomb(type: string, levels: number, leaf: string): { spread: string; fragments: string } {
  let fragments = '';
  for (let level = 0; level < levels; level++) {
    for (const name of level === 0 ? ['F0a'] : [`F${level}a`, `F${level}b`]) fragments += `fragment ${name} on ${type} { ...F${level + 1}a ...F${level + 1}b }\n`;
  }
  fragments += `fragment F${levels}a on ${type} { ${leaf} }\nfragment F${levels}b on ${type} { ${leaf} }\n`;
  return { spread: '...F0a', fragments };
}
/** 32 levels, 2.8 KB: 2^32 serverTimes when each spread is walked again; it held the event loop > 10 s. */
const bomb = (() => {
  const { spread, fragments } = fragmentBomb('Query', 32, 'serverTime');
  return `query Bomb { ${spread} }\n${fragments}`;
})();
/** A refusal is prompt: far within the 10 s the walk once held the event loop for. */
const PROMPT_MS = 10_000;

async function post(query: string, bearer?: string, accept?: string): Promise<{ status: number; errors?: Errors; data?: unknown }> {
  const res = await fetch(app.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(accept ? { accept } : {}), ...(bearer ? { authorization: `Bearer ${bearer}` } : {}) },
    body: JSON.stringify({ query }),
    signal: AbortSignal.timeout(PROMPT_MS),
  });
  return { status: res.status, ...((await res.json()) as { errors?: Errors; data?: unknown }) };
}

describe('a fragment bomb', () => {
  test('over HTTP, with and without a token, is refused with QUERY_TOO_COSTLY, and the server still answers', async () => {
    for (const bearer of [user, undefined]) {
      const res = await post(bomb, bearer);
      expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['QUERY_TOO_COSTLY']);
      expect(res.errors?.[0].message).toMatch(/^Query costs \d+; the limit is 5000/);
      expect(res.data).toBeUndefined();
    }
    expect((await post('{ serverTime }')).data).toEqual({ serverTime: expect.any(String) });
  });

  test('over graphql-ws, as a query and inside a subscription, is refused with QUERY_TOO_COSTLY', async () => {
    const query = await firstAnswer(bomb);
    expect(query.errors?.map((e) => e.extensions?.code)).toEqual(['QUERY_TOO_COSTLY']);
    const events = fragmentBomb('AuctionEnded', 32, 'eventId');
    const sub = await firstAnswer(`subscription { auctionEnded { ${events.spread} } }\n${events.fragments}`);
    expect(sub.errors?.map((e) => e.extensions?.code)).toEqual(['QUERY_TOO_COSTLY']);
    expect((await firstAnswer('{ serverTime }')).data).toEqual({ serverTime: expect.any(String) });
    expect((await post('{ serverTime }')).data).toEqual({ serverTime: expect.any(String) });
  });
});

describe('the document limits, over HTTP and graphql-ws', () => {
  const fragments = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `...F${i}`).join(' ')} } ${Array.from({ length: n }, (_, i) => `fragment F${i} on Query { f${i}: serverTime }`).join(' ')}`;

  test('more than GRAPHQL_MAX_FRAGMENTS (100) fragment definitions: QUERY_TOO_COMPLEX', async () => {
    expect((await post(fragments(100), user)).errors).toBeUndefined();
    const http = await post(fragments(101), user);
    expect(http.errors).toEqual([expect.objectContaining({ message: 'Document has 101 fragments; the limit is 100', extensions: { code: 'QUERY_TOO_COMPLEX' } })]);
    expect((await firstAnswer(fragments(101))).errors?.[0].extensions?.code).toBe('QUERY_TOO_COMPLEX');
  });

  test('more than GRAPHQL_MAX_TOKENS (5,000) tokens: refused by the parser, GRAPHQL_PARSE_FAILED', async () => {
    // 2,000 aliases of serverTime are 6,002 tokens.
    const flood = `{ ${aliases(2000, 'serverTime')} }`;
    const http = await post(flood, user);
    expect(http.errors?.map((e) => e.extensions?.code)).toEqual(['GRAPHQL_PARSE_FAILED']);
    expect(http.errors?.[0].message).toMatch(/more th\w+ 5000 tokens/);
    expect((await firstAnswer(flood)).errors?.[0].extensions?.code).toBe('GRAPHQL_PARSE_FAILED');
  });

  test('a refused query answers 200 to application/json and 400 to application/graphql-response+json, as before the limits left validation', async () => {
    const costly = `{ ${aliases(600, 'serverTime')} }`;
    expect((await post(costly, user)).status).toBe(200);
    const strict = await post(costly, user, 'application/graphql-response+json');
    expect(strict.status).toBe(400);
    expect(strict.errors?.[0].extensions?.code).toBe('QUERY_TOO_COSTLY');
  });
});

describe('over HTTP', () => {
  test('600 aliases of one field (under the token limit) are refused with QUERY_TOO_COSTLY; nothing runs', async () => {
    // 600 x (me + id) + 599 x 10 = 7,190; 600 serverTimes or __typenames cost 6,590 and 5,990.
    for (const field of ['me { id }', 'serverTime', '__typename']) {
      const res = await gql(app, `{ ${aliases(600, field)} }`, {}, user);
      expect(res.errors).toHaveLength(1);
      expect(res.errors![0].extensions?.code).toBe('QUERY_TOO_COSTLY');
      expect(res.errors![0].message).toMatch(/^Query costs \d+; the limit is 5000/);
      expect(res.data).toBeUndefined();
    }
    // As a mutation too: 600 aliased writes would be 600 transactions, one after another.
    const writes = await gql(app, `mutation { ${aliases(600, 'markAllMessagesRead')} }`, {}, user);
    expect(writes.errors?.[0].extensions?.code).toBe('QUERY_TOO_COSTLY');
    expect(writes.data).toBeUndefined();
  });

  test('a query with a few aliases, renames and repeats still runs', async () => {
    const auction = await createAuction(app, user, inSeconds(3600));
    const res = await gql(
      app,
      `query($id: ID!) {
        first: auction(id: $id) { auctionId: id status }
        second: auction(id: $id) { id title }
        a: me { id } b: me { userId: id }
        now: serverTime serverTime
      }`,
      { id: auction.id },
      user,
    );
    expect(res.errors).toBeUndefined();
    expect(res.data).toEqual({
      first: { auctionId: auction.id, status: 'ACTIVE' },
      second: { id: auction.id, title: 'Lot' },
      a: { id: 'cost-ann' },
      b: { userId: 'cost-ann' },
      now: expect.any(String),
      serverTime: expect.any(String),
    });
  });

  test('a page size given as a variable costs its value: a codegen query asking a few runs, asking 100 is refused', async () => {
    const query = 'query Page($n: Int!) { auctions(first: $n) { edges { node { id bids { edges { node { id bidderId amount } } } } } } }';
    // 1 + n x (edges + node + id + bids + 20 x (edges + node + 3)): 209 for 2, 10,401 for 100, whose walk
    // stops at the first field past the limit, with 6,401 counted (auctions, 4 x 100, then bids' edges,
    // node and id at 2,000 each).
    const few = await gql(app, query, { n: 2 }, user);
    expect(few.errors).toBeUndefined();
    expect(few.data?.auctions.edges).toEqual(expect.any(Array));
    const many = await gql(app, query, { n: 100 }, user);
    expect(many.errors?.map((e) => e.extensions?.code)).toEqual(['QUERY_TOO_COSTLY']);
    expect(many.errors?.[0].message).toMatch(/^Query costs 6401; the limit is 5000 \(counting stopped once past it\)/);
  });

  test("the playground's introspection query runs", async () => {
    // The options GraphiQL (the playground's bundle) introspects with, typeDepth 9 included.
    const query = getIntrospectionQuery({ descriptions: true, inputValueDeprecation: true, schemaDescription: true, oneOf: true });
    const res = await gql(app, query, {}, user);
    expect(res.errors).toBeUndefined();
    expect(res.data?.__schema.queryType.name).toBe('Query');
    expect(res.data?.__schema.subscriptionType.name).toBe('Subscription');
    // Anonymous too: the playground introspects before a token is typed in.
    expect((await gql(app, query)).errors).toBeUndefined();
  });
});

describe('over graphql-ws', () => {
  test('an alias flood is refused with QUERY_TOO_COSTLY, as a query and inside a subscription', async () => {
    const query = await firstAnswer(`{ ${aliases(600, 'me { id }')} }`);
    expect(query.data).toBeUndefined();
    expect(query.errors?.[0].extensions?.code).toBe('QUERY_TOO_COSTLY');
    expect(query.errors?.[0].message).toMatch(/^Query costs \d+; the limit is 5000/);

    const sub = await firstAnswer(`subscription { auctionEnded { ${aliases(600, 'eventId')} } }`);
    expect(sub.data).toBeUndefined();
    expect(sub.errors?.[0].extensions?.code).toBe('QUERY_TOO_COSTLY');
  });

  test('a subscription and a query with a few aliases still run', async () => {
    const auction = await createAuction(app, user, inSeconds(3600));
    const tick = await firstAnswer(
      'subscription($id: ID!) { auctionCountdown(auctionId: $id) { id: auctionId left: remainingMs remainingMs state: status } }',
      { id: auction.id },
    );
    expect(tick.errors).toBeUndefined();
    expect(tick.data.auctionCountdown).toMatchObject({ id: auction.id, state: 'ACTIVE', left: expect.any(Number), remainingMs: expect.any(Number) });

    const query = await firstAnswer('{ a: me { id } b: me { id } now: serverTime }');
    expect(query.errors).toBeUndefined();
    expect(query.data).toEqual({ a: { id: 'cost-ann' }, b: { id: 'cost-ann' }, now: expect.any(String) });

    // A variable page size costs its value here too.
    const page = 'query($n: Int!) { auctions(first: $n) { edges { node { id bids { edges { node { id bidderId amount } } } } } } }';
    expect((await firstAnswer(page, { n: 2 })).errors).toBeUndefined();
    expect((await firstAnswer(page, { n: 100 })).errors?.[0].extensions?.code).toBe('QUERY_TOO_COSTLY');
  });
});

describe('fields repeated under one key (graphql compares them pairwise while validating)', () => {
  const repeated = (n: number, field = 'me { id }') => `{ ${Array.from({ length: n }, () => field).join(' ')} }`;
  /** 12 KB, cost 2,498: graphql's validation spent ~100 ms on it before refusing it (bench:hostile). */
  const flood = repeated(1249);
  type Way = 'direct' | 'express' | 'get';
  /** The plain JSON POST the server reads itself, a POST through Express (`/graphql/`), a GET through Express. */
  async function send(way: Way, query: string, accept?: string): Promise<{ status: number; type: string | null; errors?: Errors; data?: unknown }> {
    const headers: Record<string, string> = { authorization: `Bearer ${user}`, ...(accept ? { accept } : {}) };
    const res =
      way === 'get'
        ? await fetch(`${app.url}?${new URLSearchParams({ query })}`, { headers: { ...headers, 'apollo-require-preflight': 'true' } })
        : await fetch(way === 'direct' ? app.url : `${app.url}/`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
    const type = res.headers.get('content-type');
    // A GET accepting only text/html is the playground's page, whatever its query.
    const body = type?.startsWith('text/html') ? { html: true } : ((await res.json()) as { errors?: Errors; data?: unknown });
    return { status: res.status, type, ...body };
  }
  /**
   * graphql's validate begins with assertValidSchema, which it looks up on its module at each call:
   * counting those calls counts validations (and executions, which a refused document never reaches).
   */
  const validations = jest.spyOn(createRequire(import.meta.url)('graphql/type/validate.js') as { assertValidSchema: (s: unknown) => void }, 'assertValidSchema');

  test('1,249 copies of me { id } are refused with QUERY_TOO_COMPLEX over both HTTP paths, a GET and graphql-ws, without graphql validating them', async () => {
    for (const way of ['direct', 'express', 'get'] as const) {
      // A GET's URL holds fewer (the copies, URL-encoded, would pass Node's 16 KB header limit).
      const query = way === 'get' ? repeated(500) : flood;
      const before = validations.mock.calls.length;
      const res = await send(way, query);
      expect({ way, status: res.status, codes: res.errors?.map((e) => e.extensions?.code), data: res.data }).toEqual({ way, status: 200, codes: ['QUERY_TOO_COMPLEX'], data: undefined });
      expect(res.errors?.[0].message).toBe('Query asks for "me" more than 20 times at one level (fragments included); the limit is 20');
      expect(validations.mock.calls.length).toBe(before);
    }
    const before = validations.mock.calls.length;
    expect((await firstAnswer(flood)).errors?.map((e) => e.extensions?.code)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(validations.mock.calls.length).toBe(before);
    // A document graphql would refuse too: the limits answer first, graphql never looks at it.
    const unknownField = `{ nope ${repeated(21).slice(1)}`;
    expect((await send('direct', unknownField)).errors?.map((e) => e.extensions?.code)).toEqual(['QUERY_TOO_COMPLEX']);
    expect((await firstAnswer(unknownField)).errors?.map((e) => e.extensions?.code)).toEqual(['QUERY_TOO_COMPLEX']);
    expect(validations.mock.calls.length).toBe(before);
    // The counter counts: a document the limits pass is validated (then run).
    expect((await send('direct', repeated(20))).data).toEqual({ me: { id: 'cost-ann' } });
    expect(validations.mock.calls.length).toBeGreaterThan(before);
  });

  test('a document named by its hash alone (automatic persisted queries), which the limits could not read, is not taken', async () => {
    const persistedQuery = { version: 1, sha256Hash: 'ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38' };
    const res = await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ extensions: { persistedQuery } }) });
    expect(((await res.json()) as { errors?: Errors }).errors?.map((e) => e.extensions?.code)).toEqual(['PERSISTED_QUERY_NOT_SUPPORTED']);
  });

  test('through fragments: 21 fragments asking for one key are refused; one fragment spread 1,000 times at one level is not', async () => {
    const holders = `{ ${Array.from({ length: 21 }, (_, i) => `...F${i}`).join(' ')} } ${Array.from({ length: 21 }, (_, i) => `fragment F${i} on Query { me { id } }`).join(' ')}`;
    expect((await send('direct', holders)).errors?.map((e) => e.extensions?.code)).toEqual(['QUERY_TOO_COMPLEX']);
    expect((await send('direct', `{ ${'...F '.repeat(1000)}} fragment F on Query { me { id } }`)).data).toEqual({ me: { id: 'cost-ann' } });
  });

  test('a refusal answers as Apollo answers a document that does not validate: status and Content-Type for each Accept, on each path', async () => {
    const accepts = [undefined, 'application/json', 'application/graphql-response+json', 'application/graphql-response+json, application/json', '*/*', 'text/html'];
    for (const way of ['direct', 'express', 'get'] as const) {
      for (const accept of accepts) {
        const apollo = await send(way, '{ nope }', accept);
        const ours = await send(way, repeated(21), accept);
        expect({ way, accept, status: ours.status, type: ours.type }).toEqual({ way, accept, status: apollo.status, type: apollo.type });
        expect(Object.keys(ours)).toEqual(Object.keys(apollo));
      }
    }
  });

  test('a 1,600-deep document is refused before Apollo: QUERY_TOO_DEEP, logged once as a graphql request, never cached (Apollo once logged a stack overflow for each)', async () => {
    const deep = `{ __schema { types { fields { type { ${'ofType { '.repeat(1600)}name${' }'.repeat(1600)} } } } } }`;
    const from = log.lines.length;
    const before = validations.mock.calls.length;
    const res = await send('direct', deep);
    expect(res.errors?.map((e) => e.extensions?.code)).toEqual(['QUERY_TOO_DEEP']);
    expect(validations.mock.calls.length).toBe(before);
    const lines = log.lines.slice(from);
    expect(lines.filter((l) => l.msg === 'graphql request').map((l) => l.errors)).toEqual([['QUERY_TOO_DEEP']]);
    expect(lines.filter((l) => /Could not store/.test(String(l.msg)))).toEqual([]);
  });
});

describe('deadline_graphql_operations_total', () => {
  test('labels at most 100 operation names per instance; the rest count as other', async () => {
    for (let i = 0; i < 150; i++) expect((await gql(app, `query Named${i} { serverTime }`)).errors).toBeUndefined();
    const text = await (await fetch(new URL('/metrics', app.url))).text();
    const operations = new Map<string, number>();
    for (const [, operation, outcome, value] of text.matchAll(/^deadline_graphql_operations_total\{operation="([^"]*)",outcome="(\w+)"\} (\S+)$/gm)) {
      if (outcome === 'success') operations.set(operation, Number(value));
      else if (!operations.has(operation)) operations.set(operation, 0);
    }
    expect(operations.size).toBeGreaterThan(100);
    expect(operations.size).toBeLessThanOrEqual(101);
    expect(operations.get('Named0')).toBe(1);
    // At least 50 of the 150 names found the 100 labels taken (more if this file's other tests took some).
    expect(operations.get('other')).toBeGreaterThanOrEqual(50);
    expect(operations.has('Named149')).toBe(false);
  });
});

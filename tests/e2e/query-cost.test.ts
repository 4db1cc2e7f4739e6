import { getIntrospectionQuery } from 'graphql';
import type { Client } from 'graphql-ws';
import type { App } from '../../src/app.js';
import { createAuction, createTestDatabase, gql, inSeconds, start, Subscription, testConfig, token, wsClient } from '../support/harness.js';

/**
 * Aliases count toward the query cost, over HTTP and over graphql-ws: a document that asks one field
 * under thousands of response keys is refused before anything runs, with the cost limit's code;
 * queries a client really writes (a few aliases, renames, the playground's introspection) still run.
 */
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let app: App;
const clients: Client[] = [];
const user = token('cost-ann');

beforeAll(async () => {
  db = await createTestDatabase('query_cost');
  app = await start(testConfig(db.url));
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.dispose()));
  await app?.stop();
  await db?.drop();
});

const aliases = (n: number, field: string) => Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(' ');
type Errors = Array<{ message: string; extensions?: { code?: string } }>;

function client(): Client {
  const c = wsClient(app, user);
  clients.push(c);
  return c;
}

/** The first thing a graphql-ws operation answers: its errors, or its first result's data. */
async function firstAnswer(query: string, variables: Record<string, unknown> = {}): Promise<{ errors?: Errors; data?: any }> {
  const sub = new Subscription(client(), query, variables);
  try {
    await sub.waitFor((s) => s.events.length > 0 || s.errors.length > 0 || s.completed, 10_000, 'an answer');
    return sub.errors.length > 0 ? { errors: sub.errors[0] as Errors } : { data: sub.events[0] };
  } finally {
    sub.dispose();
  }
}

describe('over HTTP', () => {
  test('2,000 aliases of one field are refused with QUERY_TOO_COSTLY; nothing runs', async () => {
    for (const field of ['me { id }', 'serverTime', '__typename']) {
      const res = await gql(app, `{ ${aliases(2000, field)} }`, {}, user);
      expect(res.errors).toHaveLength(1);
      expect(res.errors![0].extensions?.code).toBe('QUERY_TOO_COSTLY');
      expect(res.errors![0].message).toMatch(/^Query costs \d+; the limit is 5000$/);
      expect(res.data).toBeUndefined();
    }
    // As a mutation too: 2,000 aliased writes would be 2,000 transactions, one after another.
    const writes = await gql(app, `mutation { ${aliases(2000, 'markAllMessagesRead')} }`, {}, user);
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
    const query = await firstAnswer(`{ ${aliases(2000, 'me { id }')} }`);
    expect(query.data).toBeUndefined();
    expect(query.errors?.[0].extensions?.code).toBe('QUERY_TOO_COSTLY');
    expect(query.errors?.[0].message).toMatch(/^Query costs \d+; the limit is 5000$/);

    const sub = await firstAnswer(`subscription { auctionEnded { ${aliases(2000, 'eventId')} } }`);
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
  });
});

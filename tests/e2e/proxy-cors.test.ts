import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import type { App } from '../../src/app.js';
import { createTestDatabase, start, testConfig, token } from '../support/harness.js';
import { ADMIN, CREATE_ORDER, createProduct } from '../support/orders.js';

/**
 * Behind a proxy (TRUST_PROXY) and for browsers on other origins (CORS_ORIGINS), over real HTTP on
 * both paths a request to /graphql can take: a plain JSON POST goes straight to Apollo
 * (graphqlJsonPost), anything else (a GET, another content type or encoding) through Express.
 */
const SHOP = 'https://shop.example.com';
let db: Awaited<ReturnType<typeof createTestDatabase>>;
/** TRUST_PROXY=loopback (the tests connect from it) and CORS_ORIGINS=SHOP. */
let proxied: App;
/** Neither set: the defaults. */
let direct: App;
/** The client address each app passed to the payment provider, in order. */
const addresses = new Map<App, Array<string | undefined>>();

beforeAll(async () => {
  db = await createTestDatabase('proxy_cors');
  proxied = await start(testConfig(db.url, { TRUST_PROXY: 'loopback', CORS_ORIGINS: `${SHOP},https://admin.example.com` }));
  direct = await start(testConfig(db.url));
  for (const app of [proxied, direct]) {
    // Observed where it is used: an H5 payment sends it to the provider as the payer's address.
    const payments = app.services.payments;
    const original = payments.start.bind(payments);
    const seen: Array<string | undefined> = [];
    addresses.set(app, seen);
    payments.start = (tx, order, clientIp) => {
      seen.push(clientIp);
      return original(tx, order, clientIp);
    };
  }
});

afterAll(async () => {
  await proxied?.stop();
  await direct?.stop();
  await db?.drop();
});

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One HTTP request as a browser or proxy would send it (node:http: any header, Origin included). */
function send(app: App, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Answer> {
  const { port } = new URL(app.url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: { ...(body ? { 'content-length': String(Buffer.byteLength(body)) } : {}), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * POST /graphql by either path: `express` sends `Content-Encoding: identity`, which the direct path
 * leaves to Express (it reads only unencoded plain JSON), so the same request takes the other path.
 */
const post = (app: App, path: 'direct' | 'express', query: string, variables: Record<string, unknown>, headers: Record<string, string> = {}) =>
  send(app, 'POST', '/graphql', { 'content-type': 'application/json', ...(path === 'express' ? { 'content-encoding': 'identity' } : {}), ...headers }, JSON.stringify({ query, variables }));

describe('TRUST_PROXY', () => {
  let productId: string;
  beforeAll(async () => {
    productId = (await createProduct(proxied, { name: 'Proxy tea', price: 300 })).id;
  });

  /** Creates a WeChat order through `app` and returns the client address its payment was started with. */
  async function orderFrom(app: App, path: 'direct' | 'express', headers: Record<string, string>): Promise<string | undefined> {
    const seen = addresses.get(app)!;
    const before = seen.length;
    const res = await post(app, path, CREATE_ORDER, { input: { productId, quantity: 1, paymentMethod: 'WECHAT' } }, { authorization: `Bearer ${token('buyer-proxy')}`, ...headers });
    expect({ status: res.status, errors: (JSON.parse(res.body) as { errors?: unknown }).errors }).toEqual({ status: 200, errors: undefined });
    expect(seen.length).toBe(before + 1);
    return seen[before];
  }

  test.each(['direct', 'express'] as const)('behind a trusted proxy the client address is the one it forwards (%s path)', async (path) => {
    expect(await orderFrom(proxied, path, { 'x-forwarded-for': '203.0.113.7' })).toBe('203.0.113.7');
    // What the client itself wrote before the proxy's entry is not believed: the proxy's is the nearest untrusted.
    expect(await orderFrom(proxied, path, { 'x-forwarded-for': '198.51.100.1, 203.0.113.7' })).toBe('203.0.113.7');
    expect(await orderFrom(proxied, path, {})).toMatch(/^(::ffff:)?127\.0\.0\.1$/);
  });

  test.each(['direct', 'express'] as const)('without TRUST_PROXY, X-Forwarded-For is ignored: the socket\'s address (%s path)', async (path) => {
    expect(await orderFrom(direct, path, { 'x-forwarded-for': '203.0.113.7' })).toMatch(/^(::ffff:)?127\.0\.0\.1$/);
  });

  test('the admin cookie is Secure when a trusted proxy says the request came over TLS, and only then', async () => {
    const session = (app: App, headers: Record<string, string>) => send(app, 'POST', '/admin/session', { authorization: `Bearer ${ADMIN}`, ...headers });
    const overTls = await session(proxied, { 'x-forwarded-proto': 'https' });
    expect(overTls.status).toBe(204);
    expect(String(overTls.headers['set-cookie'])).toMatch(/; Secure$/);
    expect(String((await session(proxied, {})).headers['set-cookie'])).not.toMatch(/Secure/);
    // A client talking to the server directly cannot claim TLS.
    expect(String((await session(direct, { 'x-forwarded-proto': 'https' })).headers['set-cookie'])).not.toMatch(/Secure/);
  });
});

describe('CORS_ORIGINS', () => {
  const preflight = (app: App, origin: string) =>
    send(app, 'OPTIONS', '/graphql', { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,x-request-id' });

  test('a preflight from a listed origin is answered with what /graphql allows; an unlisted origin gets no CORS header', async () => {
    const ok = await preflight(proxied, SHOP);
    expect(ok.status).toBe(204);
    expect(ok.headers).toMatchObject({
      'access-control-allow-origin': SHOP,
      'access-control-allow-methods': 'GET, POST',
      'access-control-allow-headers': 'Authorization, Content-Type, x-request-id',
      vary: 'Origin',
    });
    expect(ok.headers['access-control-allow-credentials']).toBeUndefined();
    expect((await preflight(proxied, 'https://admin.example.com')).headers['access-control-allow-origin']).toBe('https://admin.example.com');

    for (const origin of ['https://evil.example.com', 'https://shop.example.com.evil.example', 'http://shop.example.com', 'null']) {
      const refused = await preflight(proxied, origin);
      expect({ origin, headers: Object.keys(refused.headers).filter((h) => h.startsWith('access-control-')) }).toEqual({ origin, headers: [] });
    }
    // No origins configured: no cross-origin access at all.
    expect((await preflight(direct, SHOP)).headers['access-control-allow-origin']).toBeUndefined();
  });

  test.each(['direct', 'express'] as const)('a listed origin\'s request is answered with Access-Control-Allow-Origin, an unlisted one\'s without (%s path)', async (path) => {
    const listed = await post(proxied, path, '{ __typename }', {}, { origin: SHOP });
    expect(listed.status).toBe(200);
    expect(JSON.parse(listed.body)).toEqual({ data: { __typename: 'Query' } });
    expect(listed.headers['access-control-allow-origin']).toBe(SHOP);
    expect(listed.headers.vary).toBe('Origin');

    const unlisted = await post(proxied, path, '{ __typename }', {}, { origin: 'https://evil.example.com' });
    expect(unlisted.status).toBe(200);
    expect(unlisted.headers['access-control-allow-origin']).toBeUndefined();
    expect((await post(direct, path, '{ __typename }', {}, { origin: SHOP })).headers['access-control-allow-origin']).toBeUndefined();
  });

  test('a GET query (Express) and an error answer carry it too', async () => {
    // Apollo's CSRF prevention wants a header a simple request cannot carry: Content-Type, allowed above.
    const get = await send(proxied, 'GET', `/graphql?query=${encodeURIComponent('{ __typename }')}`, { origin: SHOP, accept: 'application/json', 'content-type': 'application/json' });
    expect(get.status).toBe(200);
    expect(get.headers['access-control-allow-origin']).toBe(SHOP);
    // A body refused before Apollo (400 from the direct path's JSON check) is still readable by the page.
    const bad = await send(proxied, 'POST', '/graphql', { origin: SHOP, 'content-type': 'application/json' }, '{not json');
    expect(bad.status).toBe(400);
    expect(bad.headers['access-control-allow-origin']).toBe(SHOP);
  });
});

import { Writable } from 'node:stream';
import type { App } from '../../src/app.js';
import { createLogger } from '../../src/logger.js';
import type { SandboxHandle } from '../../src/payments/sandbox/server.js';
import { paymentSandbox, setUp, token, waitUntil } from '../support/harness.js';
import { createProduct, ok } from '../support/orders.js';

/**
 * What an operator reads: every line names its instance, every HTTP answer carries its x-request-id,
 * and every line a request causes names it (the GraphQL line, the services under it, a payment
 * callback); GraphQL variables' values never at info.
 */
let app: App;
let sandbox: SandboxHandle;
const lines: Array<Record<string, any>> = [];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

beforeAll(async () => {
  sandbox = await paymentSandbox();
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line));
      done();
    },
  });
  // The server's own logger (src/logger.ts), at debug: the variables' line is there too.
  const log = createLogger({ level: 'debug', instance: 'request-log-1', destination });
  ({ app } = await setUp('request_log', { RECONCILE_INTERVAL_MINUTES: '60' }, { log: { logger: log }, instanceName: 'request-log-1' }));
});

async function post(body: unknown, headers: Record<string, string> = {}, contentType = 'application/json') {
  const res = await fetch(app.url, { method: 'POST', headers: { 'content-type': contentType, authorization: `Bearer ${token('log-user')}`, ...headers }, body: JSON.stringify(body) });
  return { id: res.headers.get('x-request-id'), status: res.status, body: await res.json() };
}

const linesOf = (requestId: string | null) => lines.filter((l) => l.requestId === requestId);

test('every line names the instance', () => {
  expect(lines.length).toBeGreaterThan(0);
  expect(lines.every((l) => l.instance === 'request-log-1')).toBe(true);
  // Start-up is no request.
  expect(lines.find((l) => l.msg === 'job scheduler started')?.requestId).toBeUndefined();
});

test('the direct JSON path keeps a client\'s request id, answers with it, and logs variable names at info, values at debug only', async () => {
  const query = 'query Find($id: ID!, $secret: String) { auction(id: $id) { id } }';
  const r = await post({ query, operationName: 'Find', variables: { id: '999999', secret: 'card 4111 1111' } }, { 'x-request-id': 'client-id-42' });
  expect(r.status).toBe(200);
  expect(r.id).toBe('client-id-42');
  await waitUntil(() => linesOf('client-id-42').some((l) => l.msg === 'graphql request'), 2_000, 'the request line');
  const info = linesOf('client-id-42').find((l) => l.msg === 'graphql request')!;
  expect(info).toMatchObject({ level: 30, operation: 'Find', variables: ['id', 'secret'], userId: 'log-user', instance: 'request-log-1' });
  // No value of a variable on any line above debug.
  expect(lines.filter((l) => l.level > 20 && JSON.stringify(l).includes('4111'))).toEqual([]);
  const debug = linesOf('client-id-42').find((l) => l.msg === 'graphql request variables')!;
  expect(debug).toMatchObject({ level: 20, variables: { id: '999999', secret: 'card 4111 1111' } });
});

test('an id is made when none (or an unusable one) is sent, on every kind of answer', async () => {
  const made = await post({ query: '{ serverTime }' });
  expect(made.id).toMatch(UUID);
  await waitUntil(() => linesOf(made.id).some((l) => l.msg === 'graphql request'), 2_000, 'the request line');

  // Not a plain token: replaced, never echoed.
  const odd = await post({ query: '{ serverTime }' }, { 'x-request-id': 'x'.repeat(101) });
  expect(odd.id).toMatch(UUID);

  // Express's GraphQL path, a refused body, REST routes, a payment callback refused, a 404.
  const answers = await Promise.all([
    fetch(new URL('/graphql?query=%7BserverTime%7D', app.url), { headers: { 'x-request-id': 'get-1', 'apollo-require-preflight': 'true' } }),
    fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': 'bad-json' }, body: '{"query":' }),
    fetch(new URL('/health', app.url), { headers: { 'x-request-id': 'health-1' } }),
    fetch(new URL('/metrics', app.url), { headers: { 'x-request-id': 'metrics-1' } }),
    fetch(new URL('/api/payments/nope/notify', app.url), { method: 'POST', headers: { 'x-request-id': 'cb-404' }, body: 'x' }),
    fetch(new URL('/api/payments/sandbox/notify', app.url), { method: 'POST', headers: { 'x-request-id': 'cb-forged', 'content-type': 'application/json' }, body: '{}' }),
    fetch(new URL('/no/such/page', app.url), { headers: { 'x-request-id': 'nowhere' } }),
  ]);
  expect(answers.map((a) => [a.status, a.headers.get('x-request-id')])).toEqual([
    [200, 'get-1'],
    [400, 'bad-json'],
    [200, 'health-1'],
    [200, 'metrics-1'],
    [404, 'cb-404'],
    [401, 'cb-forged'],
    [404, 'nowhere'],
  ]);
  await waitUntil(() => linesOf('cb-forged').some((l) => l.msg === 'payment callback refused'), 2_000, 'the refused callback\'s line');
  expect(linesOf('get-1').map((l) => l.msg)).toContain('graphql request');
});

test('a payment callback\'s lines, its route\'s and the services\' under it, carry the callback\'s request id', async () => {
  const product = await createProduct(app, { name: 'Logged tea', price: 1000 });
  const order = (await ok(app, 'mutation($input: CreateOrderInput!) { createOrder(input: $input) { orderNo } }', { input: { productId: product.id, quantity: 1, paymentMethod: 'WECHAT' } }, token('log-buyer')))
    .createOrder as { orderNo: string };
  // Paid 1 cent of 1,000: the payment service keeps it for a refund, and says so.
  await fetch(`${sandbox.url}/sandbox/trades/${order.orderNo}/pay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ amount: 1 }) });
  await waitUntil(() => lines.some((l) => l.msg === 'payment callback applied' && l.orderNo === order.orderNo), 5_000, 'the callback');
  const applied = lines.find((l) => l.msg === 'payment callback applied' && l.orderNo === order.orderNo)!;
  const kept = lines.find((l) => l.msg === 'payment kept for a refund' && l.orderNo === order.orderNo)!;
  expect(applied.requestId).toMatch(UUID);
  expect(kept.requestId).toBe(applied.requestId);
});

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { App } from '../../src/app.js';
import {
  createAuction,
  createTestDatabase,
  gql,
  inSeconds,
  LogCapture,
  MovableClock,
  sleep,
  start,
  subscribed,
  testConfig,
  token,
  waitUntil,
  wsClient,
} from '../support/harness.js';
import { createProduct, ok } from '../support/orders.js';

/** `GET /metrics` on a real server, scraped after known work: the counts of that work are there. */
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let app: App;
const clock = new MovableClock();
const logs = new LogCapture();

beforeAll(async () => {
  db = await createTestDatabase('metrics');
  app = await start(testConfig(db.url, { RECONCILE_INTERVAL_MINUTES: '60' }), logs, { clock });
});

afterAll(async () => {
  await app?.stop();
  await db?.drop();
});

async function scrape(): Promise<{ status: number; type: string; text: string }> {
  const res = await fetch(new URL('/metrics', app.url));
  return { status: res.status, type: res.headers.get('content-type') ?? '', text: await res.text() };
}

/** The value of one sample, `name{labels}` as Prometheus prints it (labels in the order given), or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = m[2] ? m[2].split(/,(?=[a-zA-Z_]+=")/) : [];
    if (wanted.every((w) => have.includes(w)) && have.length === wanted.length) return Number(m[3]);
  }
  return undefined;
}

async function reconcile(): Promise<void> {
  const done = new Promise<void>((resolve, reject) => {
    app.scheduler.once('success:payment-reconciliation', () => resolve());
    app.scheduler.once('fail:payment-reconciliation', (err: Error) => reject(err));
  });
  await app.services.jobs.run('payment-reconciliation');
  await done;
}

test('serves the Prometheus text format with process metrics and the gauges read on scrape', async () => {
  const { status, type, text } = await scrape();
  expect(status).toBe(200);
  expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
  expect(sample(text, 'deadline_process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(0);
  expect(text).toMatch(/^# TYPE deadline_job_runs_total counter$/m);
  expect(text).toMatch(/^# TYPE deadline_job_run_duration_seconds histogram$/m);
  expect(text).toMatch(/^# TYPE deadline_deadline_lateness_seconds histogram$/m);
  for (const kind of ['auction-end', 'order-expiry', 'vip-expiry']) expect(sample(text, 'deadline_deadlines_pending', { kind })).toBe(0);
  expect(sample(text, 'deadline_outbox_backlog')).toBeGreaterThanOrEqual(0);
  expect(sample(text, 'deadline_websocket_connections')).toBe(0);
  expect(sample(text, 'deadline_subscriptions_active')).toBe(0);
});

test('memory right after the last major collection is a gauge of its own', async () => {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)(); // a full collection now
  await sleep(50); // the collection's entry reaches its observer asynchronously
  const { text } = await scrape();
  const heap = sample(text, 'deadline_heap_used_after_major_gc_bytes');
  const rss = sample(text, 'deadline_resident_memory_after_major_gc_bytes');
  expect(heap).toBeGreaterThan(1_000_000);
  expect(rss).toBeGreaterThan(heap!);
});

test('after an auction end, a reconciliation run and named operations, the scrape shows their counts', async () => {
  const seller = token('metrics-seller');
  const before = (await scrape()).text;
  const runsBefore = sample(before, 'deadline_job_runs_total', { job: 'deadline:auction-end', outcome: 'succeeded' }) ?? 0;

  // A pending auction: counted, and its wake-up armed.
  const a = await createAuction(app, seller, inSeconds(1));
  const pending = (await scrape()).text;
  expect(sample(pending, 'deadline_deadlines_pending', { kind: 'auction-end' })).toBe(1);
  expect(sample(pending, 'deadline_deadline_next_wakeup_timestamp_seconds', { kind: 'auction-end' })).toBeCloseTo(new Date(a.endTime).getTime() / 1000, 0);

  // A watcher: one socket, one subscription.
  const client = wsClient(app, seller);
  const ended = await subscribed(app, client, `subscription($id: ID) { auctionEnded(auctionId: $id) { auction { id } } }`, { id: a.id }, 'AUCTION_ENDED');
  const live = (await scrape()).text;
  expect(sample(live, 'deadline_websocket_connections')).toBe(1);
  expect(sample(live, 'deadline_subscriptions_active')).toBe(1);

  await waitUntil(async () => (await gql(app, `query($id: ID!) { auction(id: $id) { status } }`, { id: a.id }, seller)).data?.auction?.status === 'ENDED', 10_000, 'the auction to end');
  await ended.waitFor((s) => s.events.length >= 1, 5_000, 'auctionEnded');
  await waitUntil(
    async () => (sample((await scrape()).text, 'deadline_job_runs_total', { job: 'deadline:auction-end', outcome: 'succeeded' }) ?? 0) > runsBefore,
    5_000,
    'the wake-up run to be counted',
  );

  // A stale online order (6 minutes old on the app clock, unpaid at the provider): checked, left as it is.
  const product = await createProduct(app, { name: 'Metered tea', price: 500 });
  await ok(app, `mutation Buy($input: CreateOrderInput!) { createOrder(input: $input) { id } }`, { input: { productId: product.id, quantity: 1, paymentMethod: 'WECHAT' } }, token('metrics-buyer'));
  clock.advance(6);
  await reconcile();
  expect((await gql(app, `query Jobs { jobs { name } }`, {}, seller)).errors?.[0].extensions?.code).toBe('FORBIDDEN');
  // An operation that does not validate has no name to count it under.
  await gql(app, `query Broken { nope }`, {}, seller);

  await client.dispose();
  await waitUntil(async () => sample((await scrape()).text, 'deadline_websocket_connections') === 0, 5_000, 'the socket to close');
  const after = (await scrape()).text;
  expect(sample(after, 'deadline_deadlines_pending', { kind: 'auction-end' })).toBe(0);
  expect(sample(after, 'deadline_subscriptions_active')).toBe(0);
  expect(sample(after, 'deadline_deadline_lateness_seconds_count', { kind: 'auction-end' })).toBe(1);
  // Settled after it was due, and not by much.
  expect(sample(after, 'deadline_deadline_lateness_seconds_sum', { kind: 'auction-end' })).toBeGreaterThanOrEqual(0);
  expect(sample(after, 'deadline_deadline_lateness_seconds_bucket', { le: '5', kind: 'auction-end' })).toBe(1);
  expect(sample(after, 'deadline_job_run_duration_seconds_count', { job: 'deadline:auction-end' })).toBeGreaterThan(0);
  expect(sample(after, 'deadline_job_runs_total', { job: 'payment-reconciliation', outcome: 'succeeded' })).toBeGreaterThanOrEqual(1);
  expect(sample(after, 'deadline_reconciliation_runs_total', { outcome: 'succeeded' })).toBeGreaterThanOrEqual(1);
  expect(sample(after, 'deadline_reconciliation_orders_total', { result: 'checked' })).toBe(1);
  expect(sample(after, 'deadline_reconciliation_orders_total', { result: 'synced' })).toBe(0);
  expect(sample(after, 'deadline_graphql_operations_total', { operation: 'Buy', outcome: 'success' })).toBe(1);
  expect(sample(after, 'deadline_graphql_operations_total', { operation: 'Jobs', outcome: 'error' })).toBe(1);
  expect(sample(after, 'deadline_graphql_operations_total', { operation: 'Broken', outcome: 'error' })).toBeUndefined();
  expect(sample(after, 'deadline_graphql_operations_total', { operation: 'anonymous', outcome: 'error' })).toBe(1);
  expect(sample(after, 'deadline_graphql_operations_total', { operation: 'anonymous', outcome: 'success' })).toBeGreaterThan(0);
});

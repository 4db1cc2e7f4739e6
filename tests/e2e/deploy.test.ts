import { readFileSync } from 'node:fs';
import type { App } from '../../src/app.js';
import { startApp } from '../../src/app.js';
import { initOrm, migrate, PendingMigrations } from '../../src/db/orm.js';
import { migrationsList } from '../../migrations/index.js';
import { createTestDatabase, LogCapture, MovableClock, start, testConfig, token, waitUntil } from '../support/harness.js';
import { createProduct, ok } from '../support/orders.js';

/**
 * What an operator deploys with: migrations as a release step (MIGRATE_ON_START=false), and the alert
 * rules and dashboard in deploy/, whose every metric this server serves.
 */
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let app: App;
const clock = new MovableClock();

beforeAll(async () => {
  db = await createTestDatabase('deploy');
});

afterAll(async () => {
  await app?.stop();
  await db?.drop();
});

const rules = readFileSync(new URL('../../deploy/alerts.yml', import.meta.url), 'utf8');
const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana-dashboard.json', import.meta.url), 'utf8')) as {
  panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
};
const ruleExprs = [...rules.matchAll(/^\s+expr: \|\n((?:\s{10}.*\n)+)/gm)].map((m) => m[1].trim());
const panelExprs = dashboard.panels.flatMap((p) => p.targets.map((t) => ({ panel: p.title, expr: t.expr })));

/** Metric names in a PromQL expression: ours (`deadline_…`) and Prometheus's own `up`. */
const metricsIn = (expr: string) => [...expr.matchAll(/\b(deadline_[a-z0-9_]+|up)\b(?=\s*[{[)]|\s*(?:==|>|<))/g)].map((m) => m[1]);

test('with MIGRATE_ON_START=false a database behind the migrations stops the start-up, naming them; after `npm run migrate`\'s work it starts', async () => {
  const config = testConfig(db.url, { MIGRATE_ON_START: 'false', RECONCILE_INTERVAL_MINUTES: '60' });
  const refused = await startApp(config).then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(refused).toBeInstanceOf(PendingMigrations);
  const names = migrationsList.map((m) => m.name);
  expect((refused as PendingMigrations).pending).toEqual(names);
  expect((refused as Error).message).toContain(names[names.length - 1]);
  expect((refused as Error).message).toMatch(/npm run migrate/);

  // What `npm run migrate` does (src/db/migrate-cli.ts).
  const orm = await initOrm(db.url);
  await migrate(orm, db.url);
  await orm.close();
  app = await start(config, new LogCapture(), { clock });
  expect((await fetch(new URL('/health', app.url))).status).toBe(200);
});

test('every alert rule and every dashboard query names a metric', () => {
  expect(ruleExprs.length).toBe([...rules.matchAll(/^\s+- alert: /gm)].length);
  for (const expr of ruleExprs) expect({ expr, metrics: metricsIn(expr).length > 0 }).toEqual({ expr, metrics: true });
  expect(panelExprs.length).toBeGreaterThan(10);
  for (const { panel, expr } of panelExprs) expect({ panel, metrics: metricsIn(expr).length > 0 }).toEqual({ panel, metrics: true });
});

test('every metric the alert rules and the dashboard name is served by /metrics', async () => {
  const text = await (await fetch(new URL('/metrics', app.url))).text();
  // Every metric this server registers, with a histogram's series under its own name.
  const served = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    served.add(name);
    if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) served.add(name + suffix);
    if (type === 'summary') for (const suffix of ['_sum', '_count']) served.add(name + suffix);
  }
  const named = new Set([...ruleExprs, ...panelExprs.map((p) => p.expr)].flatMap(metricsIn));
  // `up` is Prometheus's own series for each target it scrapes, not served by the target.
  named.delete('up');
  expect(named.size).toBeGreaterThan(15);
  expect([...named].filter((m) => !served.has(m))).toEqual([]);
});

test('deadline_deadline_oldest_overdue_seconds: how long the oldest pending deadline of each kind is past due, 0 when none is', async () => {
  const gauge = async (kind: string) => {
    const text = await (await fetch(new URL('/metrics', app.url))).text();
    const m = new RegExp(`^deadline_deadline_oldest_overdue_seconds\\{kind="${kind}"\\} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : undefined;
  };
  for (const kind of ['auction-end', 'order-expiry', 'vip-expiry']) expect(await gauge(kind)).toBe(0);

  // Order expiry paused: an order due a minute ago stays unsettled, and the gauge says for how long.
  await app.services.jobs.pause('deadline:order-expiry');
  const product = await createProduct(app, { name: 'Overdue tea', price: 500 });
  await ok(app, 'mutation($input: CreateOrderInput!) { createOrder(input: $input) { id } }', { input: { productId: product.id, quantity: 1, paymentMethod: 'WECHAT' } }, token('deploy-buyer'));
  expect(await gauge('order-expiry')).toBe(0);
  clock.advance(31);
  const overdue = await gauge('order-expiry');
  expect(overdue).toBeGreaterThanOrEqual(60);
  expect(overdue).toBeLessThan(90);
  expect(await gauge('auction-end')).toBe(0);

  // Resumed: settled, and back to 0.
  await app.services.jobs.resume('deadline:order-expiry');
  await waitUntil(async () => (await gauge('order-expiry')) === 0, 10_000, 'the overdue order to be settled');
});

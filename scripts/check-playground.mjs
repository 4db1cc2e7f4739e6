// Drives the playground served at /graphql in Debian's headless Chromium, with every request to
// anything but this machine refused: a first visit opens on the example operations and runs two of
// them (CreateAuction with the pane's variables, the admin's Jobs), then a query and a subscription
// run through GraphiQL's own UI; fails (exit 1) if any does not show its result. Needs `npm run
// build` first.
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { signToken } from '../dist/src/auth.js';

const secret = 'playground-check-secret-0123456789';

/**
 * A port the system just gave out as free. A random one in 40000–49999 lay inside Linux's ephemeral
 * range, so a client connection of the test run could hold it as its local port (EADDRINUSE at start-up).
 */
async function freePort() {
  const probe = createServer();
  await new Promise((resolve) => probe.listen(0, resolve));
  const { port } = probe.address();
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

let port;
let base;
let server;
/** Starts the server on a free port; again on another one if it exits before answering (the port was taken meanwhile). */
async function startServer() {
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    base = `http://localhost:${port}`;
    const env = {
      ...process.env,
      PORT: String(port),
      NODE_ENV: 'test',
      JWT_SECRET: secret,
      DATABASE_URL: process.env.PLAYGROUND_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/deadline_playground_check',
      REDIS_PREFIX: `playground-check-${port}`,
      LOG_LEVEL: 'warn',
    };
    server = spawn(process.execPath, ['dist/src/main.js'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
    const exited = new Promise((resolve) => server.once('exit', () => resolve('exited')));
    const outcome = await Promise.race([waitForHealth().then(() => 'healthy', () => 'unhealthy'), exited]);
    if (outcome === 'healthy') return;
    if (outcome === 'unhealthy' || attempt === 3) throw new Error('the server did not become healthy');
  }
}
const blocked = [];
let browser;
let page;

async function waitForHealth() {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${base}/health`)).ok) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error('the server did not become healthy');
}

async function runInPlayground(page, query, expectText, timeout = 15_000) {
  await page.goto(`${base}/graphql?query=${encodeURIComponent(query)}`);
  await page.locator('.graphiql-execute-button').first().click({ timeout: 20_000 });
  await page.waitForFunction(
    (text) => (document.querySelector('.graphiql-response')?.textContent ?? '').includes(text),
    expectText,
    { timeout },
  );
  return page.locator('.graphiql-response').textContent();
}

try {
  await startServer();
  const token = signToken({ secret }, 'playground-admin', 'admin');
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext();
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (['localhost', '127.0.0.1'].includes(url.hostname) || ['data:', 'blob:'].includes(url.protocol)) return route.continue();
    blocked.push(url.href);
    return route.abort();
  });
  await context.addInitScript((t) => localStorage.setItem('deadline.token', t), token);
  page = await context.newPage();
  page.on('pageerror', (err) => console.error('page error:', err.message));

  // A first visit: the examples' tab, with an end time ahead in its variables; Jobs picked from the
  // run button's list of operations answers the catalogue.
  await page.goto(`${base}/graphql`);
  await page.locator('.graphiql-execute-button').first().waitFor({ timeout: 20_000 });
  const firstTab = await page.waitForFunction(() => {
    const stored = JSON.parse(localStorage.getItem('graphiql:tabState') ?? 'null');
    return stored?.tabs?.[0]?.query?.includes('auctionCountdown') ? stored.tabs[0] : null;
  }, undefined, { timeout: 20_000 }).then((h) => h.jsonValue());
  for (const name of ['CreateAuction', 'Countdown', 'CreateOrder', 'Jobs']) {
    if (!firstTab.query.includes(` ${name}`)) throw new Error(`the first tab has no ${name} example`);
  }
  if (!(Date.parse(JSON.parse(firstTab.variables).endTime) > Date.now())) throw new Error(`the examples' endTime is not ahead: ${firstTab.variables}`);
  const runExample = async (name, expectText) => {
    await page.locator('.graphiql-execute-button').first().click();
    await page.getByRole('menuitem', { name, exact: true }).click({ timeout: 10_000 });
    await page.waitForFunction((text) => (document.querySelector('.graphiql-response')?.textContent ?? '').includes(text), expectText, { timeout: 15_000 });
  };
  // CreateAuction reads $endTime from the Variables pane: an auction made means the pane holds them.
  await runExample('CreateAuction', 'ACTIVE');
  await runExample('Jobs', 'deadline:auction-end');
  console.log('examples ok: the first tab holds the example operations; CreateAuction (with its variables) and Jobs ran');
  if (process.env.DEBUG_PLAYGROUND) page.on('request', (r) => console.log('request', r.method(), r.url().slice(0, 80), JSON.stringify(r.headers())));

  const queryResult = await runInPlayground(page, '{ serverTime me { id role } }', 'playground-admin');
  console.log('query ok:', queryResult.replace(/\s+/g, ' ').slice(0, 200));

  const end = new Date(Date.now() + 6000).toISOString();
  const created = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({
      query: `mutation($end: DateTime!) { createAuction(input: { nftId: "pg", title: "Playground", startingPrice: 1, minIncrement: 1, endTime: $end }) { id } }`,
      variables: { end },
    }),
  }).then((r) => r.json());
  const auctionId = created.data.createAuction.id;
  const subResult = await runInPlayground(
    page,
    `subscription { auctionCountdown(auctionId: "${auctionId}") { auctionId remainingMs status } }`,
    'ENDED',
    30_000,
  );
  console.log('subscription ok:', subResult.replace(/\s+/g, ' ').slice(0, 200));

  // Agendash: refused to a browser without the admin cookie; the token bar's "Use token" sets it, and
  // the dashboard then loads and lists the catalogue's jobs.
  const stranger = await browser.newContext();
  const refused = await (await stranger.newPage()).goto(`${base}/admin/jobs/`);
  await stranger.close();
  if (refused?.status() !== 401) throw new Error(`/admin/jobs without a token answered ${refused?.status()}, not 401`);
  await page.goto(`${base}/graphql`);
  await page.locator('#deadline-token-input').fill(token);
  await Promise.all([page.waitForEvent('load'), page.locator('#deadline-token-save').click()]);
  const dash = await context.newPage();
  dash.on('pageerror', (err) => console.error('agendash page error:', err.message));
  const served = await dash.goto(`${base}/admin/jobs/`);
  if (served?.status() !== 200) throw new Error(`/admin/jobs with the admin cookie answered ${served?.status()}`);
  await dash.waitForFunction(() => document.body.innerText.includes('outbox-sweep'), undefined, { timeout: 20_000 });
  console.log('agendash ok: the dashboard lists outbox-sweep');
  if (blocked.length) console.log(`refused ${blocked.length} request(s) to other hosts: ${[...new Set(blocked)].join(', ')}`);
  console.log('playground check passed');
} catch (err) {
  console.error('playground check FAILED:', err);
  if (blocked.length) console.error(`refused requests: ${[...new Set(blocked)].join(', ')}`);
  process.exitCode = 1;
  const shot = join(tmpdir(), 'deadline-playground-failure.png');
  await page?.screenshot({ path: shot }).then(() => console.error(`screenshot: ${shot}`), () => undefined);
  console.error('response pane:', await page?.locator('.graphiql-response').textContent().catch(() => '(none)'));
} finally {
  await browser?.close();
  if (server && server.exitCode === null && server.signalCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
}

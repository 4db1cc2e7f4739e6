import type { App } from '../../src/app.js';
import { JOB_EVENTS_CHANNEL } from '../../src/events/types.js';
import { withDb } from '../support/orders.js';
import { createTestDatabase, LogCapture, gql, sleep, start, subscribed, testConfig, token, waitUntil, wsClient } from '../support/harness.js';

/**
 * The jobs admin API over HTTP and graphql-ws, on two real servers sharing one database and Redis.
 * Periodic jobs run on A only (ENABLE_CRON=false on B), every second: whatever B's clients see of
 * them was done by A, and a pause set through B must be obeyed by A.
 */
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let a: App;
let b: App;
const admin = token('jobs-admin', true);
const user = token('jobs-user');

const JOB_FIELDS = 'name kind schedule nextRunAt lastRunAt lastFinishedAt lastError failCount running disabled';
const RUN_FIELDS = 'name startedAt finishedAt durationMs outcome error instance';
const EVENT_SUBSCRIPTION = 'subscription { jobEvents { name event at durationMs instance error } }';

beforeAll(async () => {
  db = await createTestDatabase('jobs_admin');
  const env = { DEADLINE_SWEEP_SECONDS: '1', OUTBOX_SWEEP_SECONDS: '1' };
  // Logs captured, not printed: the audit test fails a credit on purpose.
  // One config (one Redis prefix: both hear the same channels), cron off on B.
  const config = testConfig(db.url, env);
  a = await start(config, new LogCapture(), { instanceName: 'jobs-admin-A' });
  b = await start({ ...config, enableCron: false }, new LogCapture(), { instanceName: 'jobs-admin-B' });
});

afterAll(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await db?.drop();
});

 
const ok = (res: { errors?: unknown; data?: any }): any => {
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data;
};

const codeOf = (res: { errors?: Array<{ extensions?: { code?: string } }> }) => res.errors?.[0]?.extensions?.code;

const OPERATIONS: Array<[string, string]> = [
  ['jobs', `query { jobs { ${JOB_FIELDS} } }`],
  ['jobRuns', `query { jobRuns(name: "outbox-sweep") { edges { node { ${RUN_FIELDS} } } } }`],
  ['runJob', `mutation { runJob(name: "outbox-sweep") { name } }`],
  ['pauseJob', `mutation { pauseJob(name: "outbox-sweep") { name } }`],
  ['resumeJob', `mutation { resumeJob(name: "outbox-sweep") { name } }`],
];

test('every operation is for admins only: FORBIDDEN for a user, UNAUTHENTICATED without a token, and nothing changes', async () => {
  for (const [name, query] of OPERATIONS) {
    const asUser = await gql(b, query, {}, user);
    expect([name, codeOf(asUser)]).toEqual([name, 'FORBIDDEN']);
    const anonymous = await gql(b, query);
    expect([name, codeOf(anonymous)]).toEqual([name, 'UNAUTHENTICATED']);
  }
  const { jobs } = ok(await gql(b, `query { jobs { name disabled } }`, {}, admin));
  expect(jobs.every((j: { disabled: boolean }) => !j.disabled)).toBe(true);

  // The subscription too: refused for a user, before anything is heard.
  const client = wsClient(b, user);
  try {
    const errors = await new Promise<unknown>((resolve) => {
      client.subscribe({ query: EVENT_SUBSCRIPTION }, { next: (v) => v.errors && resolve(v.errors), error: resolve, complete: () => resolve(null) });
    });
    expect(JSON.stringify(errors)).toContain('FORBIDDEN');
  } finally {
    await client.dispose();
  }
});

test('jobs lists the catalogue; an unknown name is NOT_FOUND for every operation that takes one', async () => {
  const { jobs } = ok(await gql(b, `query { jobs { ${JOB_FIELDS} } }`, {}, admin));
  expect(jobs.map((j: { name: string; kind: string }) => [j.name, j.kind])).toEqual([
    ['deadline:auction-end', 'DEADLINE'],
    ['deadline:order-expiry', 'DEADLINE'],
    ['deadline:vip-expiry', 'DEADLINE'],
    ['deadline-sweep', 'PERIODIC'],
    ['outbox-sweep', 'PERIODIC'],
    ['payment-reconciliation', 'PERIODIC'],
    ['refund-reconciliation', 'PERIODIC'],
    ['vip-reminders', 'PERIODIC'],
  ]);
  expect(jobs.find((j: { name: string }) => j.name === 'outbox-sweep')).toMatchObject({ schedule: 'every 1 s', disabled: false, failCount: 0 });

  for (const [name, query] of OPERATIONS.slice(1)) {
    const res = await gql(b, query.replace('"outbox-sweep"', '"no-such-job"'), {}, admin);
    expect([name, codeOf(res)]).toEqual([name, 'NOT_FOUND']);
  }
});

test('runJob runs it now; jobRuns pages its runs newest first, with outcome, duration and the instance that ran it', async () => {
  const since = Date.now();
  const run = ok(await gql(b, `mutation { runJob(name: "outbox-sweep") { ${JOB_FIELDS} } }`, {}, admin));
  expect(run.runJob.name).toBe('outbox-sweep');

  type Run = { name: string; startedAt: string; finishedAt: string | null; durationMs: number | null; outcome: string; instance: string; error: string | null };
  type Conn = { jobRuns: { edges: Array<{ cursor: string; node: Run }>; pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null } } };
  const page = (first: number, after?: string) =>
    gql<Conn>(b, `query($first: Int, $after: String) { jobRuns(name: "outbox-sweep", first: $first, after: $after) { edges { cursor node { ${RUN_FIELDS} } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }`, { first, after }, admin);

  // Finished runs since the call (the extra one and the scheduled ones, every second).
  await waitUntil(async () => ok(await page(10)).jobRuns.edges.filter((e: { node: Run }) => e.node.outcome === 'SUCCEEDED' && Date.parse(e.node.startedAt) >= since - 5).length >= 2, 5_000, 'two recorded runs');
  const first = ok(await page(2)).jobRuns;
  expect(first.edges).toHaveLength(2);
  expect(first.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false, startCursor: first.edges[0].cursor });
  const [newer, older] = first.edges.map((e: { node: Run }) => e.node) as Run[];
  expect(Date.parse(newer.startedAt)).toBeGreaterThanOrEqual(Date.parse(older.startedAt));
  for (const r of (first.edges.map((e: { node: Run }) => e.node) as Run[]).filter((r) => r.outcome !== 'RUNNING')) {
    expect(r).toMatchObject({ name: 'outbox-sweep', outcome: 'SUCCEEDED', error: null, instance: a.instanceName });
    expect(r.durationMs).toBe(Date.parse(r.finishedAt!) - Date.parse(r.startedAt));
  }
  const next = ok(await page(2, first.pageInfo.endCursor)).jobRuns;
  expect(next.edges.length).toBeGreaterThan(0);
  expect(next.pageInfo).toMatchObject({ hasPreviousPage: true, startCursor: next.edges[0].cursor });
  expect(Date.parse(next.edges[0].node.startedAt)).toBeLessThanOrEqual(Date.parse(older.startedAt));
  expect(next.edges.map((e: { cursor: string }) => e.cursor)).not.toContain(first.pageInfo.endCursor);

  expect(codeOf(await page(0))).toBe('BAD_USER_INPUT');
  expect(codeOf(await page(2, 'not-a-cursor'))).toBe('BAD_USER_INPUT');
});

test('jobEvents on B hears the runs A makes (STARTED, then SUCCEEDED with a duration)', async () => {
  const client = wsClient(b, admin);
  try {
    const sub = await subscribed<{ jobEvents: { name: string; event: string; at: string; durationMs: number | null; instance: string; error: string | null } }>(
      b,
      client,
      EVENT_SUBSCRIPTION,
      {},
      JOB_EVENTS_CHANNEL,
    );
    await sub.waitFor((s) => s.events.some((e) => e.jobEvents.name === 'outbox-sweep' && e.jobEvents.event === 'SUCCEEDED'), 5_000, 'a SUCCEEDED outbox-sweep');
    const events = sub.events.map((e) => e.jobEvents).filter((e) => e.name === 'outbox-sweep');
    const done = events.find((e) => e.event === 'SUCCEEDED')!;
    expect(done).toMatchObject({ instance: a.instanceName, error: null });
    expect(done.durationMs).toBeGreaterThanOrEqual(0);
    expect(a.instanceName).not.toBe(b.instanceName);
    const started = events.find((e) => e.event === 'STARTED');
    if (started) expect(started).toMatchObject({ instance: a.instanceName, durationMs: null });
    sub.dispose();
  } finally {
    await client.dispose();
  }
});

test('pauseJob through B is obeyed by A at once; runJob on a paused job is CONFLICT; resumeJob through A brings it back', async () => {
  const client = wsClient(b, admin);
  try {
    const sub = await subscribed<{ jobEvents: { name: string; event: string; at: string; instance: string } }>(b, client, EVENT_SUBSCRIPTION, {}, JOB_EVENTS_CHANNEL);
    const pausedAt = Date.now();
    const paused = ok(await gql(b, `mutation { pauseJob(name: "deadline-sweep") { ${JOB_FIELDS} } }`, {}, admin));
    expect(paused.pauseJob).toMatchObject({ name: 'deadline-sweep', disabled: true });
    expect(ok(await gql(a, `query { jobs { name disabled } }`, {}, admin)).jobs.find((j: { name: string }) => j.name === 'deadline-sweep').disabled).toBe(true);

    const refused = await gql(a, `mutation { runJob(name: "deadline-sweep") { name } }`, {}, admin);
    expect(codeOf(refused)).toBe('CONFLICT');

    // A run A had already fetched (up to a second ahead) may still start; after that, none for 2.5 s.
    const grace = pausedAt + 1_500;
    await sleep(grace + 2_500 - Date.now());
    const sweepStarts = () => sub.events.filter((e) => e.jobEvents.name === 'deadline-sweep' && e.jobEvents.event === 'STARTED' && Date.parse(e.jobEvents.at) > grace);
    expect(sweepStarts()).toEqual([]);

    const resumedAt = Date.now();
    const resumed = ok(await gql(a, `mutation { resumeJob(name: "deadline-sweep") { ${JOB_FIELDS} } }`, {}, admin));
    expect(resumed.resumeJob).toMatchObject({ name: 'deadline-sweep', disabled: false });
    await sub.waitFor(
      (s) => s.events.some((e) => e.jobEvents.name === 'deadline-sweep' && e.jobEvents.event === 'SUCCEEDED' && Date.parse(e.jobEvents.at) >= resumedAt),
      4_000,
      'a run after resume',
    );
    sub.dispose();
  } finally {
    await client.dispose();
  }
});

test('auditLog: every admin action above, who and when, newest first; refused actions left nothing; admins only', async () => {
  // A credit is audited in its own transaction: with the audit table away, the credit fails and the wallet is unchanged.
  const creditQuery = `mutation { creditWallet(userId: "audited-user", amount: 500) { balance } }`;
  ok(await gql(b, '{ me { id } }', {}, token('audited-user'))); // creditWallet credits users the server has seen
  await withDb(db.url, (c) => c.query('alter table audit_log rename to audit_log_away'));
  try {
    expect(codeOf(await gql(b, creditQuery, {}, admin))).toBe('INTERNAL_SERVER_ERROR');
  } finally {
    await withDb(db.url, (c) => c.query('alter table audit_log_away rename to audit_log'));
  }
  expect(ok(await gql(b, creditQuery, {}, admin)).creditWallet.balance).toBe(500);
  expect(codeOf(await gql(b, creditQuery, {}, user))).toBe('FORBIDDEN');

  const log = ok(await gql(a, `query { auditLog(first: 100) { edges { cursor node { id actorId action target details createdAt } } pageInfo { hasNextPage } } }`, {}, admin)).auditLog;
  const entries = log.edges.map((e: { node: { actorId: string; action: string; target: string; details: string; createdAt: string } }) => e.node);
  // Oldest first here: runJob (test 3), pause and resume (test 5), the credit.
  expect(entries.map((e: { action: string; target: string }) => [e.action, e.target]).reverse()).toEqual([
    ['RUN_JOB', 'outbox-sweep'],
    ['PAUSE_JOB', 'deadline-sweep'],
    ['RESUME_JOB', 'deadline-sweep'],
    ['CREDIT_WALLET', 'audited-user'],
  ]);
  expect(entries.every((e: { actorId: string }) => e.actorId === 'jobs-admin')).toBe(true);
  expect(JSON.parse(entries[0].details)).toEqual({ userId: 'audited-user', amount: 500, result: { userId: 'audited-user', balance: 500, frozen: 0 } });
  expect(JSON.parse(entries[1].details)).toMatchObject({ name: 'deadline-sweep', result: { name: 'deadline-sweep', disabled: false } });
  expect(Date.parse(entries[0].createdAt)).toBeGreaterThan(Date.now() - 10_000);
  expect(log.pageInfo.hasNextPage).toBe(false);

  const page = ok(await gql(a, `query { auditLog(first: 1) { edges { cursor node { action } } pageInfo { hasNextPage endCursor } } }`, {}, admin)).auditLog;
  expect(page.edges.map((e: { node: { action: string } }) => e.node.action)).toEqual(['CREDIT_WALLET']);
  const next = ok(await gql(a, `query($after: String) { auditLog(first: 1, after: $after) { edges { node { action } } pageInfo { hasPreviousPage } } }`, { after: page.pageInfo.endCursor }, admin)).auditLog;
  expect(next.edges.map((e: { node: { action: string } }) => e.node.action)).toEqual(['RESUME_JOB']);
  expect(next.pageInfo.hasPreviousPage).toBe(true);

  expect(codeOf(await gql(a, `query { auditLog { edges { node { id } } } }`, {}, user))).toBe('FORBIDDEN');
  expect(codeOf(await gql(a, `query { auditLog { edges { node { id } } } }`))).toBe('UNAUTHENTICATED');
});

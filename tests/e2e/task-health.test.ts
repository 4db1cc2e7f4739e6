import type { App } from '../../src/app.js';
import { gql, LogCapture, setUp, type TestDatabase, token, waitUntil } from '../support/harness.js';
import { withDb } from '../support/orders.js';

/** `GET /health/tasks` on a real server: a periodic job that starts failing turns it 503, and its next success back to 200. */
let db: TestDatabase;
let app: App;
/** The failures are logged on purpose: kept here, not printed. */
const logs = new LogCapture();

beforeAll(async () => {
  // Every 2 s: overdue only after 4 s without a run, so a loaded machine's late run is no false alarm.
  ({ db, app } = await setUp('task_health', { DEADLINE_SWEEP_SECONDS: '2', OUTBOX_SWEEP_SECONDS: '2' }, { log: logs }));
});

const tasks = async () => {
  const res = await fetch(new URL('/health/tasks', app.url));
  return { status: res.status, body: (await res.json()) as { status: string; reasons: string[] } };
};

test('a failing outbox sweep turns /health/tasks 503 with its reason; once it succeeds again, 200', async () => {
  await waitUntil(async () => (await tasks()).status === 200, 5_000, '/health/tasks to be 200 at start');
  expect((await tasks()).body).toEqual({ status: 'ok', reasons: [] });

  // The sweep reads outbox_events: without the table each run fails.
  await withDb(db.url, (c) => c.query('alter table outbox_events rename to outbox_events_away'));
  try {
    // Other jobs that write events (the deadline sweep's end statement) may fail first: wait for this one's reason.
    const outboxFailing = (body: { reasons: string[] }) => body.reasons.some((r) => r.startsWith('outbox-sweep: last run failed'));
    await waitUntil(async () => {
      const { status, body } = await tasks();
      return status === 503 && outboxFailing(body);
    }, 6_000, '/health/tasks to be 503 for the outbox sweep');
    const failing = (await tasks()).body;
    expect(failing.status).toBe('failing');
    // When, not why: the error names the table; only admins read it, through the jobs query.
    const reason = failing.reasons.find((r) => r.startsWith('outbox-sweep: last run failed'))!;
    expect(reason).toMatch(/^outbox-sweep: last run failed at \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z \(\d+ in a row\)$/);
    expect(JSON.stringify(failing)).not.toMatch(/outbox_events|relation|does not exist/);
    const jobs = await gql(app, '{ jobs { name lastError } }', {}, token('admin-1', true));
    expect(jobs.data!.jobs.find((j: { name: string }) => j.name === 'outbox-sweep').lastError).toMatch(/outbox_events/);
  } finally {
    await withDb(db.url, (c) => c.query('alter table outbox_events_away rename to outbox_events'));
  }
  await waitUntil(async () => (await tasks()).status === 200, 6_000, '/health/tasks to be 200 again');
  expect((await tasks()).body).toEqual({ status: 'ok', reasons: [] });
  expect(logs.lines.some((l) => l.msg === 'job failed' && l.job === 'outbox-sweep')).toBe(true);
});

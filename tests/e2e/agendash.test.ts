import type { App } from '../../src/app.js';
import { createTestDatabase, start, testConfig, token } from '../support/harness.js';

/** Agendash at /admin/jobs: admins only, by Bearer header or the cookie `POST /admin/session` sets. */
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let app: App;

beforeAll(async () => {
  db = await createTestDatabase('agendash');
  app = await start(testConfig(db.url));
});

afterAll(async () => {
  await app?.stop();
  await db?.drop();
});

const url = (path: string) => new URL(path, app.url).toString();
const get = (path: string, headers: Record<string, string> = {}) => fetch(url(path), { headers, redirect: 'manual' });
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

const PATHS = ['/admin/jobs', '/admin/jobs/', '/admin/jobs/api?job=&state=&skip=0&limit=10', '/admin/jobs/api/stats'];

test('nothing under /admin/jobs without a token (401), with a bad one (401) or a user token (403)', async () => {
  for (const path of PATHS) {
    expect({ path, status: (await get(path)).status }).toEqual({ path, status: 401 });
    expect({ path, status: (await get(path, bearer('not-a-token'))).status }).toEqual({ path, status: 401 });
    expect({ path, status: (await get(path, bearer(token('someone')))).status }).toEqual({ path, status: 403 });
    expect({ path, status: (await get(path, { cookie: `deadline_admin=${token('someone')}` })).status }).toEqual({ path, status: 403 });
  }
  // Actions too: a user cannot requeue or delete jobs.
  const post = await fetch(url('/admin/jobs/api/jobs/delete'), { method: 'POST', headers: { ...bearer(token('someone')), 'content-type': 'application/json' }, body: '{"jobIds":[]}' });
  expect(post.status).toBe(403);
});

test('an admin Bearer token is served the dashboard and its API, which lists the catalogue\'s jobs', async () => {
  const admin = token('admin-1', true);
  const page = await get('/admin/jobs/', bearer(admin));
  expect(page.status).toBe(200);
  expect(page.headers.get('content-type')).toMatch(/text\/html/);
  expect(await page.text()).toMatch(/agendash/i);
  const api = await get('/admin/jobs/api?job=&state=&skip=0&limit=50', bearer(admin));
  expect(api.status).toBe(200);
  const body = (await api.json()) as { overview: Array<{ displayName?: string; _id?: string }> };
  const names = JSON.stringify(body.overview);
  expect(names).toContain('outbox-sweep');

  // Pause and delete there would go around job_states and the audit log: refused.
  for (const action of ['pause', 'resume', 'create', 'delete']) {
    const res = await fetch(url(`/admin/jobs/api/jobs/${action}`), { method: 'POST', headers: { ...bearer(admin), 'content-type': 'application/json' }, body: '{"jobIds":[]}' });
    expect({ action, status: res.status }).toEqual({ action, status: 409 });
  }
});

test('POST /admin/session: an admin token sets an HttpOnly SameSite=Strict cookie that opens /admin/jobs; a user token is refused', async () => {
  expect((await fetch(url('/admin/session'), { method: 'POST' })).status).toBe(401);
  expect((await fetch(url('/admin/session'), { method: 'POST', headers: bearer(token('someone')) })).status).toBe(403);

  const admin = token('admin-1', true);
  const res = await fetch(url('/admin/session'), { method: 'POST', headers: bearer(admin) });
  expect(res.status).toBe(204);
  const cookie = res.headers.get('set-cookie') ?? '';
  expect(cookie).toMatch(/^deadline_admin=[^;]+; Path=\/admin; HttpOnly; SameSite=Strict; Max-Age=\d+/);
  const pair = cookie.split(';')[0];
  expect((await get('/admin/jobs/', { cookie: pair })).status).toBe(200);
  expect((await get('/admin/jobs/api/stats', { cookie: pair })).status).toBe(200);

  const out = await fetch(url('/admin/session'), { method: 'DELETE' });
  expect(out.headers.get('set-cookie')).toMatch(/^deadline_admin=; .*Max-Age=0/);
});

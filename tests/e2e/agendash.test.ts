import { request as httpRequest } from 'node:http';
import type { App } from '../../src/app.js';
import { setUp, token } from '../support/harness.js';

/** Agendash at /admin/jobs: admins only, by Bearer header or the cookie `POST /admin/session` sets. */
let app: App;

beforeAll(async () => {
  ({ app } = await setUp('agendash'));
});

const url = (path: string) => new URL(path, app.url).toString();
const get = (path: string, headers: Record<string, string> = {}) => fetch(url(path), { headers, redirect: 'manual' });
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
/** The path sent exactly as written (fetch would resolve `%2e%2e` and dot segments before sending). */
const raw = (method: string, path: string, headers: Record<string, string>, body = ''): Promise<number> =>
  new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: new URL(app.url).port, method, path, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode!));
    });
    req.on('error', reject);
    req.end(body);
  });

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

/** Agendash's job rows for a catalogue job, as its own API lists them. */
async function agendashJobs(admin: string, name: string): Promise<Array<{ job: { _id: string; name: string; disabled?: boolean } }>> {
  const res = await get(`/admin/jobs/api?job=${encodeURIComponent(name)}&state=&skip=0&limit=50`, bearer(admin));
  expect(res.status).toBe(200);
  return ((await res.json()) as { jobs: Array<{ job: { _id: string; name: string; disabled?: boolean } }> }).jobs;
}

test('the actions Agendash must not take are refused however the path is spelled (case, slashes, encoding), and change nothing', async () => {
  const admin = token('admin-1', true);
  const [sweep] = await agendashJobs(admin, 'outbox-sweep');
  expect(sweep.job.name).toBe('outbox-sweep');
  const bodies: Record<string, unknown> = {
    delete: { jobIds: [sweep.job._id] },
    pause: { jobIds: [sweep.job._id] },
    resume: { jobIds: [sweep.job._id] },
    create: { jobName: 'outbox-sweep-evil', jobSchedule: 'now', jobRepeatEvery: '', jobData: {} },
  };
  const spellings = (action: string) => [
    `/admin/jobs/api/jobs/${action}`,
    `/admin/jobs/api/jobs/${action}/`,
    `/admin/jobs/api/jobs/${action.toUpperCase()}`,
    `/admin/jobs/API/Jobs/${action[0].toUpperCase()}${action.slice(1)}/`,
    `/ADMIN/JOBS/api/jobs/${action}`,
    `/admin/jobs/api/jobs//${action}`,
    `/admin/jobs//api/jobs/${action}//`,
    `/admin/jobs/api/jobs%2F${action}`,
    `/admin/jobs/api/jobs/%${action.charCodeAt(0).toString(16)}${action.slice(1)}`,
    `/admin/jobs/api/jobs/%25${action.charCodeAt(0).toString(16)}${action.slice(1)}`,
    `/admin/jobs/api/jobs/${action}%`,
    `/admin/jobs/api/jobs/${action}%E0%A4%A`,
  ];
  for (const [action, body] of Object.entries(bodies)) {
    for (const path of spellings(action)) {
      const status = await raw('POST', path, { ...bearer(admin), 'content-type': 'application/json' }, JSON.stringify(body));
      // 409 with the GraphQL mutation to use; 404 or 400 for what is not even an Agendash call.
      expect({ path, refused: [400, 404, 409].includes(status) }).toEqual({ path, refused: true });
    }
  }
  // Nothing reached Agendash: the job is there and enabled, no job was created.
  const after = await agendashJobs(admin, 'outbox-sweep');
  expect(after.map((j) => [j.job._id, j.job.disabled ?? false])).toEqual([[sweep.job._id, false]]);
  expect(await agendashJobs(admin, 'outbox-sweep-evil')).toEqual([]);
});

test('an admin still reads everything Agendash shows, and may requeue and retry; other paths are 404', async () => {
  const admin = token('admin-1', true);
  const page = await get('/admin/jobs/index.html', bearer(admin));
  expect(page.status).toBe(200);
  const html = await page.text();
  const assets = [...html.matchAll(/(?:src|href)="\.\/(assets\/[^"]+)"/g)].map((m) => m[1]);
  expect(assets.length).toBeGreaterThanOrEqual(2);
  for (const asset of assets) expect({ asset, status: (await get(`/admin/jobs/${asset}`, bearer(admin))).status }).toEqual({ asset, status: 200 });
  for (const path of ['/admin/jobs/', '/admin/jobs/api/stats', '/admin/jobs/api/stats?fullDetails=true', '/admin/jobs/api?job=&state=&skip=0&limit=5', '/admin/jobs/api/logs?limit=5']) {
    expect({ path, status: (await get(path, bearer(admin))).status }).toEqual({ path, status: 200 });
  }
  const [sweep] = await agendashJobs(admin, 'outbox-sweep');
  for (const action of ['requeue', 'retry']) {
    const res = await fetch(url(`/admin/jobs/api/jobs/${action}`), { method: 'POST', headers: { ...bearer(admin), 'content-type': 'application/json' }, body: JSON.stringify({ jobIds: [sweep.job._id] }) });
    expect({ action, status: res.status }).toEqual({ action, status: 200 });
  }
  for (const path of ['/admin/jobs/package.json', '/admin/jobs/api/jobs', '/admin/jobs/api/other', '/admin/jobs/assets/../../package.json', '/admin/jobs/assets/%2e%2e/index.html']) {
    expect({ path, status: await raw('GET', path, bearer(admin)) }).toEqual({ path, status: 404 });
  }
  // Reads only by GET: the same API path by another method is not Agendash's to answer.
  expect((await fetch(url('/admin/jobs/api/stats'), { method: 'POST', headers: bearer(admin) })).status).toBe(404);
});

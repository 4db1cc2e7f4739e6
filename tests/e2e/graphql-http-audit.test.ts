import { serverAudits } from 'graphql-http';
import type { App } from '../../src/app.js';
import { setUp } from '../support/harness.js';

/** graphql-http's GraphQL-over-HTTP audits against a real server: every one passes, none warns. */
let app: App;

beforeAll(async () => {
  ({ app } = await setUp('graphql_http_audit'));
});

/**
 * Notices (MAY) are left out: GET queries are refused by Apollo's CSRF prevention unless they carry
 * a preflight-forcing header, which the audits' GETs do not.
 */
test('every serverAudits audit passes with no warning or error', async () => {
  const audits = serverAudits({ url: app.url, fetchFn: fetch });
  const results = [];
  for (const audit of audits) {
    const result = await audit.fn();
    if (result.status === 'warn' || result.status === 'error') results.push({ id: audit.id, name: audit.name, status: result.status, reason: result.reason });
  }
  expect(results).toEqual([]);
  expect(audits.length).toBeGreaterThan(30);
});

test('a document that does not parse or validate, or variables that do not coerce: 200 under application/json, 400 under application/graphql-response+json', async () => {
  const bodies = [
    { query: '{ me { id ' },
    { query: '{ nope }' },
    { query: 'query($id: ID!) { auction(id: $id) { id } }', variables: { id: { not: 'an id' } } },
  ];
  for (const body of bodies) {
    for (const [accept, status] of [
      ['application/json', 200],
      [undefined, 200],
      ['application/graphql-response+json', 400],
      ['application/graphql-response+json, application/json', 400],
    ] as const) {
      const res = await fetch(app.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(accept ? { accept } : {}) },
        body: JSON.stringify(body),
      });
      expect({ query: body.query, accept, status: res.status }).toEqual({ query: body.query, accept, status });
      expect(((await res.json()) as { errors: unknown[] }).errors.length).toBeGreaterThan(0);
    }
  }
  // An unauthenticated token is still 401, whatever the client accepts.
  const forged = await fetch(app.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json', authorization: 'Bearer nope' }, body: '{"query":"{ me { id } }"}' });
  expect(forged.status).toBe(401);
});

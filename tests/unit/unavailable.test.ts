import { isDatabaseUnavailable } from '../../src/db/unavailable.js';

const withCode = (message: string, code: string) => Object.assign(new Error(message), { code });

test.each([
  ['a refused connect', withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
  ['a reset socket', withCode('read ECONNRESET', 'ECONNRESET')],
  ['a connection dropped mid-query', new Error('Connection terminated unexpectedly')],
  ["the pool's connect timeout", new Error('timeout exceeded when trying to connect')],
  ['a client already broken', new Error('Client has encountered a connection error and is not queryable')],
  ['SQLSTATE 08006 (connection failure)', withCode('connection failure', '08006')],
  ['SQLSTATE 57P01 (the server is shutting down)', withCode('terminating connection due to administrator command', '57P01')],
  ['MikroORM\'s wrapper, SQLSTATE in sqlState', Object.assign(new Error('x'), { sqlState: '57P03' })],
  ['an error whose cause is one', new Error('query failed', { cause: withCode('connect ECONNREFUSED', 'ECONNREFUSED') })],
  ["graphql-js's wrapper of a foreign thrown value", Object.assign(new Error('Unexpected error value'), { thrownValue: { code: 'ECONNREFUSED' } })],
  ['the same as text, re-wrapped by Agenda', new Error('Error: connect ECONNREFUSED 127.0.0.1:5432')],
])('%s means PostgreSQL is unreachable', (_what, err) => {
  expect(isDatabaseUnavailable(err)).toBe(true);
});

test.each([
  ['a unique violation', withCode('duplicate key value violates unique constraint', '23505')],
  ['a data exception', withCode('invalid input syntax for type bigint', '22P02')],
  ['a statement timeout', withCode('canceling statement due to statement timeout', '57014')],
  ['any other error', new Error('boom')],
  ['no error at all', null],
  ['a string', 'ECONNREFUSED'],
])('%s does not', (_what, err) => {
  expect(isDatabaseUnavailable(err)).toBe(false);
});

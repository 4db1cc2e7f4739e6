import { MongoClient, MongoNetworkError, MongoNetworkTimeoutError, MongoNotConnectedError, MongoServerError, MongoTopologyClosedError } from 'mongodb';
import { isDatabaseUnavailable, isMongoUnavailable, isPostgresUnavailable } from '../../src/db/unavailable.js';
import { freePort } from '../support/ports.js';

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

// The MongoDB job store (AGENDA_MONGO_URL): the driver's own error classes, recognised by name.
const mongoServerError = (code: number, message: string) => new MongoServerError({ code, errmsg: message, ok: 0 });

test.each([
  ['a socket that failed', new MongoNetworkError('connection 1 to 127.0.0.1:27017 closed')],
  ['a socket that timed out', new MongoNetworkTimeoutError('connection timed out')],
  ['an operation before the client connected', new MongoNotConnectedError('Client must be connected before running operations')],
  ['ShutdownInProgress (the node is stopping)', mongoServerError(91, 'The server is in quiesce mode and will shut down')],
  ['NotWritablePrimary (an election is under way)', mongoServerError(10107, 'not primary')],
  ['PrimarySteppedDown', mongoServerError(189, 'Primary stepped down while waiting for replication')],
  ['an error whose cause is one', new Error('saving the job failed', { cause: new MongoNetworkError('closed') })],
  ['the same as text, re-wrapped by Agenda', new Error('MongoServerSelectionError: connect ECONNREFUSED 127.0.0.1:27017')],
])('%s means MongoDB is unreachable (and is no PostgreSQL outage)', (_what, err) => {
  expect(isMongoUnavailable(err)).toBe(true);
  expect(isDatabaseUnavailable(err)).toBe(true);
  expect(isPostgresUnavailable(err)).toBe(false);
});

test.each([
  ['a duplicate key', mongoServerError(11000, 'E11000 duplicate key error collection: deadline.agenda_jobs')],
  ['a bad query', mongoServerError(2, 'unknown operator: $foo')],
  ['our own stop (the client was closed)', new MongoTopologyClosedError()],
])('%s does not', (_what, err) => {
  expect(isMongoUnavailable(err)).toBe(false);
  expect(isDatabaseUnavailable(err)).toBe(false);
});

test('PostgreSQL outage errors are not taken for MongoDB ones', () => {
  const err = withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED');
  expect(isMongoUnavailable(err)).toBe(false);
  expect(isPostgresUnavailable(err)).toBe(true);
});

test('what the driver really throws when no MongoDB answers is recognised, though its cause is a socket error', async () => {
  const client = new MongoClient(`mongodb://127.0.0.1:${await freePort()}/x`, { serverSelectionTimeoutMS: 300, connectTimeoutMS: 300 });
  const err = await client.connect().then(
    () => null,
    (e: unknown) => e,
  );
  await client.close();
  expect((err as Error).name).toBe('MongoServerSelectionError');
  expect(isMongoUnavailable(err)).toBe(true);
  expect(isDatabaseUnavailable(err)).toBe(true);
  expect(isPostgresUnavailable(err)).toBe(false);
});

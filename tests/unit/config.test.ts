import { ConfigError, loadConfig } from '../../src/config.js';

const base = { NODE_ENV: 'test', JWT_SECRET: 'a-secret-of-enough-length' };

test('defaults are the documented ones', () => {
  const c = loadConfig({ NODE_ENV: 'development' });
  expect(c.port).toBe(4000);
  expect(c.databaseUrl).toBe('postgres://postgres@127.0.0.1:5432/deadline');
  expect(c.redisUrl).toBe('redis://127.0.0.1:6379');
  expect(c.agendaMongoUrl).toBeUndefined();
  expect(c.appTimezone).toBe('Asia/Shanghai');
  expect(c.enableCron).toBe(true);
  expect(c.deadlineBatchSize).toBe(100);
  expect(c.deadlineSweepSeconds).toBe(60);
  expect(c.orderExpireMinutes).toBe(30);
  expect(c.orderExpiryBatchSize).toBe(1000);
  expect(c.orderExpiryLanes).toBe(2);
  expect(c.outboxRetentionHours).toBe(24);
  expect(c.auctionEndLanes).toBe(2);
  expect(c.wsMaxBufferedBytes).toBe(4 * 1024 * 1024);
  expect(c.seckill).toEqual({ group: 'g1', batch: 500, blockMs: 1000, claimIdleMs: 30_000, maxDeliveries: 5, keyPrefix: '', discoverSeconds: 5, paymentQuietMs: 200, paymentMaxDelayMs: 1000, streamKeep: 10_000 });
  // The hostile-input limits (issue 26).
  expect(c.graphqlMaxFragments).toBe(100);
  expect(c.wsMaxMessageBytes).toBe(1024 * 1024);
  expect(c.wsMaxSubscriptions).toBe(100);
  expect(c.wsMaxSocketsPerUser).toBe(20);
  expect(c.wsPingSeconds).toBe(30);
  expect(c.orders).toEqual({ maxPendingPerUser: 20, maxQuantity: 100 });
  // Refunds (issue 28): refund-reconciliation's defaults, as PRODUCT.md pins them.
  expect(c.refunds).toEqual({ reconcileIntervalMinutes: 5, reconcileBatchSize: 50, reconcileConcurrency: 5 });
  expect(c.paymentsSandbox).toBe(true);
  expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) }).paymentsSandbox).toBe(false);
  expect(c.corsOrigins).toEqual([]);
  expect(c.trustProxy).toBeUndefined();
  // Deploying (issue 30): today's pool sizes, migrations at start-up, one name per process.
  expect(c.logLevel).toBe('info');
  expect(c.migrateOnStart).toBe(true);
  expect(c.dbPoolSize).toBe(10);
  expect(c.jobStorePoolSize).toBeUndefined();
  expect(c.instanceName).toMatch(new RegExp(`-${process.pid}$`));
  expect(loadConfig({ NODE_ENV: 'development', INSTANCE_NAME: 'web-1', MIGRATE_ON_START: 'false', DB_POOL_SIZE: '20', JOB_STORE_POOL_SIZE: '3' })).toMatchObject({
    instanceName: 'web-1',
    migrateOnStart: false,
    dbPoolSize: 20,
    jobStorePoolSize: 3,
  });
});

test('durations accept decimals', () => {
  expect(loadConfig({ ...base, DEADLINE_SWEEP_SECONDS: '0.25' }).deadlineSweepSeconds).toBe(0.25);
  expect(loadConfig({ ...base, ORDER_EXPIRE_MINUTES: '0.5' }).orderExpireMinutes).toBe(0.5);
});

test.each([
  ['PORT', 'eighty'],
  ['PORT', '80.5'],
  ['DATABASE_URL', 'mysql://x'],
  ['REDIS_URL', 'not a url'],
  ['AGENDA_MONGO_URL', 'postgres://x'],
  ['ENABLE_CRON', 'maybe'],
  ['APP_TIMEZONE', 'Mars/Olympus'],
  ['DEADLINE_BATCH_SIZE', '0'],
  ['ORDER_EXPIRE_MINUTES', '0'],
  ['ORDER_EXPIRE_MINUTES', 'half an hour'],
  ['ORDER_EXPIRY_BATCH_SIZE', '2.5'],
  ['ORDER_EXPIRY_LANES', '0'],
  ['AUCTION_END_LANES', '1.5'],
  ['JOB_PROCESS_EVERY_SECONDS', '-1'],
  ['SECKILL_GROUP', 'has spaces'],
  ['SECKILL_BATCH', '0'],
  ['SECKILL_BLOCK_MS', '1.5'],
  ['WS_MAX_BUFFERED_BYTES', '512'],
  ['WS_MAX_BUFFERED_BYTES', '4MB'],
  ['SECKILL_CLAIM_IDLE_MS', 'soon'],
  ['SECKILL_MAX_DELIVERIES', '0'],
  ['SECKILL_DISCOVER_SECONDS', '0'],
  ['SECKILL_PAYMENT_QUIET_MS', '-1'],
  ['SECKILL_PAYMENT_MAX_DELAY_MS', '0.5'],
  ['OUTBOX_RETENTION_HOURS', 'a day'],
  // Less than the 600 s a subscriber that was cut off catches up over.
  ['OUTBOX_RETENTION_HOURS', '0.1'],
  ['LOG_LEVEL', 'verbose'],
  ['INSTANCE_NAME', 'two words'],
  ['MIGRATE_ON_START', 'sometimes'],
  ['DB_POOL_SIZE', '0'],
  ['JOB_STORE_POOL_SIZE', '2.5'],
])('a bad %s (%s) stops start-up with the variable named', (name, value) => {
  expect(() => loadConfig({ ...base, [name]: value })).toThrow(ConfigError);
  expect(() => loadConfig({ ...base, [name]: value })).toThrow(new RegExp(`^Invalid configuration: ${name} `));
});

test('JWT_SECRET is required outside development; in development there is no built-in one', () => {
  expect(() => loadConfig({ NODE_ENV: 'production' })).toThrow(/JWT_SECRET is required/);
  expect(() => loadConfig({ NODE_ENV: 'test' })).toThrow(/JWT_SECRET is required/);
  expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) }).jwtSecret).toBe('x'.repeat(32));
  // The server makes its own (tests/unit/jwt-secret.test.ts).
  expect(loadConfig({ NODE_ENV: 'development' }).jwtSecret).toBeUndefined();
});

test('a removed variable still loads, and is named for the start-up warning with why it went', () => {
  expect(loadConfig(base).removedVariables).toEqual([]);
  // Any value, even one the old code refused: the server must still start.
  const c = loadConfig({ ...base, DEADLINE_WATCH_MS: 'not a number', DEADLINE_SETTLE_ON_TIME: 'false', DEADLINE_STALE_SECONDS: '' });
  expect(c.removedVariables).toHaveLength(3);
  for (const name of ['DEADLINE_WATCH_MS', 'DEADLINE_SETTLE_ON_TIME', 'DEADLINE_STALE_SECONDS']) {
    expect(c.removedVariables).toContainEqual(expect.stringMatching(new RegExp(`^${name} no longer exists: [^;]+; remove it$`)));
  }
  const all = ['DEADLINE_WATCH_MS', 'DEADLINE_WATCH_GRACE_MS', 'DEADLINE_ARM_BACKSTOP_MS', 'DEADLINE_SETTLE_ON_TIME', 'DEADLINE_INLINE_WINDOW_SECONDS', 'DEADLINE_STALE_SECONDS'];
  expect(loadConfig({ ...base, ...Object.fromEntries(all.map((n) => [n, '1'])) }).removedVariables.map((w) => w.split(' ')[0]).sort()).toEqual([...all].sort());
});

test('DEADLINE_TIMERS: on by default, off for an instance that serves clients only', () => {
  expect(loadConfig(base).deadlineTimers).toBe(true);
  expect(loadConfig({ ...base, DEADLINE_TIMERS: 'false' }).deadlineTimers).toBe(false);
  expect(() => loadConfig({ ...base, DEADLINE_TIMERS: 'sometimes' })).toThrow(/^Invalid configuration: DEADLINE_TIMERS /);
});

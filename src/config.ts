/**
 * One typed configuration, parsed and validated once from the environment.
 * A bad value stops start-up with the variable's name in the message.
 * Durations are seconds and accept decimals (0.2 = 200 ms) so tests never wait long.
 * The shape is src/config/types.ts; the readers of single variables src/config/parse.ts (typed) and
 * src/config/variables.ts (rules of their own); the payment providers' src/config/providers.ts.
 */
import { bool, clockTime, ConfigError, num, str, timezone, url, type Env } from './config/parse.js';
import { alipayConfig, wechatConfig } from './config/providers.js';
import type { Config } from './config/types.js';
import { corsOrigins, instanceName, logLevel, outboxRetention, removedVariables, seckillGroup, trustProxy } from './config/variables.js';

export type { AlipayConfig, Config, WechatConfig } from './config/types.js';
export { ConfigError } from './config/parse.js';
export { LOG_LEVELS } from './config/variables.js';

export function loadConfig(env: Env = process.env): Config {
  const nodeEnvRaw = str(env, 'NODE_ENV', 'development');
  if (!['development', 'production', 'test'].includes(nodeEnvRaw)) {
    throw new ConfigError('NODE_ENV', `must be development, production or test, got "${nodeEnvRaw}"`);
  }
  const nodeEnv = nodeEnvRaw as Config['nodeEnv'];
  const jwtSecret = env.JWT_SECRET ?? '';
  if (nodeEnv !== 'development' && jwtSecret.length === 0) {
    throw new ConfigError('JWT_SECRET', 'is required outside development');
  }
  if (jwtSecret.length > 0 && jwtSecret.length < 16) {
    throw new ConfigError('JWT_SECRET', 'must be at least 16 characters');
  }
  const port = num(env, 'PORT', 4000, { min: 0, integer: true });
  return {
    nodeEnv,
    port,
    databaseUrl: url(env, 'DATABASE_URL', 'postgres://postgres@127.0.0.1:5432/deadline', ['postgres:', 'postgresql:'])!,
    redisUrl: url(env, 'REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:'])!,
    agendaMongoUrl: url(env, 'AGENDA_MONGO_URL', undefined, ['mongodb:', 'mongodb+srv:']),
    jwtSecret: jwtSecret || undefined,
    appTimezone: timezone(env, 'APP_TIMEZONE', 'Asia/Shanghai'),
    enableCron: bool(env, 'ENABLE_CRON', true),
    logLevel: logLevel(env, nodeEnv === 'test' ? 'warn' : 'info'),
    instanceName: instanceName(env),
    migrateOnStart: bool(env, 'MIGRATE_ON_START', true),
    dbPoolSize: num(env, 'DB_POOL_SIZE', 10, { min: 1, integer: true }),
    jobStorePoolSize: env.JOB_STORE_POOL_SIZE ? num(env, 'JOB_STORE_POOL_SIZE', 5, { min: 1, integer: true }) : undefined,
    redisPrefix: str(env, 'REDIS_PREFIX', 'deadline'),
    jobProcessEverySeconds: num(env, 'JOB_PROCESS_EVERY_SECONDS', 5, { min: 0.05 }),
    jobLockLifetimeSeconds: num(env, 'JOB_LOCK_LIFETIME_SECONDS', 120, { min: 0.5 }),
    jobConcurrency: num(env, 'JOB_CONCURRENCY', 5, { min: 1, integer: true }),
    deadlineBatchSize: num(env, 'DEADLINE_BATCH_SIZE', 100, { min: 1, integer: true }),
    auctionEndBatchSize: num(env, 'AUCTION_END_BATCH_SIZE', 1000, { min: 1, integer: true }),
    auctionEndLanes: num(env, 'AUCTION_END_LANES', 2, { min: 1, integer: true }),
    orderExpireMinutes: num(env, 'ORDER_EXPIRE_MINUTES', 30, { min: 0.001 }),
    orderExpiryBatchSize: num(env, 'ORDER_EXPIRY_BATCH_SIZE', 1000, { min: 1, integer: true }),
    orderExpiryLanes: num(env, 'ORDER_EXPIRY_LANES', 2, { min: 1, integer: true }),
    deadlineSweepSeconds: num(env, 'DEADLINE_SWEEP_SECONDS', 60, { min: 0.1 }),
    deadlineTimers: bool(env, 'DEADLINE_TIMERS', true),
    removedVariables: removedVariables(env),
    outboxSweepSeconds: num(env, 'OUTBOX_SWEEP_SECONDS', 10, { min: 0.1 }),
    outboxRepublishAfterSeconds: num(env, 'OUTBOX_REPUBLISH_AFTER_SECONDS', 5, { min: 0 }),
    eventDedupeWindowSeconds: num(env, 'EVENT_DEDUPE_WINDOW_SECONDS', 600, { min: 1 }),
    outboxRetentionHours: outboxRetention(env),
    countdownTickSeconds: num(env, 'COUNTDOWN_TICK_SECONDS', 1, { min: 0.05 }),
    graphqlMaxDepth: num(env, 'GRAPHQL_MAX_DEPTH', 15, { min: 1, integer: true }),
    graphqlMaxCost: num(env, 'GRAPHQL_MAX_COST', 5000, { min: 1, integer: true }),
    graphqlMaxFragments: num(env, 'GRAPHQL_MAX_FRAGMENTS', 100, { min: 1, integer: true }),
    graphqlMaxTokens: num(env, 'GRAPHQL_MAX_TOKENS', 5000, { min: 100, integer: true }),
    wsMaxMessageBytes: num(env, 'WS_MAX_MESSAGE_BYTES', 1024 * 1024, { min: 1024, integer: true }),
    wsMaxSubscriptions: num(env, 'WS_MAX_SUBSCRIPTIONS', 100, { min: 1, integer: true }),
    wsMaxSocketsPerUser: num(env, 'WS_MAX_SOCKETS_PER_USER', 20, { min: 1, integer: true }),
    wsPingSeconds: num(env, 'WS_PING_SECONDS', 30, { min: 0.05 }),
    // 4 MiB: a burst of 1,000 auction ends (one settlement batch) to a watcher of all auctions is ~0.5 MB.
    wsMaxBufferedBytes: num(env, 'WS_MAX_BUFFERED_BYTES', 4 * 1024 * 1024, { min: 1024, integer: true }),
    shutdownGraceSeconds: num(env, 'SHUTDOWN_GRACE_SECONDS', 10, { min: 0 }),
    publicBaseUrl: url(env, 'PUBLIC_BASE_URL', undefined, ['http:', 'https:'])?.replace(/\/+$/, ''),
    wechat: wechatConfig(env),
    alipay: alipayConfig(env),
    sandboxPayUrl: url(env, 'SANDBOX_PAY_URL', 'http://127.0.0.1:4010', ['http:', 'https:'])!.replace(/\/+$/, ''),
    paymentTimeoutSeconds: num(env, 'PAYMENT_PROVIDER_TIMEOUT_SECONDS', 10, { min: 0.1 }),
    paymentsSandbox: bool(env, 'PAYMENTS_SANDBOX', nodeEnv !== 'production'),
    orders: {
      maxPendingPerUser: num(env, 'ORDER_MAX_PENDING_PER_USER', 20, { min: 1, integer: true }),
      maxQuantity: num(env, 'ORDER_MAX_QUANTITY', 100, { min: 1, integer: true }),
    },
    trustProxy: trustProxy(env),
    corsOrigins: corsOrigins(env),
    jwtIssuer: env.JWT_ISSUER || undefined,
    jwtAudience: env.JWT_AUDIENCE || undefined,
    vip: {
      reminderTime: clockTime(env, 'VIP_REMINDER_TIME', '09:00'),
      reminderBatchSize: num(env, 'VIP_REMINDER_BATCH_SIZE', 2000, { min: 1, integer: true }),
      expiryBatchSize: num(env, 'VIP_EXPIRY_BATCH_SIZE', 500, { min: 1, integer: true }),
    },
    seckill: {
      group: seckillGroup(env),
      batch: num(env, 'SECKILL_BATCH', 500, { min: 1, integer: true }),
      blockMs: num(env, 'SECKILL_BLOCK_MS', 1000, { min: 1, integer: true }),
      claimIdleMs: num(env, 'SECKILL_CLAIM_IDLE_MS', 30_000, { min: 1, integer: true }),
      maxDeliveries: num(env, 'SECKILL_MAX_DELIVERIES', 5, { min: 1, integer: true }),
      keyPrefix: str(env, 'SECKILL_KEY_PREFIX', ''),
      discoverSeconds: num(env, 'SECKILL_DISCOVER_SECONDS', 5, { min: 0.05 }),
      paymentQuietMs: num(env, 'SECKILL_PAYMENT_QUIET_MS', 200, { min: 0, integer: true }),
      paymentMaxDelayMs: num(env, 'SECKILL_PAYMENT_MAX_DELAY_MS', 1000, { min: 0, integer: true }),
      streamKeep: num(env, 'SECKILL_STREAM_KEEP', 10_000, { min: 0, integer: true }),
    },
    reconcile: {
      intervalMinutes: num(env, 'RECONCILE_INTERVAL_MINUTES', 5, { min: 0.001 }),
      thresholdMinutes: num(env, 'RECONCILE_THRESHOLD_MINUTES', 5, { min: 0 }),
      batchSize: num(env, 'RECONCILE_BATCH_SIZE', 50, { min: 1, integer: true }),
      concurrency: num(env, 'RECONCILE_CONCURRENCY', 5, { min: 1, integer: true }),
      closeAfterMinutes: num(env, 'RECONCILE_CLOSE_AFTER_MINUTES', 15, { min: 0 }),
      maxRetries: num(env, 'RECONCILE_MAX_RETRIES', 3, { min: 0, integer: true }),
      retrySeconds: num(env, 'RECONCILE_RETRY_SECONDS', 60, { min: 0 }),
    },
    refunds: {
      reconcileIntervalMinutes: num(env, 'REFUND_RECONCILE_INTERVAL_MINUTES', 5, { min: 0.001 }),
      reconcileBatchSize: num(env, 'REFUND_RECONCILE_BATCH_SIZE', 50, { min: 1, integer: true }),
      reconcileConcurrency: num(env, 'REFUND_RECONCILE_CONCURRENCY', 5, { min: 1, integer: true }),
    },
  };
}

/**
 * One typed configuration, parsed and validated once from the environment.
 * A bad value stops start-up with the variable's name in the message.
 * Durations are seconds and accept decimals (0.2 = 200 ms) so tests never wait long.
 */
import { hostname } from 'node:os';
import { maskUrlPasswords } from './redact.js';

export interface Config {
  nodeEnv: 'development' | 'production' | 'test';
  port: number;
  databaseUrl: string;
  redisUrl: string;
  /** Unset: Agenda stores jobs in PostgreSQL. Set: MongoDB, with Redis pub/sub for notifications. */
  agendaMongoUrl: string | undefined;
  /**
   * JWT_SECRET. Unset in development only: the server then signs with a random secret of its own, made
   * on its first start in `.deadline/jwt-secret` (resolveJwtSecret in src/jwt-secret.ts), which
   * `npm run token` reads. There is no built-in secret: anyone could sign an admin's token with it.
   */
  jwtSecret: string | undefined;
  appTimezone: string;
  enableCron: boolean;
  /** One of pino's levels (LOG_LEVEL). */
  logLevel: string;
  /**
   * This instance's name on every log line, in job runs and `jobEvents`, and as Agenda's lock owner
   * (INSTANCE_NAME; default `<hostname>-<pid>`: unique per process on a host, and per container).
   */
  instanceName: string;
  /**
   * MIGRATE_ON_START: apply pending migrations at start-up (serialised across instances by an advisory
   * lock). false: migrations are a release step (`npm run migrate`) and a server finding any pending
   * refuses to start, naming them.
   */
  migrateOnStart: boolean;
  /** Connections the app's PostgreSQL pool may hold (DB_POOL_SIZE; 10, MikroORM's pool as it always was here). */
  dbPoolSize: number;
  /**
   * Connections the job store's pool may hold (JOB_STORE_POOL_SIZE). Unset: 5 on PostgreSQL (as it always
   * was here, plus one LISTEN connection), the MongoDB driver's own 100 with AGENDA_MONGO_URL.
   */
  jobStorePoolSize: number | undefined;
  /** Prefix of the Redis pub/sub channels, so several deployments (or test files) can share one Redis. */
  redisPrefix: string;
  /** Agenda: how often each instance scans the job store for due jobs. */
  jobProcessEverySeconds: number;
  /** Agenda: how long a locked job may run before another instance may take it over. */
  jobLockLifetimeSeconds: number;
  jobConcurrency: number;
  /** Deadlines: how many deadlines one conditional update settles. */
  deadlineBatchSize: number;
  /**
   * Auction ends settled per transaction. Larger than the default: an auction end is one row and two
   * events, and 10,000 ends in one second need ~10 transactions, not 100 (docs/benchmarks.md).
   */
  auctionEndBatchSize: number;
  /** Auction-end batches settled at once while batches come back full (a backlog, many ends at one instant). */
  auctionEndLanes: number;
  /** An H5 order not paid this long after creation expires (ORDER_EXPIRE_MINUTES, decimals allowed). */
  orderExpireMinutes: number;
  /**
   * Order expiries settled per transaction, oldest first: each is an order, a wallet, a ledger row and
   * two events. 1,000 like the auction ends: a 100,000-order backlog drained 1.4-2.6× faster than at
   * 100 (docs/benchmarks.md, "Order expiry throughput (issue 12)"); a deadline or two due at a time
   * still makes a batch of one or two.
   */
  orderExpiryBatchSize: number;
  /**
   * Order expiry batches settled at once on separate connections while a backlog lasts (SKIP LOCKED
   * keeps them apart). 2: one batch's SQL overlaps the other's publication; on the idle 2-core machine
   * a 100,000-order backlog drained at 12,857-13,626/s against 11,000-11,028/s with one (3 and 4 lanes:
   * no faster; docs/benchmarks.md, "Order expiry throughput (issue 12)").
   */
  orderExpiryLanes: number;
  /** Deadlines: the safety sweep's interval. */
  deadlineSweepSeconds: number;
  /**
   * Deadlines: this instance keeps a timer per kind at its armed time and settles what is due then
   * (the mechanism). false: none here (an instance that serves clients only); the other instances'
   * timers and the backstop (wake-up job, sweep, start-up recovery) settle its deadlines.
   */
  deadlineTimers: boolean;
  /** Variables set that no longer exist: one start-up warning each ("<NAME> no longer exists: …; remove it"). */
  removedVariables: string[];
  /** Outbox: how often unpublished events are looked for, and how old they must be. */
  outboxSweepSeconds: number;
  outboxRepublishAfterSeconds: number;
  /** Published outbox events older than this are deleted by the sweep (never an unpublished one). */
  outboxRetentionHours: number;
  /** How long each instance remembers the event ids it delivered, so a republished copy is dropped. */
  eventDedupeWindowSeconds: number;
  countdownTickSeconds: number;
  graphqlMaxDepth: number;
  /** A query's cost: every field 1, a list's children times its page size (`first`, its variable's value included). */
  graphqlMaxCost: number;
  /** Fragment definitions one document may hold. */
  graphqlMaxFragments: number;
  /** Tokens one document may hold: counted by the parser, before any validation rule runs. */
  graphqlMaxTokens: number;
  /** A graphql-ws message larger than this closes its socket (1009 Message Too Big). */
  wsMaxMessageBytes: number;
  /** Subscriptions running on one socket; one more is refused with LIMIT_EXCEEDED. */
  wsMaxSubscriptions: number;
  /** graphql-ws sockets one user holds on one instance; one more is closed with 4429. */
  wsMaxSocketsPerUser: number;
  /** Every socket is pinged this often; one that did not answer the previous ping is closed. */
  wsPingSeconds: number;
  /**
   * Bytes a subscriber's socket may hold unsent (after the kernel took what it would) before it is
   * closed with 1013: one slow or stalled client costs at most this much memory.
   */
  wsMaxBufferedBytes: number;
  shutdownGraceSeconds: number;
  /**
   * Where providers reach this server: callbacks go to `${publicBaseUrl}/api/payments/<provider>/notify`.
   * Unset: http://localhost:<the port the server listens on>.
   */
  publicBaseUrl: string | undefined;
  /** Set when WECHATPAY_MCHID is set; otherwise WECHAT (and MIXED) orders use the sandbox provider. */
  wechat: WechatConfig | undefined;
  /** Set when ALIPAY_APP_ID is set; otherwise ALIPAY orders use the sandbox provider. */
  alipay: AlipayConfig | undefined;
  /** The sandbox payment service (`npm run sandbox:pay`), asked for its keys on first use. */
  sandboxPayUrl: string;
  /** A provider call taking longer than this fails (and is retried by reconciliation). */
  paymentTimeoutSeconds: number;
  /**
   * The sandbox provider stands in for unconfigured providers, and its callbacks are accepted, only while
   * this is on (PAYMENTS_SANDBOX; default on in development and test, off in production).
   */
  paymentsSandbox: boolean;
  orders: {
    /** Unpaid `createOrder` orders one user may hold at once (flash-sale orders not counted). */
    maxPendingPerUser: number;
    /** Units one order may take. */
    maxQuantity: number;
  };
  /** Express's `trust proxy` setting, as given (unset: no proxy trusted). */
  trustProxy: boolean | number | string | undefined;
  /** Origins browsers may call from (HTTP and WebSocket); empty: no cross-origin access. */
  corsOrigins: string[];
  /** Checked in every token when set. */
  jwtIssuer: string | undefined;
  jwtAudience: string | undefined;
  vip: {
    /** Daily reminders at this local time (HH:MM) in APP_TIMEZONE. */
    reminderTime: string;
    /** Members written per reminder batch (one transaction each). */
    reminderBatchSize: number;
    /** Lapsed memberships settled per transaction. */
    expiryBatchSize: number;
  };
  seckill: {
    /** The consumer group every instance's flash-sale consumer joins (one group: each entry is ordered once). */
    group: string;
    /** Entries read (and ordered in one transaction) per stream per read. */
    batch: number;
    /** How long a read blocks waiting for entries (a newly started sale ends the read at once: CLIENT UNBLOCK). */
    blockMs: number;
    /** An entry pending this long (its consumer died or failed) is taken over with XAUTOCLAIM. */
    claimIdleMs: number;
    /** An entry delivered more than this many times goes to `stream:seckill:{productId}:dead`. */
    maxDeliveries: number;
    /** Prepended to the flash-sale keys (`stream:seckill:{productId}`, …); empty: the names BFFs write to. */
    keyPrefix: string;
    /** How often each instance looks for sales started elsewhere, to consume their streams too. */
    discoverSeconds: number;
    /** Flash-sale orders' payments start once no new orders have come for this long (ms)… */
    paymentQuietMs: number;
    /** …or once their order is this old (ms), whichever is first. */
    paymentMaxDelayMs: number;
    /** Acknowledged entries beyond a sale stream's newest this many are trimmed (never an unacknowledged one). */
    streamKeep: number;
  };
  reconcile: {
    intervalMinutes: number;
    /** Only PENDING online orders older than this are checked: younger ones are still being paid. */
    thresholdMinutes: number;
    batchSize: number;
    concurrency: number;
    /** Unpaid at the provider and older than this: closed there, EXPIRED here. */
    closeAfterMinutes: number;
    /** A run that fails as a whole (provider unreachable) is retried this many times … */
    maxRetries: number;
    /** … this far apart. */
    retrySeconds: number;
  };
  /** refund-reconciliation: PENDING refunds asked about at their provider (a lost notification still ends them). */
  refunds: {
    reconcileIntervalMinutes: number;
    /** Refunds asked about per run, oldest first. */
    reconcileBatchSize: number;
    /** Provider calls at a time. */
    reconcileConcurrency: number;
  };
}

export interface WechatConfig {
  mchid: string;
  appid: string;
  serialNo: string;
  /** PEM text or a path. */
  privateKey: string;
  apiV3Key: string;
  publicKeyId: string | undefined;
  /** PEM text or a path. */
  publicKey: string | undefined;
  platformCerts: string[];
  baseUrl: string;
  tradeType: 'native' | 'h5';
}

export interface AlipayConfig {
  appId: string;
  privateKey: string;
  publicKey: string;
  gateway: string;
  /** When set, a notification or query answer for another seller is refused. */
  sellerId: string | undefined;
}

type Env = Record<string, string | undefined>;

export class ConfigError extends Error {
  constructor(readonly variable: string, problem: string) {
    super(`Invalid configuration: ${variable} ${problem}`);
    this.name = 'ConfigError';
  }
}

function str(env: Env, name: string, fallback: string): string {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  return raw;
}

function num(env: Env, name: string, fallback: number, opts: { min?: number; integer?: boolean } = {}): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new ConfigError(name, `must be a number, got "${raw}"`);
  if (opts.integer && !Number.isInteger(value)) throw new ConfigError(name, `must be an integer, got "${raw}"`);
  if (opts.min !== undefined && value < opts.min) throw new ConfigError(name, `must be at least ${opts.min}, got "${raw}"`);
  return value;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (/^(true|1|yes|on)$/i.test(raw)) return true;
  if (/^(false|0|no|off)$/i.test(raw)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

function url(env: Env, name: string, fallback: string | undefined, protocols: string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    // Shown on the console and in logs: DATABASE_URL and REDIS_URL carry passwords.
    throw new ConfigError(name, `must be a URL, got "${maskUrlPasswords(raw)}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(' or ')}, got "${parsed.protocol}"`);
  }
  return raw;
}

function timezone(env: Env, name: string, fallback: string): string {
  const tz = str(env, name, fallback);
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new ConfigError(name, `must be an IANA time zone, got "${tz}"`);
  }
  return tz;
}

function required(env: Env, name: string, because: string): string {
  const raw = env[name];
  if (raw === undefined || raw === '') throw new ConfigError(name, `is required ${because}`);
  return raw;
}

function wechatConfig(env: Env): WechatConfig | undefined {
  const mchid = env.WECHATPAY_MCHID;
  if (!mchid) return undefined;
  const because = 'when WECHATPAY_MCHID is set';
  const apiV3Key = required(env, 'WECHATPAY_APIV3_KEY', because);
  if (Buffer.byteLength(apiV3Key) !== 32) throw new ConfigError('WECHATPAY_APIV3_KEY', 'must be 32 bytes');
  const publicKeyId = env.WECHATPAY_PUBLIC_KEY_ID || undefined;
  const publicKey = env.WECHATPAY_PUBLIC_KEY || undefined;
  const platformCerts = (env.WECHATPAY_PLATFORM_CERTS ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  if (publicKeyId && !publicKeyId.startsWith('PUB_KEY_ID_')) throw new ConfigError('WECHATPAY_PUBLIC_KEY_ID', 'must start with PUB_KEY_ID_');
  if (!!publicKeyId !== !!publicKey) throw new ConfigError(publicKeyId ? 'WECHATPAY_PUBLIC_KEY' : 'WECHATPAY_PUBLIC_KEY_ID', 'is required with its pair');
  if (!publicKey && platformCerts.length === 0) {
    throw new ConfigError('WECHATPAY_PUBLIC_KEY', 'or WECHATPAY_PLATFORM_CERTS is required to verify WeChat Pay');
  }
  const tradeType = str(env, 'WECHATPAY_TRADE_TYPE', 'native');
  if (tradeType !== 'native' && tradeType !== 'h5') throw new ConfigError('WECHATPAY_TRADE_TYPE', `must be native or h5, got "${tradeType}"`);
  return {
    mchid,
    appid: required(env, 'WECHATPAY_APPID', because),
    serialNo: required(env, 'WECHATPAY_SERIAL_NO', because),
    privateKey: required(env, 'WECHATPAY_PRIVATE_KEY', because),
    apiV3Key,
    publicKeyId,
    publicKey,
    platformCerts,
    baseUrl: url(env, 'WECHATPAY_BASE_URL', 'https://api.mch.weixin.qq.com', ['https:', 'http:'])!,
    tradeType,
  };
}

function alipayConfig(env: Env): AlipayConfig | undefined {
  const appId = env.ALIPAY_APP_ID;
  if (!appId) return undefined;
  const because = 'when ALIPAY_APP_ID is set';
  return {
    appId,
    privateKey: required(env, 'ALIPAY_PRIVATE_KEY', because),
    publicKey: required(env, 'ALIPAY_PUBLIC_KEY', because),
    gateway: url(env, 'ALIPAY_GATEWAY', 'https://openapi.alipay.com/gateway.do', ['https:', 'http:'])!,
    sellerId: env.ALIPAY_SELLER_ID || undefined,
  };
}

function clockTime(env: Env, name: string, fallback: string): string {
  const value = str(env, name, fallback);
  const m = /^([01]?\d|2[0-3]):([0-5]\d)$/.exec(value);
  if (!m) throw new ConfigError(name, `must be a time of day HH:MM, got "${value}"`);
  return `${m[1].padStart(2, '0')}:${m[2]}`;
}

/** A subscriber cut off catches up from the outbox over the dedupe window: the outbox keeps at least that. */
function outboxRetention(env: Env): number {
  const hours = num(env, 'OUTBOX_RETENTION_HOURS', 24, { min: 0.01 });
  const window = num(env, 'EVENT_DEDUPE_WINDOW_SECONDS', 600, { min: 1 });
  if (hours * 3600 < window) {
    throw new ConfigError('OUTBOX_RETENTION_HOURS', `must cover EVENT_DEDUPE_WINDOW_SECONDS (${window} s), got "${env.OUTBOX_RETENTION_HOURS}"`);
  }
  return hours;
}

/** TRUST_PROXY as Express takes it: true/false, a hop count, or addresses and subnets (comma-separated). */
function trustProxy(env: Env): Config['trustProxy'] {
  const raw = env.TRUST_PROXY?.trim();
  if (!raw) return undefined;
  if (/^(true|false)$/i.test(raw)) return raw.toLowerCase() === 'true';
  if (/^\d+$/.test(raw)) return Number(raw);
  if (!/^[\w.:/, -]+$/.test(raw)) throw new ConfigError('TRUST_PROXY', `must be true, false, a hop count or addresses, got "${raw}"`);
  return raw;
}

function corsOrigins(env: Env): string[] {
  const list = (env.CORS_ORIGINS ?? '').split(',').map((o) => o.trim()).filter(Boolean);
  for (const origin of list) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.origin !== origin.replace(/\/+$/, '')) {
      throw new ConfigError('CORS_ORIGINS', `must list origins such as https://shop.example.com, got "${origin}"`);
    }
  }
  return list.map((o) => o.replace(/\/+$/, ''));
}

/** pino's levels: LOG_LEVEL must be one of them. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

function logLevel(env: Env, fallback: string): string {
  const level = str(env, 'LOG_LEVEL', fallback);
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got "${level}"`);
  return level;
}

function instanceName(env: Env): string {
  const name = str(env, 'INSTANCE_NAME', `${hostname()}-${process.pid}`);
  if (!/^[^\s]{1,200}$/.test(name)) throw new ConfigError('INSTANCE_NAME', `must be 1 to 200 characters without spaces, got "${name}"`);
  return name;
}

function seckillGroup(env: Env): string {
  const group = str(env, 'SECKILL_GROUP', 'g1');
  if (!/^[\w:.-]{1,100}$/.test(group)) throw new ConfigError('SECKILL_GROUP', `must be 1 to 100 letters, digits or _:.-, got "${group}"`);
  return group;
}

/**
 * Variables of the deadline engine's earlier paths, gone with them (docs/architecture.md, "Deadlines"):
 * every instance's timer at the armed time, and the backstop, replaced the six. A server given one
 * still starts, and says so once at start.
 */
const REMOVED: Record<string, string> = {
  DEADLINE_WATCH_MS: 'every instance keeps a timer at each kind\'s armed time, so no watch polls for overdue deadlines',
  DEADLINE_WATCH_GRACE_MS: 'there is no watch to wait for: every instance\'s timer settles at the armed time',
  DEADLINE_ARM_BACKSTOP_MS: 'every instance\'s timer settles at the armed time; the wake-up job and the sweep are the backstop',
  DEADLINE_SETTLE_ON_TIME: 'every instance settles at the armed time on its own timer (DEADLINE_TIMERS=false turns an instance\'s off)',
  DEADLINE_INLINE_WINDOW_SECONDS: 'a run no longer waits in-process for the next deadline: the timers fire at it',
  DEADLINE_STALE_SECONDS: 'an armed time is never left behind: every instance\'s timer follows it',
};

function removedVariables(env: Env): string[] {
  return Object.entries(REMOVED)
    .filter(([name]) => env[name] !== undefined)
    .map(([name, why]) => `${name} no longer exists: ${why}; remove it`);
}

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

/** The configuration's shape: what `loadConfig` (src/config.ts) returns, one field per setting. */

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

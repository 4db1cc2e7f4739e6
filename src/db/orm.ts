import 'reflect-metadata';
import { MikroORM, type Options } from '@mikro-orm/postgresql';
import { ReflectMetadataProvider } from '@mikro-orm/decorators/legacy';
import { Migrator } from '@mikro-orm/migrations';
import pg from 'pg';
import { entities } from '../entities/index.js';
import { migrationsList } from '../../migrations/index.js';
import type { Logger } from '../logger.js';
import { guardPool, poolSafety, type OutageLog } from './unavailable.js';

export type Orm = MikroORM;

/**
 * `outage`: told when connections break and when they are back (src/db/unavailable.ts). `poolSize`:
 * DB_POOL_SIZE (10 by default, the size this pool always had).
 */
export function ormOptions(databaseUrl: string, outage?: OutageLog, poolSize = 10): Options {
  return {
    clientUrl: databaseUrl,
    entities,
    metadataProvider: ReflectMetadataProvider,
    extensions: [Migrator],
    // No snapshot file: migrations are hand-written and listed, and the server must not write into its folder.
    migrations: { migrationsList, transactional: true, allOrNothing: true, silent: true, snapshot: false, snapshotOnMigrate: false },
    // Agenda's tables belong to Agenda: never let a generated diff drop them.
    schemaGenerator: { skipTables: ['agenda_jobs', 'agenda_logs'] },
    pool: { min: 0, max: poolSize },
    // Bounded connects, so a request made while PostgreSQL is unreachable fails instead of waiting.
    driverOptions: { ...poolSafety, ...(outage ? { onPoolCreated: (pool: pg.Pool) => guardPool(pool, outage) } : {}) },
    debug: false,
    allowGlobalContext: false,
  };
}

/** Creates the database named in the URL if it does not exist yet (a newcomer's first `npm start`). */
export async function ensureDatabase(databaseUrl: string, log?: Logger): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`DATABASE_URL names an unusable database "${name}"`);
  url.pathname = '/postgres';
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) {
      try {
        await client.query(`create database "${name}"`);
        log?.info({ database: name }, 'created database');
      } catch (err) {
        // Another instance created it first.
        if ((err as { code?: string }).code !== '42P04') throw err;
      }
    }
  } finally {
    await client.end();
  }
}

export async function initOrm(databaseUrl: string, outage?: OutageLog, poolSize?: number): Promise<Orm> {
  return MikroORM.init(ormOptions(databaseUrl, outage, poolSize));
}

/** Thrown at start-up with MIGRATE_ON_START=false when the database is behind this build's migrations. */
export class PendingMigrations extends Error {
  constructor(readonly pending: string[]) {
    super(
      `The database is behind this build: ${pending.length} migration(s) pending (${pending.join(', ')}). ` +
        'MIGRATE_ON_START is false: run `npm run migrate` (the release step), then start the server.',
    );
    this.name = 'PendingMigrations';
  }
}

/** The migrations this build lists that the database has not applied, oldest first. */
export async function pendingMigrations(orm: Orm): Promise<string[]> {
  return (await orm.migrator.getPending()).map((m) => m.name);
}

/** Applies pending migrations; several instances starting at once are serialised by an advisory lock. */
export async function migrate(orm: Orm, databaseUrl: string, log?: Logger): Promise<void> {
  // A session-level lock needs one connection for its whole life, not the pool's.
  const lock = new pg.Client({ connectionString: databaseUrl });
  await lock.connect();
  try {
    await lock.query('select pg_advisory_lock(727001)');
    const applied = await orm.migrator.up();
    if (applied.length > 0) log?.info({ migrations: applied.map((m) => m.name) }, 'applied migrations');
  } finally {
    await lock.end();
  }
}

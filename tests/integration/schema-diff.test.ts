import { ReferenceKind } from '@mikro-orm/core';
import { initOrm, migrate, type Orm } from '../../src/db/orm.js';
import { createTestDatabase } from '../support/harness.js';

/**
 * The migrations in migrations/ are the schema's applied history; the entities in src/entities are what
 * MikroORM believes the schema is (what a generated migration would be diffed against). This file proves
 * they describe the same schema: a fresh database is migrated, then MikroORM's schema generator is asked
 * what it would run to make that database match the entities. The answer must be nothing.
 *
 * When it fails: fix the ENTITY (types, lengths, nullability, defaults, index/constraint names, checks,
 * foreign keys), or, if the schema is what should change, write a NEW migration. Never edit an applied one.
 */

/**
 * Statements MikroORM emits although the entities and the migrations agree, because its comparator cannot
 * see both sides the same way (something no entity option can express). Each entry is one whole
 * statement, matched exactly, and must still be emitted (a stale entry fails the test too), so the list
 * cannot hide a real drift. Empty with MikroORM 7.2.1: every difference found so far was expressible.
 */
const COMPARATOR_LIMITATIONS: ReadonlyArray<{ statement: string; why: string }> = [];

/** Tables in the database that no entity maps, on purpose: MikroORM's own, and Agenda's (`schemaGenerator.skipTables`). */
const UNMAPPED_TABLES = ['mikro_orm_migrations', 'agenda_jobs', 'agenda_logs'];

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let orm: Orm;

beforeAll(async () => {
  db = await createTestDatabase('schema_diff');
  orm = await initOrm(db.url);
  await migrate(orm, db.url);
});
afterAll(async () => {
  await orm?.close(true);
  await db?.drop();
});

/** The full diff (`safe: false, dropTables: true`: dropped tables and columns count too), one statement per entry. */
async function diffStatements(): Promise<string[]> {
  const sql = await orm.schema.getUpdateSchemaSQL({ wrap: false, safe: false, dropTables: true });
  return sql
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

test('a freshly migrated database matches the entities: MikroORM finds nothing to change', async () => {
  const statements = await diffStatements();
  const unexplained = statements.filter((s) => !COMPARATOR_LIMITATIONS.some((l) => l.statement === s));
  const stale = COMPARATOR_LIMITATIONS.filter((l) => !statements.includes(l.statement));
  if (unexplained.length > 0 || stale.length > 0) {
    throw new Error(
      [
        ...(unexplained.length > 0
          ? ['The migrations and src/entities disagree. MikroORM would run, to make the migrated database match the entities:', ...unexplained.map((s) => `  ${s};`)]
          : []),
        ...(stale.length > 0 ? ['Listed in COMPARATOR_LIMITATIONS but no longer emitted (remove them):', ...stale.map((l) => `  ${l.statement}`)] : []),
      ].join('\n'),
    );
  }
  expect(unexplained).toEqual([]);
});

/**
 * A second opinion that does not go through MikroORM's comparator (nor the exceptions above): every
 * table and column an entity maps exists in the migrated database with the same nullability, and the
 * database has no table or column that no entity maps. A property added to an entity only, or a column
 * added by a migration only, fails here whatever the comparator makes of it.
 */
test('entity columns and migrated columns are the same sets, with the same nullability', async () => {
  const fromEntities: string[] = [];
  for (const meta of orm.getMetadata().getAll().values()) {
    if (meta.embeddable || meta.virtual || meta.view) continue;
    for (const prop of meta.props) {
      if (prop.persist === false || prop.formula) continue;
      if (prop.kind !== ReferenceKind.SCALAR && prop.kind !== ReferenceKind.MANY_TO_ONE && !(prop.kind === ReferenceKind.ONE_TO_ONE && prop.owner)) continue;
      for (const field of prop.fieldNames) fromEntities.push(`${meta.tableName}.${field} ${prop.nullable && !prop.primary ? 'null' : 'not null'}`);
    }
  }
  const rows = await orm.em.getConnection().execute<Array<{ table_name: string; column_name: string; is_nullable: string }>>(
    `select table_name, column_name, is_nullable from information_schema.columns
      where table_schema = current_schema() and table_name <> all(?::text[])`,
    [`{${UNMAPPED_TABLES.join(',')}}`],
  );
  const fromDatabase = rows.map((r) => `${r.table_name}.${r.column_name} ${r.is_nullable === 'YES' ? 'null' : 'not null'}`);
  expect(fromEntities.length).toBeGreaterThan(50);
  const onlyInEntities = fromEntities.filter((c) => !fromDatabase.includes(c)).sort();
  const onlyInDatabase = fromDatabase.filter((c) => !fromEntities.includes(c)).sort();
  expect({ onlyInEntities, onlyInDatabase }).toEqual({ onlyInEntities: [], onlyInDatabase: [] });
});

/**
 * The first test is only worth something if the comparison can fail: drift is made in the database
 * (as a migration that no entity follows would) and must show in the diff, then undone.
 */
test('the comparison sees drift: a column, an index and a check changed in the database only show in the diff', async () => {
  const conn = orm.em.getConnection();
  await conn.execute(`alter table "orders" add column "drift_probe" text null`);
  await conn.execute(`drop index "orders_user_id_idx"`);
  await conn.execute(`alter table "products" drop constraint "products_price_check"`);
  await conn.execute(`alter table "products" add constraint "products_price_check" check ("price" > 1)`);
  try {
    expect((await diffStatements()).sort()).toEqual(
      [
        'alter table "orders" drop column "drift_probe"',
        'create index "orders_user_id_idx" on "orders" ("user_id", "id")',
        'alter table "products" drop constraint "products_price_check"',
        'alter table "products" add constraint "products_price_check" check ("price" > 0)',
      ].sort(),
    );
  } finally {
    await conn.execute(`alter table "orders" drop column if exists "drift_probe"`);
    await conn.execute(`create index if not exists "orders_user_id_idx" on "orders" ("user_id", "id")`);
    await conn.execute(`alter table "products" drop constraint "products_price_check"`);
    await conn.execute(`alter table "products" add constraint "products_price_check" check ("price" > 0)`);
  }
  expect(await diffStatements()).toEqual([]);
});

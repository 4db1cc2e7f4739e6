import type { EntityClass, EntityManager, EntityProperty } from '@mikro-orm/postgresql';
import { sql, type RawBuilder } from 'kysely';
import { isoUtc } from './sql.js';

/** One column of an entity as its wire form (`Wire<T>` in src/events/types.ts) reads it. */
interface WireColumn {
  property: string;
  /** The column as the wire has it: bigints as decimal text, timestamps as `Date#toISOString` text. */
  value: (alias: string | undefined) => RawBuilder<unknown>;
}

const cache = new WeakMap<object, WireColumn[]>();

const isDate = (p: EntityProperty) => p.runtimeType === 'Date' || /^timestamp/.test(String(p.columnTypes?.[0] ?? ''));

/**
 * An entity's columns as its wire form has them, from its MikroORM metadata (the one description of
 * the table, CONVENTIONS.md 14): every property stored in one column, so a column added to the entity
 * reaches set-based statements without a second list to keep.
 */
function wireColumnsOf(em: EntityManager, entity: EntityClass<object>): WireColumn[] {
  let columns = cache.get(entity);
  if (!columns) {
    const platform = em.getPlatform();
    columns = em
      .getMetadata()
      .get(entity)
      .props.filter((p) => p.fieldNames?.length === 1 && p.persist !== false)
      .map((p) => {
        const column = p.fieldNames[0];
        const ref = (alias: string | undefined) => sql.ref(alias ? `${alias}.${column}` : column);
        const value = isDate(p) ? (alias: string | undefined) => isoUtc(ref(alias)) : platform.isBigIntProperty(p) ? (alias: string | undefined) => sql`${ref(alias)}::text` : ref;
        return { property: p.name, value };
      });
    cache.set(entity, columns);
  }
  return columns;
}

/** `col as "property", …` for a select list: rows shaped as the entity's wire form. */
export function wireSelect(em: EntityManager, entity: EntityClass<object>, alias?: string): RawBuilder<unknown> {
  return sql.join(wireColumnsOf(em, entity).map((c) => sql`${c.value(alias)} as ${sql.ref(c.property)}`));
}

/** `jsonb_build_object('property', col, …)`: the entity's wire form built in SQL (an event's payload). */
export function wireObject(em: EntityManager, entity: EntityClass<object>, alias?: string): RawBuilder<unknown> {
  return sql`jsonb_build_object(${sql.join(wireColumnsOf(em, entity).flatMap((c) => [sql.lit(c.property), c.value(alias)]))})`;
}

/** A column type as a record definition (`jsonb_to_recordset(…) as r(col type, …)`) takes it: serials are their integers. */
const recordType = (type: string) => ({ bigserial: 'bigint', serial: 'integer', smallserial: 'smallint' })[type] ?? type;

/**
 * `insert into <table> (<columns>) select … from jsonb_to_recordset(<rows>) as r(<column> <type>, …)`:
 * many rows of an entity in one bound JSON parameter (not a literal escaped in JS, not a parameter per
 * value), the table, columns and their types from the entity's metadata; only `properties` are written,
 * the others take their defaults. Meant as one part (a CTE) of a set-based statement.
 */
export function insertRows<T extends object, K extends keyof T & string>(
  em: EntityManager,
  entity: EntityClass<T>,
  properties: readonly K[],
  rows: ReadonlyArray<Pick<T, K>>,
): RawBuilder<unknown> {
  const meta = em.getMetadata().get(entity);
  const columns = properties.map((name) => {
    const p = meta.props.find((prop) => String(prop.name) === name);
    if (p?.fieldNames?.length !== 1) throw new Error(`${meta.className}.${name} is not one column`);
    return { name, column: p.fieldNames[0], type: recordType(String(p.columnTypes[0])) };
  });
  const json = rows.map((row) => {
    const out: Record<string, unknown> = {};
    for (const { name, column } of columns) {
      const value = row[name] as unknown;
      out[column] = value instanceof Date ? value.toISOString() : value;
    }
    return out;
  });
  const names = sql.join(columns.map((c) => sql.ref(c.column)));
  return sql`insert into ${sql.table(meta.tableName)} (${names})
    select ${names} from jsonb_to_recordset(${JSON.stringify(json)}::jsonb) as r(${sql.join(columns.map((c) => sql`${sql.ref(c.column)} ${sql.raw(c.type)}`))})`;
}

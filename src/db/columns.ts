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

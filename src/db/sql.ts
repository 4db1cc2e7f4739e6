import { sql, type RawBuilder } from 'kysely';

/**
 * MikroORM's `execute` expands an array parameter into a list of values, so arrays travel as one
 * PostgreSQL array literal instead (`= any(?::uuid[])`).
 */
export function pgArray(values: readonly (string | number)[]): string {
  return `{${values.map((v) => `"${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`;
}

/** A timestamp as `Date#toISOString` writes it (the wire's dates), or null. */
export const isoUtc = (column: RawBuilder<unknown>) => sql`to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

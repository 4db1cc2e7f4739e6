/**
 * MikroORM's `execute` expands an array parameter into a list of values, so arrays travel as one
 * PostgreSQL array literal instead (`= any(?::uuid[])`).
 */
export function pgArray(values: readonly (string | number)[]): string {
  return `{${values.map((v) => `"${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`;
}

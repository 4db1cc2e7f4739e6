import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { lexicographicSortSchema, printSchema } from 'graphql';
import { createSchema } from './schema.js';

/** The schema as SDL, sorted so the committed file changes only when the API does. */
export async function printedSchema(): Promise<string> {
  return `${printSchema(lexicographicSortSchema(await createSchema()))}\n`;
}

// `npm run schema:emit` rewrites src/schema/schema.graphql; a test fails when it drifts from the code.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const target = new URL('../../../src/schema/schema.graphql', import.meta.url);
  writeFileSync(target, await printedSchema());
  console.log(`wrote ${fileURLToPath(target)}`);
}

import { readFileSync } from 'node:fs';
import { buildSchema, Kind, parse, validate, type OperationDefinitionNode } from 'graphql';
import { EXAMPLE_OPERATIONS, playgroundHtml } from '../../src/http/playground.js';

/** The playground's first tab: operations that run against the schema as it is, the ones the README's tour names. */
test('the example operations validate against the schema and cover an auction, its countdown, an order and the jobs', () => {
  const schema = buildSchema(readFileSync(new URL('../../src/schema/schema.graphql', import.meta.url), 'utf8'));
  const document = parse(EXAMPLE_OPERATIONS);
  expect(validate(schema, document).map((e) => e.message)).toEqual([]);
  const operations = document.definitions.filter((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION);
  expect(operations.map((o) => `${o.operation} ${o.name?.value}`)).toEqual([
    'mutation CreateAuction',
    'subscription Countdown',
    'mutation PlaceBid',
    'mutation CreateProduct',
    'mutation CreateOrder',
    'query Jobs',
  ]);
});

test('the page carries them, escaped, for the first tab', () => {
  const html = playgroundHtml();
  const m = /<script>window\.__deadlineExamples = (".*?");<\/script>/s.exec(html);
  expect(m).not.toBeNull();
  expect(m![1]).not.toContain('<');
  expect(JSON.parse(m![1])).toBe(EXAMPLE_OPERATIONS);
  expect(html).toContain('opts.defaultTabs = [{ query: window.__deadlineExamples');
});

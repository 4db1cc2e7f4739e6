/**
 * npm run bench:hostile — how long the server takes to refuse the worst hostile documents, beside
 * `{ serverTime }`: the 32-level fragment bomb (with and without a token, and over graphql-ws), the
 * largest alias flood under the token limit and 5,000 aliases past it, deep nesting, a huge variable
 * list, and fields repeated under one key (at one level, nested, through fragments: refused before
 * graphql's validation, which compares them pairwise). Each document
 * is sent --requests (50) times one after another, each copy made unique by a comment so Apollo's
 * cache of validated documents never answers for it, as an attacker would send them. The server runs
 * in this process; talks only to 127.0.0.1.
 */
import { cpus, totalmem } from 'node:os';
import { Lexer, Source, TokenKind } from 'graphql';
import { createClient } from 'graphql-ws';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import { startApp } from '../src/app.js';
import { signToken, tokenKeys } from '../src/auth.js';
import { benchConfig, pct, stopAfter, withDatabase } from './support.js';

const arg = (name: string, fallback: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback;
const REQUESTS = Number(arg('requests', '50'));

stopAfter(10 * 60_000);

const times = (n: number, f: (i: number) => string, sep = ' ') => Array.from({ length: n }, (_, i) => f(i)).join(sep);

/** `levels` of fragments, each spreading two of the next: 2^levels leaves when walked at each spread. */
function fragmentBomb(levels: number): string {
  let doc = 'query Bomb { ...F0a }\n';
  for (let level = 0; level < levels; level++) {
    for (const name of level === 0 ? ['F0a'] : [`F${level}a`, `F${level}b`]) doc += `fragment ${name} on Query { ...F${level + 1}a ...F${level + 1}b }\n`;
  }
  return doc + `fragment F${levels}a on Query { serverTime }\nfragment F${levels}b on Query { serverTime }\n`;
}

interface Case {
  name: string;
  query: string;
  variables?: Record<string, unknown>;
  token?: boolean;
  over?: 'http' | 'ws';
}

const deep = (n: number) => `{ __schema { types { fields { type { ${'ofType { '.repeat(n)}name${' }'.repeat(n)} } } } } }`;
const CASES: Case[] = [
  { name: '{ serverTime }', query: '{ serverTime }' },
  { name: '{ serverTime }, with a token', query: '{ serverTime }', token: true },
  { name: 'fragment bomb, 32 levels', query: fragmentBomb(32) },
  { name: 'fragment bomb, 32 levels, with a token', query: fragmentBomb(32), token: true },
  { name: 'fragment bomb, 32 levels, graphql-ws', query: fragmentBomb(32), token: true, over: 'ws' },
  { name: '1,666 aliases of serverTime (4,998 tokens)', query: `{ ${times(1666, (i) => `a${i}: serverTime`)} }` },
  { name: '5,000 aliases of serverTime', query: `{ ${times(5000, (i) => `a${i}: serverTime`)} }` },
  { name: '5,000 aliases of me { id }', query: `{ ${times(5000, (i) => `a${i}: me { id }`)} }`, token: true },
  { name: 'nesting 1,600 deep (4,818 tokens)', query: deep(1600) },
  { name: 'nesting 8,000 deep', query: deep(8000) },
  {
    name: '300 variables, each used',
    query: `query(${times(300, (i) => `$v${i}: Boolean!`)}) { ${times(300, (i) => `a${i}: serverTime @include(if: $v${i})`)} }`,
    variables: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`v${i}`, true])),
  },
  { name: '1,200 variables, unused', query: `query(${times(1200, (i) => `$v${i}: Int`)}) { serverTime }` },
  // Cost 2,498: refused by the repeated-key cap (MAX_SAME_KEY); graphql's OverlappingFieldsCanBeMerged,
  // which compares the copies pairwise, spent ~100 ms on each before the limits ran ahead of it.
  { name: '1,249 repeated me { id }', query: `{ ${times(1249, () => 'me { id }')} }`, token: true },
  { name: '1,249 repeated me { id }, graphql-ws', query: `{ ${times(1249, () => 'me { id }')} }`, token: true, over: 'ws' },
  // 20 per level, 400 merged one level down (their children merge as the fields do).
  { name: '20 __schema x 20 types { name }', query: `{ ${times(20, () => `__schema { ${times(20, () => 'types { name }')} }`)} }` },
  { name: '99 fragments each holding me { id }', query: `{ ${times(99, (i) => `...R${i}`)} }\n${times(99, (i) => `fragment R${i} on Query { me { id } }`, '\n')}`, token: true },
];

function tokens(query: string): number {
  const lexer = new Lexer(new Source(query));
  let n = 0;
  while (lexer.advance().kind !== TokenKind.EOF) n++;
  return n;
}

console.log(`Hostile documents against one server: ${REQUESTS} requests each, one at a time, each a new document (a comment apart)`);
console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`);

await withDatabase(async (databaseUrl) => {
  const config = benchConfig(databaseUrl, { ENABLE_CRON: 'false' });
  const app = await startApp(config, { log: pino({ level: 'error' }) });
  const bearer = signToken(tokenKeys(config), 'hostile-user', 'user');
  await app.services.orm.em.fork().execute(`insert into users (id, role) values ('hostile-user', 'user') on conflict do nothing`);
  console.log(`limits: GRAPHQL_MAX_TOKENS ${config.graphqlMaxTokens}, GRAPHQL_MAX_DEPTH ${config.graphqlMaxDepth}, GRAPHQL_MAX_COST ${config.graphqlMaxCost}, GRAPHQL_MAX_FRAGMENTS ${config.graphqlMaxFragments}\n`);
  const ws = createClient({ url: app.url.replace('http', 'ws'), webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${bearer}` }, retryAttempts: 0 });

  /** One request: the first error's code (or `data`) and how long the answer took. */
  async function send(c: Case, query: string): Promise<{ ms: number; answer: string }> {
    const started = performance.now();
    if (c.over === 'ws') {
      const answer = await new Promise<string>((resolve) => {
        let first = '';
        ws.subscribe(
          { query, variables: c.variables },
          {
            next: (r) => void (first ||= r.errors ? String(r.errors[0]?.extensions?.code) : 'data'),
            error: (e) => resolve(String((e as Array<{ extensions?: { code?: string } }>)[0]?.extensions?.code ?? e)),
            complete: () => resolve(first),
          },
        );
      });
      return { ms: performance.now() - started, answer };
    }
    const res = await fetch(app.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(c.token ? { authorization: `Bearer ${bearer}` } : {}) },
      body: JSON.stringify({ query, variables: c.variables }),
    });
    const body = (await res.json()) as { errors?: Array<{ extensions?: { code?: string } }> };
    return { ms: performance.now() - started, answer: body.errors ? String(body.errors[0]?.extensions?.code) : 'data' };
  }

  // Unmeasured: every kind of document a few times first, so that no row pays for compiling the code
  // paths the rows before it did not take (the first rows measured 2-4x slower without this).
  for (const c of CASES) for (let i = 0; i < 5; i++) await send(c, `${c.query}\n# warm-up ${i}`);
  const rows: string[] = [];
  for (const c of CASES) {
    const ms: number[] = [];
    const answers = new Set<string>();
    // CPU time of this process (the server and its client) per request: less moved by other load than the wall clock.
    const cpu = process.cpuUsage();
    for (let i = 0; i < REQUESTS; i++) {
      const r = await send(c, `${c.query}\n# ${i}`);
      ms.push(r.ms);
      answers.add(r.answer);
    }
    const { user, system } = process.cpuUsage(cpu);
    ms.sort((a, b) => a - b);
    const row = `| ${c.name} | ${(Buffer.byteLength(c.query) / 1024).toFixed(1)} KB | ${tokens(c.query)} | ${[...answers].join(', ')} | ${pct(ms, 50).toFixed(2)} | ${ms[ms.length - 1].toFixed(2)} | ${((user + system) / 1000 / REQUESTS).toFixed(2)} |`;
    rows.push(row);
    console.log(row);
  }
  await ws.dispose();
  await app.stop();
  console.log('\n| document | size | tokens | answer | median ms | max ms | CPU ms per request |');
  console.log('|---|---|---|---|---|---|---|');
  for (const row of rows) console.log(row);
});
process.exit();

import { parse } from 'graphql';
import { limitErrors, type LimitStats } from '../../src/schema/limits.js';

interface Checked extends LimitStats {
  errors: string[];
  codes: unknown[];
}

function check(query: string, { depth = 5, cost = 100, fragments = 100, variables = {}, operationName = undefined as string | undefined } = {}): Checked {
  const stats: LimitStats = { visits: 0, cost: 0, depth: 0, stopped: false };
  const errors = limitErrors(parse(query), operationName, variables, { maxDepth: depth, maxCost: cost, maxFragments: fragments }, stats);
  return { ...stats, errors: errors.map((e) => e.message), codes: errors.map((e) => e.extensions.code) };
}
const STOPPED = ' (counting stopped once past it)';

test('depth counts nested selections, through fragments, and a fragment reused deeper counts there', () => {
  expect(check('{ auctions { edges { node { id } } } }', { depth: 4 }).errors).toEqual([]);
  const deep = check('{ auctions { edges { node { bids { id } } } } }', { depth: 4, cost: 10_000 });
  expect(deep.errors).toEqual([`Query is 5 levels deep; the limit is 4${STOPPED}`]);
  expect(deep.codes).toEqual(['QUERY_TOO_DEEP']);
  expect(check('{ auctions { ...E } } fragment E on Conn { edges { node { bids { id } } } }', { depth: 4 }).codes).toEqual(['QUERY_TOO_DEEP']);
  // N holds one level: costed once where it is first spread (its `node` at depth 3), spread again one
  // level deeper it reaches 4.
  const reused = '{ me { ...N } auctions { edges { ...N } } } fragment N on X { node { id } }';
  expect(check(reused, { depth: 4, cost: 10_000 }).errors).toEqual([]);
  expect(check(reused, { depth: 3, cost: 10_000 }).codes).toEqual(['QUERY_TOO_DEEP']);
});

test('cost multiplies by `first`, and by 20 for a connection without one (Auction.bids included)', () => {
  // auctions(1) + 10 x (edges 1 + node 1 + id 1) = 31
  expect(check('{ auctions(first: 10) { edges { node { id } } } }', { depth: 9, cost: 31 })).toMatchObject({ errors: [], cost: 31 });
  expect(check('{ auctions(first: 10) { edges { node { id } } } }', { depth: 9, cost: 30 }).errors).toEqual([`Query costs 31; the limit is 30${STOPPED}`]);
  // 1 + 10 x (edges + node + bids + 20 x (edges + node + id))
  expect(check('{ auctions(first: 10) { edges { node { bids { edges { node { id } } } } } } }', { depth: 9, cost: 10_000 }).cost).toBe(631);
  // 1 + 10 x (edges + node + bids + 5 x (edges + node + id))
  expect(check('{ auctions(first: 10) { edges { node { bids(first: 5) { edges { node { id } } } } } } }', { depth: 9, cost: 10_000 }).cost).toBe(181);
});

test("a page size given as a variable counts the request's value; absent, the variable's default, else the default page", () => {
  const query = 'query($n: Int) { auctions(first: $n) { edges { node { id } } } }';
  // 1 + n x (edges + node + id): a codegen query asking 10 costs what the literal 10 does.
  expect(check(query, { variables: { n: 10 }, cost: 31, depth: 9 })).toMatchObject({ errors: [], cost: 31 });
  expect(check(query, { variables: { n: 100 }, cost: 300, depth: 9 }).codes).toEqual(['QUERY_TOO_COSTLY']);
  expect(check(query, { variables: { n: 100 }, cost: 301, depth: 9 })).toMatchObject({ errors: [], cost: 301 });
  // Absent (or not an Int, which graphql refuses): the argument's default page, 20.
  expect(check(query, { variables: {}, cost: 10_000, depth: 9 }).cost).toBe(61);
  expect(check(query, { variables: { n: 'ten' }, cost: 10_000, depth: 9 }).cost).toBe(61);
  expect(check('query($n: Int = 5) { auctions(first: $n) { edges { node { id } } } }', { cost: 10_000, depth: 9 }).cost).toBe(16);
  // A value no Int holds cannot overflow the count: refused, with a finite cost.
  const huge = check(query, { variables: { n: 1e300 }, cost: 5000, depth: 9 });
  expect(huge.codes).toEqual(['QUERY_TOO_COSTLY']);
  expect(Number.isFinite(huge.cost)).toBe(true);
  // Inside a fragment, with the operation's variables.
  expect(check('query($n: Int!) { ...A } fragment A on Query { auctions(first: $n) { edges { node { id } } } }', { variables: { n: 2 }, cost: 10_000, depth: 9 }).cost).toBe(7);
  // No first: the default page of 20, not 1: 1 + 20 x 3 = 61.
  expect(check('{ auctions { edges { node { id } } } }', { depth: 9, cost: 60 }).errors).toEqual([`Query costs 61; the limit is 60${STOPPED}`]);
});

const aliases = (n: number, field: string) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(' ')} }`;

test('every extra response key for one field costs ALIAS_COST (10) more: an alias flood is refused', () => {
  // 2,000 x (me + id) + 1,999 x 10: one `me` is free of the surcharge, every other key pays it.
  expect(check(aliases(2000, 'me { id }'), { cost: 1e9 }).cost).toBe(23990);
  // __typename costs nothing once, but its aliases are extra keys like any other field's.
  expect(check(aliases(2000, '__typename'), { cost: 1e9 }).cost).toBe(19990);
  // Through fragments on the same level too.
  const split = '{ ...A ...B } fragment A on Query { x: me { id } } fragment B on Query { y: me { id } }';
  expect(check(split, { cost: 14 })).toMatchObject({ errors: [], cost: 14 });
  expect(check(split, { cost: 13 }).codes).toEqual(['QUERY_TOO_COSTLY']);
  // Inside a list every repetition is multiplied: 1 + 10 x (edges + node + 2 x (bids + 20 x (edges + node + id)) + 10) = 1,341.
  const twice = '{ auctions(first: 10) { edges { node { a: bids { edges { node { id } } } b: bids { edges { node { id } } } } } } }';
  expect(check(twice, { depth: 9, cost: 1341 })).toMatchObject({ errors: [], cost: 1341 });
  expect(check(twice, { depth: 9, cost: 1340 }).codes).toEqual(['QUERY_TOO_COSTLY']);
});

test('the walk stops as soon as the cost is over the limit', () => {
  const whole = check(aliases(2000, 'me { id }'), { cost: 1e9 });
  const refused = check(aliases(2000, 'me { id }'), { cost: 5000 });
  expect(refused.codes).toEqual(['QUERY_TOO_COSTLY']);
  expect(refused.stopped).toBe(true);
  expect(refused.errors[0]).toMatch(new RegExp(`^Query costs 50\\d\\d; the limit is 5000 \\(counting stopped once past it\\)$`));
  // Each key past the first costs 12: 417 of them pass 5,000. One look at the definition and at each
  // selection to find the aliased names (4,001), then each selection walked and merged into its
  // level's keys (8,000 for the whole), ~834 of them, not 4,000, when refused.
  expect(whole.visits).toBe(12001);
  expect(refused.visits).toBeLessThan(4001 + 1800);
});

test('renames, repeated keys and keys a fragment shares with its level are not charged: each still runs once', () => {
  // A rename of each field once costs what the plain query does: 1 + 10 x 3 = 31.
  expect(check('{ list: auctions(first: 10) { edges { n: node { auctionId: id } } } }', { depth: 9, cost: 31 }).errors).toEqual([]);
  // The same key twice is one execution (the fields merge): me + id, twice, no surcharge.
  expect(check('{ me { id } me { id } }', { cost: 4 }).errors).toEqual([]);
  // A few aliases, as a client fetching three things at once writes them: 3 x 2 + 2 x 10 = 26.
  expect(check('{ a: me { id } b: me { id } c: me { id } }', { cost: 26 }).errors).toEqual([]);
  // `id` asked for beside a fragment that asks for it too, somewhere else under an alias: no surcharge here.
  // me { id ...M } (1 + 3), x: me { key: id } (2), and x the second key of `me` (10).
  expect(check('{ me { id ...M } x: me { key: id } } fragment M on Me { id role }', { cost: 1000 }).cost).toBe(4 + 2 + 10);
  // One fragment spread twice at one level: its cost twice (as a field repeated), its keys once.
  expect(check('{ ...F ...F } fragment F on Query { a: me { id } b: me { id } }', { cost: 1000 }).cost).toBe(8 + 10);
});

test('a fragment hands its level one key per field plus a count of the others: two fragments holding the same aliases cost more than one', () => {
  // Exactly, { a, b } is one surcharge (10); A and B each count their second key: 20. An upper bound,
  // and documents rarely spread two fragments with the same aliases of one field on one level.
  const twice = '{ ...A ...B } fragment A on Query { a: me { id } b: me { id } } fragment B on Query { a: me { id } b: me { id } }';
  expect(check(twice, { cost: 1000 }).cost).toBe(8 + 20);
});

/** `levels` of fragments, each spreading `fan` fragments of the next level; the last level asks `leaf`. */
function fragmentBomb(levels: number, fan = 2, leaf = 'serverTime'): string {
  const names = (level: number) => Array.from({ length: level === 0 ? 1 : fan }, (_, j) => `F${level}_${j}`);
  let doc = `query Bomb { ...F0_0 }\n`;
  for (let level = 0; level < levels; level++) {
    for (const name of names(level)) doc += `fragment ${name} on Query { ${names(level + 1).map((n) => `...${n}`).join(' ')} }\n`;
  }
  for (const name of names(levels)) doc += `fragment ${name} on Query { ${leaf} }\n`;
  return doc;
}

test('a fragment bomb is costed in time linear in its size: each fragment once, and stopped at the limit', () => {
  // 32 levels: 2^32 serverTimes. Re-walking each fragment at each spread held the event loop > 10 s.
  const bomb = check(fragmentBomb(32), { cost: 5000 });
  expect(bomb.codes).toEqual(['QUERY_TOO_COSTLY']);
  expect(bomb.visits).toBeLessThan(500);
  // Under the limit, the cost is exact however many paths lead to the last fragments: 2^10 = 1,024.
  // The repeated keys count serverTime once per path too (graphql and execution merge it once): past
  // MAX_SAME_KEY, the document is refused as too complex, after its cost is counted.
  const small = check(fragmentBomb(10), { cost: 5000 });
  expect(small).toMatchObject({ codes: ['QUERY_TOO_COMPLEX'], cost: 1024, stopped: false });
  expect(small.visits).toBeLessThan(200);
  expect(check(fragmentBomb(4), { cost: 5000 })).toMatchObject({ errors: [], cost: 16 });
  // Aliases at the bottom count once per path, as the fields themselves do: 2^10 x (4 + 10), where
  // the exact key count would charge 2^10 x 4 + 10.
  expect(check(fragmentBomb(10, 2, 'a: me { id } b: me { id }'), { cost: 1e9 }).cost).toBe(1024 * 14);
});

test('a document holds at most GRAPHQL_MAX_FRAGMENTS fragment definitions', () => {
  // Each under its own key: 100 fragments asking the same one are refused for that (below).
  const fragments = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `...F${i}`).join(' ')} } ${Array.from({ length: n }, (_, i) => `fragment F${i} on Query { f${i}: serverTime }`).join(' ')}`;
  expect(check(fragments(100), { cost: 2000 }).errors).toEqual([]);
  const many = check(fragments(101), { cost: 2000 });
  expect(many.errors).toEqual(['Document has 101 fragments; the limit is 100']);
  expect(many.codes).toEqual(['QUERY_TOO_COMPLEX']);
  // Refused after one look at each definition.
  expect(many.visits).toBe(102);
});

test('every operation of a document is checked, and every fragment none spreads: graphql validates them all; a cycle or an unknown fragment (graphql reports them) ends the walk', () => {
  const two = `query Cheap { serverTime } query Costly { ${aliases(100, 'serverTime').slice(1, -1)} }`;
  expect(check(two, { operationName: 'Costly' }).codes).toEqual(['QUERY_TOO_COSTLY']);
  expect(check(two, { operationName: 'Cheap' }).codes).toEqual(['QUERY_TOO_COSTLY']);
  expect(check(two).codes).toEqual(['QUERY_TOO_COSTLY']); // no operation without a name: graphql says so, after validating both
  // The operation asked for is counted first: its numbers are those reported when all pass.
  expect(check('query A { serverTime } query B { me { id } }', { operationName: 'B' })).toMatchObject({ errors: [], cost: 2 });
  const repeats = (n: number) => Array.from({ length: n }, () => 'me { id }').join(' ');
  expect(check(`query A { serverTime } query B { ${repeats(21)} }`, { operationName: 'A', cost: 1000 }).codes).toEqual(['QUERY_TOO_COMPLEX']);
  expect(check(`query A { serverTime } fragment Unused on Query { ${repeats(21)} }`, { cost: 1000 }).codes).toEqual(['QUERY_TOO_COMPLEX']);
  expect(check(`query A { serverTime } fragment Unused on Query { ${repeats(20)} }`, { cost: 1000 }).errors).toEqual([]);
  expect(check('{ ...A } fragment A on Query { ...B serverTime } fragment B on Query { ...A ...Nowhere }')).toMatchObject({ errors: [], cost: 1 });
});

const repeated = (n: number, field: string) => Array.from({ length: n }, () => field).join(' ');
const TOO_MANY = (key: string) => `Query asks for "${key}" more than 20 times at one level (fragments included); the limit is 20`;

test('at most MAX_SAME_KEY (20) fields merge under one response key, as graphql merges them: inline fragments, fragments and children of same-key fields included', () => {
  expect(check(`{ ${repeated(20, 'me { id }')} }`, { cost: 1000 }).errors).toEqual([]);
  const flat = check(`{ ${repeated(21, 'me { id }')} }`, { cost: 1000 });
  expect(flat).toMatchObject({ errors: [TOO_MANY('me')], codes: ['QUERY_TOO_COMPLEX'] });
  expect(check(`{ ${repeated(1249, 'me { id }')} }`, { cost: 5000 }).codes).toEqual(['QUERY_TOO_COMPLEX']);
  // Leaves, __typename and renamed fields alike: a key, whatever field it names.
  expect(check(`{ ${repeated(21, '__typename')} }`, { cost: 1000 }).errors).toEqual([TOO_MANY('__typename')]);
  expect(check(`{ ${repeated(21, 'x: serverTime')} }`, { cost: 1000 }).errors).toEqual([TOO_MANY('x')]);
  // Different keys of one field are aliases (charged as such), not repeats.
  expect(check(aliases(21, 'serverTime'), { cost: 1000 }).errors).toEqual([]);
  // Inline fragments belong to their level.
  expect(check(`{ ${repeated(11, 'me { id }')} ... on Query { ${repeated(10, 'me { id }')} } }`, { cost: 1000 }).errors).toEqual([TOO_MANY('me')]);
  // One level down, the children of same-key fields merge: 5 x 5 ids under one `me`, 25 > 20; 4 x 5 pass.
  expect(check(`{ ${repeated(5, `me { ${repeated(5, 'id')} }`)} }`, { cost: 1000 }).errors).toEqual([TOO_MANY('id')]);
  expect(check(`{ ${repeated(4, `me { ${repeated(5, 'id')} }`)} }`, { cost: 1000 }).errors).toEqual([]);
  // Under different keys they do not merge.
  expect(check(`{ ${Array.from({ length: 5 }, (_, i) => `m${i}: me { ${repeated(5, 'id')} }`).join(' ')} }`, { cost: 1000 }).errors).toEqual([]);
});

test('repeated keys through fragments: each fragment holding the key counts, one spread many times at a level counts once', () => {
  const holders = (n: number, body: string) => `{ ${Array.from({ length: n }, (_, i) => `...F${i}`).join(' ')} } ${Array.from({ length: n }, (_, i) => `fragment F${i} on Query { ${body} }`).join(' ')}`;
  expect(check(holders(20, 'me { id }'), { cost: 1000 }).errors).toEqual([]);
  expect(check(holders(21, 'me { id }'), { cost: 1000 }).errors).toEqual([TOO_MANY('me')]);
  // Fragments and the level's own fields together; children merged across them.
  expect(check(`{ me { id } ${holders(20, 'me { id }').slice(1)}`, { cost: 1000 }).errors).toEqual([TOO_MANY('me')]);
  expect(check(`{ ${repeated(3, 'me { ...I }')} } fragment I on Me { ${repeated(7, 'id')} }`, { cost: 1000 }).errors).toEqual([TOO_MANY('id')]);
  // One fragment spread 1,000 times at one level merges once (graphql and execution take it once).
  const spreads = check(`{ ${repeated(1000, '...F')} } fragment F on Query { ${repeated(20, 'me { id }')} }`, { cost: 1e9 });
  expect(spreads.errors).toEqual([]);
  // A fragment's keys are merged once per level it is spread on, not walked again: 100 levels, each
  // its own \`id\` beside M's 19 (20 each: allowed), 21 at the level that adds one more.
  const shared = check(`{ ${Array.from({ length: 100 }, (_, i) => `a${i}: me { id ...M }`).join(' ')} } fragment M on Me { ${repeated(19, 'id')} }`, { cost: 1e9 });
  expect(shared.errors).toEqual([]);
  expect(check(`{ a: me { id ...M } b: me { id id ...M } } fragment M on Me { ${repeated(19, 'id')} }`, { cost: 1e9 }).errors).toEqual([TOO_MANY('id')]);
  expect(shared.visits).toBeLessThan(1500);
});

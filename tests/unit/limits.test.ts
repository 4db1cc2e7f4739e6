import { buildSchema, parse, validate } from 'graphql';
import { queryLimits } from '../../src/schema/limits.js';

const schema = buildSchema(`
  type Bid { id: ID }
  type Auction { id: ID, bids: [Bid] }
  type Edge { node: Auction }
  type Conn { edges: [Edge] }
  type Me { id: ID }
  type Query { auctions(first: Int): Conn, me: Me }
`);
const check = (q: string, depth = 5, cost = 100) => validate(schema, parse(q), [queryLimits(depth, cost)]).map((e) => e.message);

test('depth counts nested selections, through fragments', () => {
  expect(check('{ auctions { edges { node { id } } } }', 4)).toEqual([]);
  expect(check('{ auctions { edges { node { bids { id } } } } }', 4, 10_000)).toEqual(['Query is 5 levels deep; the limit is 4']);
  expect(check('{ auctions { ...E } } fragment E on Conn { edges { node { bids { id } } } }', 4)).toHaveLength(1);
});

test('cost multiplies by `first` and by 20 for bid lists', () => {
  // auctions(1) + 10 x (edges 1 + node 1 + id 1) = 31
  expect(check('{ auctions(first: 10) { edges { node { id } } } }', 9, 31)).toEqual([]);
  expect(check('{ auctions(first: 10) { edges { node { id } } } }', 9, 30)).toEqual(['Query costs 31; the limit is 30']);
  expect(check('{ auctions(first: 10) { edges { node { bids { id } } } } }', 9, 100)[0]).toMatch(/costs 231/); // 1 + 10 x (edges + node + bids + 20 x id)
});

test('a page size given as a variable counts as the largest page; a connection without first as its default', () => {
  // auctions(1) + 100 x (edges + node + id) = 301: the variable might be 100 whatever it is today.
  expect(check('query($n: Int) { auctions(first: $n) { edges { node { id } } } }', 9, 1000)).toEqual([]);
  expect(check('query($n: Int) { auctions(first: $n) { edges { node { id } } } }', 9, 300)).toEqual(['Query costs 301; the limit is 300']);
  // No first: the default page of 20, not 1: 1 + 20 x 3 = 61.
  expect(check('{ auctions { edges { node { id } } } }', 9, 60)).toEqual(['Query costs 61; the limit is 60']);
});

const aliases = (n: number, field: string) => `{ ${Array.from({ length: n }, (_, i) => `a${i}: ${field}`).join(' ')} }`;

test('every extra response key for one field costs ALIAS_COST (10) more: an alias flood is refused', () => {
  // 2,000 x (me + id) + 1,999 x 10: one `me` is free of the surcharge, every other key pays it.
  expect(check(aliases(2000, 'me { id }'), 5, 5000)).toEqual(['Query costs 23990; the limit is 5000']);
  // __typename costs nothing once, but its aliases are extra keys like any other field's.
  expect(check(aliases(2000, '__typename'), 5, 5000)).toEqual(['Query costs 19990; the limit is 5000']);
  // Through fragments on the same level too.
  expect(check('{ ...A ...B } fragment A on Query { x: me { id } } fragment B on Query { y: me { id } }', 5, 100)).toEqual([]);
  expect(check('{ ...A ...B } fragment A on Query { x: me { id } } fragment B on Query { y: me { id } }', 5, 13)).toEqual(['Query costs 14; the limit is 13']);
  // Inside a list every repetition is multiplied: 1 + 10 x (edges + node + 2 x (bids + 20 x id) + 10) = 541.
  expect(check('{ auctions(first: 10) { edges { node { a: bids { id } b: bids { id } } } } }', 9, 1000)).toEqual([]);
  expect(check('{ auctions(first: 10) { edges { node { a: bids { id } b: bids { id } } } } }', 9, 540)).toEqual(['Query costs 541; the limit is 540']);
});

test('renames and repeated keys are not charged: each still runs once', () => {
  // A rename of each field once costs what the plain query does: 1 + 10 x 3 = 31.
  expect(check('{ list: auctions(first: 10) { edges { n: node { auctionId: id } } } }', 9, 31)).toEqual([]);
  // The same key twice is one execution (the fields merge): me + id, twice, no surcharge.
  expect(check('{ me { id } me { id } }', 5, 4)).toEqual([]);
  // A few aliases, as a client fetching three things at once writes them: 3 x 2 + 2 x 10 = 26.
  expect(check('{ a: me { id } b: me { id } c: me { id } }', 5, 26)).toEqual([]);
});

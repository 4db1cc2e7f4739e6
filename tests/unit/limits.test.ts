import { buildSchema, parse, validate } from 'graphql';
import { queryLimits } from '../../src/schema/limits.js';

const schema = buildSchema(`
  type Bid { id: ID }
  type Auction { id: ID, bids: [Bid] }
  type Edge { node: Auction }
  type Conn { edges: [Edge] }
  type Query { auctions(first: Int): Conn }
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

import { parse } from 'graphql';
import { ValidDocuments } from '../../src/http/ws-documents.js';

describe('the subscription documents kept by their text', () => {
  const doc = parse('subscription { auctionEnded { eventId } }');

  test('keeps no more texts than its limit, dropping the least recently used first', () => {
    const kept = new ValidDocuments(3, 100);
    for (const t of ['a', 'b', 'c']) kept.add(t, doc);
    expect(kept.get('a')).toBe(doc); // now the most recently used
    for (let i = 0; i < 1_000; i++) kept.add(`made-up ${i}`, doc);
    expect(kept.size).toBe(3);
    expect(kept.get('a')).toBeUndefined();
    expect(kept.get('made-up 999')).toBe(doc);
  });

  test('never keeps a text over its length limit', () => {
    const kept = new ValidDocuments(3, 10);
    kept.add('x'.repeat(11), doc);
    expect(kept.size).toBe(0);
    expect(kept.get('x'.repeat(11))).toBeUndefined();
  });
});

import { AuctionExistence } from '../../src/resolvers/auction-existence.js';

/** The subscriptions' check that an auction exists: shared while it runs, remembered briefly, bounded. */
describe('AuctionExistence', () => {
  let now = 0;
  const existing = new Set(Array.from({ length: 1_000 }, (_, i) => String(i + 1)));
  function make(max = 10, ms = 1_000) {
    const asked: string[] = [];
    const existence = new AuctionExistence(
      async (id) => {
        asked.push(id);
        await new Promise((r) => setImmediate(r));
        if (!existing.has(id)) throw new Error(`Auction ${id} not found`);
      },
      { max, ms },
      () => now,
    );
    return { existence, asked };
  }

  test('checks of one id at once share one query; later ones use its answer until it is too old', async () => {
    const { existence, asked } = make();
    await Promise.all(Array.from({ length: 100 }, () => existence.assert('7')));
    expect(asked).toEqual(['7']);
    await existence.assert('7');
    expect(asked).toEqual(['7']);
    now += 1_001;
    await existence.assert('7');
    expect(asked).toEqual(['7', '7']);
  });

  test('an id not found is refused to every waiter and asked again next time', async () => {
    const { existence, asked } = make();
    const answers = await Promise.allSettled(Array.from({ length: 5 }, () => existence.assert('5000')));
    expect(answers.map((a) => a.status)).toEqual(Array(5).fill('rejected'));
    await expect(existence.assert('5000')).rejects.toThrow('not found');
    expect(asked).toEqual(['5000', '5000']);
    expect(existence.size).toBe(0);
  });

  test('no more ids are remembered than the limit, however many exist or are made up', async () => {
    const { existence } = make(10);
    for (let i = 1; i <= 1_000; i++) await existence.assert(String(i));
    for (let i = 0; i < 1_000; i++) await existence.assert(`9${i}00000`).catch(() => undefined);
    expect(existence.size).toBe(10);
  });
});

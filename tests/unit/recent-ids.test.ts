import { RecentIds } from '../../src/events/recent-ids.js';

describe('the event ids an instance delivered', () => {
  let now = 0;
  const ids = () => new RecentIds(600_000, () => now);

  test('a copy is dropped however many other events came in between (50,000 here; a count limit of 10,000 used to forget it)', () => {
    const seen = ids();
    expect(seen.firstTime('first')).toBe(true);
    for (let i = 0; i < 50_000; i++) expect(seen.firstTime(`e${i}`)).toBe(true);
    now += 5_000; // a sweep's republish, seconds later
    expect(seen.firstTime('first')).toBe(false);
    expect(seen.firstTime('e49999')).toBe(false);
  });

  test('kept for at least the window and forgotten after twice it', () => {
    now = 0;
    const seen = ids();
    seen.firstTime('a');
    now = 599_999;
    expect(seen.firstTime('a')).toBe(false);
    now = 900_000; // rotated once: still remembered
    expect(seen.firstTime('a')).toBe(false);
    now = 2_000_000;
    expect(seen.firstTime('a')).toBe(true);
  });

  test('the window stops while the subscriber is cut off, so the catch-up after a long outage finds what was heard before it', () => {
    now = 0;
    const seen = ids();
    seen.firstTime('heard-before-the-outage');
    now = 500_000;
    seen.pause();
    now = 500_000 + 3_600_000; // an hour without Redis
    expect(seen.firstTime('heard-before-the-outage')).toBe(false);
    seen.resume();
    expect(seen.firstTime('heard-before-the-outage')).toBe(false);
    now += 99_000;
    expect(seen.firstTime('heard-before-the-outage')).toBe(false);
  });

  test('held ids are bounded by count too: an outage that never ends keeps at most two generations', () => {
    now = 0;
    const seen = new RecentIds(600_000, () => now, 1_000);
    seen.firstTime('before');
    seen.pause(); // the window's clock stops; this instance's own events keep coming
    for (let i = 0; i < 10_000; i++) seen.firstTime(`local-${i}`);
    expect(seen.size).toBeLessThanOrEqual(2_000);
    // The last generation's ids are still dropped as copies; the oldest were let go.
    expect(seen.firstTime('local-9999')).toBe(false);
    expect(seen.firstTime('local-9000')).toBe(false);
    expect(seen.firstTime('before')).toBe(true);
  });
});

import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { EventBus } from '../../src/events/bus.js';
import { waitUntil } from '../support/harness.js';

/** The bus alone on the shared Redis (a prefix of its own), without the outbox behind it. */
const prefix = `test:${randomBytes(4).toString('hex')}`;
const pub = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const sub = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const bus = new EventBus(pub, sub, prefix, pino({ level: 'silent' }), async () => [], 60_000);

afterAll(async () => {
  bus.close();
  await Promise.all([pub.quit(), sub.quit()]);
});

test('a subscription whose consumer stops taking events is ended past its bound, with a code, instead of queueing for ever', async () => {
  const iterator = bus.iterate<{ eventId: string; n: number }>('SLOW', 5);
  const first = iterator.next(); // listening from here
  await waitUntil(() => bus.listenerCount('SLOW') === 1, 5_000, 'the listener');
  await bus.publish(Array.from({ length: 20 }, (_, n) => ({ channel: 'SLOW', payload: { eventId: randomUUID(), n } })));
  // The 20 arrive faster than the one pending `next` is resumed: the sixth finds 5 waiting.
  await expect(first).rejects.toMatchObject({ extensions: { code: 'SERVICE_UNAVAILABLE' } });
  await waitUntil(() => bus.listenerCount('SLOW') === 0, 5_000, 'the listener to be dropped');
});

test('a consumer that keeps up hears every event, in order, once', async () => {
  const iterator = bus.iterate<{ eventId: string; n: number }>('FAST', 5);
  const heard: number[] = [];
  const reading = (async () => {
    for await (const e of iterator) {
      heard.push(e.n);
      if (heard.length === 50) break;
    }
  })();
  await waitUntil(() => bus.listenerCount('FAST') === 1, 5_000, 'the listener');
  for (let n = 0; n < 50; n++) await bus.publish([{ channel: 'FAST', payload: { eventId: randomUUID(), n } }]);
  await reading;
  expect(heard).toEqual(Array.from({ length: 50 }, (_, n) => n));
});

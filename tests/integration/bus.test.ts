import { randomBytes, randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import type { MikroORM } from '@mikro-orm/postgresql';
import { EventBus } from '../../src/events/bus.js';
import { EventBatches } from '../../src/events/outbox.js';
import { OutboxRelay } from '../../src/events/relay.js';
import { waitUntil } from '../support/harness.js';

/** The bus alone on the shared Redis (a prefix of its own), without the outbox behind it. */
const prefix = `test:${randomBytes(4).toString('hex')}`;
const pub = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const sub = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const bus = new EventBus(pub, sub, prefix, pino({ level: 'silent' }), () => Promise.resolve([]), 60_000);

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
  await expect(first).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
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

test("an instance's own events reach its listeners at once, and the copies Redis brings back are dropped", async () => {
  const heard: Array<{ eventId: string; n: number }> = [];
  const stop = await bus.listen('OWN', (payload) => heard.push(payload as { eventId: string; n: number }));
  const [a, b, marker] = [randomUUID(), randomUUID(), randomUUID()];
  const events = [
    { channel: 'OWN', payload: { eventId: a, n: 1 } },
    // Built in SQL: only its id beside the text, in PostgreSQL's own spacing.
    { channel: 'OWN', payload: { eventId: b }, wire: `{"n": 2, "eventId": "${b}"}` },
  ];
  bus.deliverLocal(events);
  expect(heard).toEqual([{ eventId: a, n: 1 }, { eventId: b, n: 2 }]);

  // Redis delivers in order on one connection: once the marker is heard, the copies before it were dropped.
  await bus.publish([...events, { channel: 'OWN', payload: { eventId: marker, n: 3 } }]);
  await waitUntil(() => heard.length >= 3, 5_000, 'the marker');
  expect(heard.map((e) => e.n)).toEqual([1, 2, 3]);
  await stop();
});

test('with the Redis publisher down, a listener on the committing instance still hears the event at commit', async () => {
  const down = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { lazyConnect: true });
  const offline = new EventBus(down, sub, `${prefix}:offline`, pino({ level: 'silent' }), () => Promise.resolve([]), 60_000);
  const heard: string[] = [];
  await offline.listen('OWN', (payload) => heard.push(payload.eventId));
  const relay = new OutboxRelay(undefined as unknown as MikroORM, offline, pino({ level: 'silent' }), new EventBatches([]), 60);
  const id = randomUUID();
  await relay.publish([{ channel: 'OWN', payload: { eventId: id } }]);
  // The publish failed (left to the outbox sweep), the local listener heard it anyway.
  expect(heard).toEqual([id]);
  offline.close();
  down.disconnect();
});

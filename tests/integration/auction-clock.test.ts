import type { App } from '../../src/app.js';
import type { Clock } from '../../src/clock.js';
import { createAuction, createTestDatabase, gql, testConfig, token } from '../support/harness.js';
import { startApp } from '../../src/app.js';
import { pino } from 'pino';
import { Auction } from '../../src/entities/Auction.js';
import { auctionWire } from '../../src/events/types.js';
import type { PublishedEvent } from '../../src/events/bus.js';
import { EventBatches } from '../../src/events/outbox.js';
import { committedSince } from '../../src/events/relay.js';
import { auctionEnds } from '../../src/services/auctions.js';

/** Business rules read "now" from the injected clock: here the test moves time, nothing sleeps. */
class TestClock implements Clock {
  constructor(private t: number) {}
  now() {
    return new Date(this.t);
  }
  set(t: number) {
    this.t = t;
  }
}

const T = Date.parse('2031-03-01T12:00:00.000Z');
const clock = new TestClock(T);
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let app: App;
const seller = token('clock-seller');
const bidder = token('clock-bidder');

beforeAll(async () => {
  db = await createTestDatabase('clock');
  app = await startApp(testConfig(db.url, { ENABLE_CRON: 'false' }), { clock, log: pino({ level: 'warn' }) });
});
afterAll(async () => {
  await app?.stop();
  await db?.drop();
});

const status = async (id: string) =>
  (await app.services.orm.em.fork().execute('select status, end_time, ended_at from auctions where id = ?', [id]))[0];

test('never before its end time, a moved end honoured, ended once', async () => {
  const a = await createAuction(app, seller, new Date(T + 60_000).toISOString(), { softCloseSeconds: 30 });

  clock.set(T + 55_000); // 5 s before the end: inside the 30 s soft-close window
  const bid = await gql(app, `mutation { placeBid(input: { auctionId: "${a.id}", amount: 200 }) { endTime } }`, {}, bidder);
  expect(bid.data!.placeBid.endTime).toBe(new Date(T + 85_000).toISOString());

  clock.set(T + 60_000); // the old end
  expect((await app.deadlines.wake('auction-end')).settled).toBe(0);
  clock.set(T + 84_999);
  expect((await app.deadlines.wake('auction-end')).settled).toBe(0);
  expect((await status(a.id)).status).toBe('ACTIVE');

  clock.set(T + 85_000);
  expect((await app.deadlines.wake('auction-end')).settled).toBe(1);
  const row = await status(a.id);
  expect(row.status).toBe('ENDED');
  expect(new Date(row.ended_at).getTime()).toBe(T + 85_000);
  expect((await app.deadlines.wake('auction-end')).settled).toBe(0);

  const late = await gql(app, `mutation { placeBid(input: { auctionId: "${a.id}", amount: 300 }) { id } }`, {}, bidder);
  expect(late.errors?.[0].extensions?.code).toBe('CONFLICT');
});

test('a bid outside the soft-close window does not move the end; a bid at the end time is refused', async () => {
  clock.set(T);
  const a = await createAuction(app, seller, new Date(T + 60_000).toISOString(), { softCloseSeconds: 10 });
  clock.set(T + 40_000);
  const early = await gql(app, `mutation { placeBid(input: { auctionId: "${a.id}", amount: 100 }) { endTime } }`, {}, bidder);
  expect(early.data!.placeBid.endTime).toBe(new Date(T + 60_000).toISOString());
  clock.set(T + 60_000);
  const atEnd = await gql(app, `mutation { placeBid(input: { auctionId: "${a.id}", amount: 110 }) { endTime } }`, {}, token('other'));
  expect(atEnd.errors?.[0].extensions?.code).toBe('CONFLICT');
});

test('an end time not in the future (by the server clock) is BAD_USER_INPUT', async () => {
  clock.set(T);
  const res = await gql(
    app,
    `mutation { createAuction(input: { nftId: "n", title: "t", startingPrice: 1, minIncrement: 1, endTime: "${new Date(T).toISOString()}" }) { id } }`,
    {},
    seller,
  );
  expect(res.errors?.[0].extensions?.code).toBe('BAD_USER_INPUT');
});

test('the events of an end carry the auction as auctionWire writes it, with its winner and price, live and read back from the outbox', async () => {
  clock.set(T + 200_000);
  const won = await createAuction(app, seller, new Date(T + 260_000).toISOString());
  const unsold = await createAuction(app, seller, new Date(T + 260_000).toISOString());
  clock.set(T + 230_000);
  await gql(app, `mutation { placeBid(input: { auctionId: "${won.id}", amount: 250 }) { id } }`, {}, bidder);
  const channels = ['AUCTION_ENDED', `AUCTION_UPDATED:${won.id}`, `AUCTION_UPDATED:${unsold.id}`];
  const live: PublishedEvent[] = [];
  const stops = await Promise.all(channels.map((channel) => app.services.bus.listen(channel, (payload) => live.push({ channel, payload }))));
  const since = new Date();
  clock.set(T + 260_000);
  await app.deadlines.wake('auction-end'); // these two, and what earlier tests left ACTIVE
  await Promise.all(stops.map((stop) => stop()));
  // What a subscriber cut off meanwhile reads (and the sweep republishes): the same events, rebuilt.
  const readBack = await committedSince(app.services.orm, new EventBatches([auctionEnds]))(channels, since);

  const em = app.services.orm.em.fork();
  for (const events of [live, readBack]) {
    for (const [id, winnerId, finalPrice] of [[won.id, 'clock-bidder', 250], [unsold.id, null, null]] as const) {
      const auction = auctionWire(await em.findOneOrFail(Auction, { id }));
      expect(auction).toMatchObject({ status: 'ENDED', winnerId, endedAt: new Date(T + 260_000).toISOString() });
      const ended = events.filter((e) => e.channel === 'AUCTION_ENDED' && (e.payload.auction as { id: string }).id === id);
      const updated = events.filter((e) => e.channel === `AUCTION_UPDATED:${id}`);
      expect(ended.map((e) => e.payload)).toEqual([{ eventId: expect.any(String), auction, winnerId, finalPrice, endedAt: auction.endedAt }]);
      expect(updated.map((e) => e.payload)).toEqual([{ eventId: expect.any(String), auction }]);
    }
  }
  // Other auctions' ends (earlier tests', a wake-up of the scheduler's) may fall on either side of `since`.
  const ours = (e: PublishedEvent) => [won.id, unsold.id].includes((e.payload.auction as { id: string }).id);
  const ids = (events: PublishedEvent[]) => events.filter(ours).map((e) => `${e.channel} ${e.payload.eventId}`).sort();
  expect(ids(readBack)).toHaveLength(4);
  expect(ids(readBack)).toEqual(ids(live));
  // A subscriber of one auction catching up reads the batches holding that auction, and only its events.
  const oneAuction = await committedSince(app.services.orm, new EventBatches([auctionEnds]))([`AUCTION_UPDATED:${won.id}`], since);
  expect(oneAuction.map((e) => [e.channel, e.payload.eventId])).toEqual(
    live.filter((e) => e.channel === `AUCTION_UPDATED:${won.id}`).map((e) => [e.channel, e.payload.eventId]),
  );
  // One outbox row holds the batch (with the events' ids), marked published with its events.
  const holders = await em.execute<Array<{ id: string; published: boolean; ended: string }>>(
    `select o.id, o.published_at is not null as published, e ->> 1 as ended
       from outbox_events o cross join jsonb_array_elements(o.payload -> 'entries') e
      where o.topic = '@auction-ends' and e ->> 0 in (?, ?)`,
    [won.id, unsold.id],
  );
  expect(holders).toHaveLength(2);
  expect(new Set(holders.map((h) => h.id)).size).toBe(1);
  expect(holders.every((h) => h.published)).toBe(true);
  expect(holders.map((h) => h.ended).sort()).toEqual(live.filter((e) => ours(e) && e.channel === 'AUCTION_ENDED').map((e) => e.payload.eventId).sort());
});

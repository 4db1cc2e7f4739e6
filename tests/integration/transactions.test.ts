import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import type { App } from '../../src/app.js';
import { createTestDatabase, start, subscribed, testConfig, token, wsClient } from '../support/harness.js';
import { sleep } from '../support/wait.js';

let db: Awaited<ReturnType<typeof createTestDatabase>>;
let app: App;

beforeAll(async () => {
  db = await createTestDatabase('transactions');
  app = await start(testConfig(db.url, { ENABLE_CRON: 'false' }));
});
afterAll(async () => {
  await app?.stop();
  await db?.drop();
});

const ended = (id: string) => ({
  auction: {
    id, sellerId: 's', nftId: 'n', title: 't', startingPrice: 1, minIncrement: 1, endTime: new Date().toISOString(), status: 'ENDED' as const,
    highestBid: null, highestBidderId: null, winnerId: null, softCloseSeconds: 0, endedAt: new Date().toISOString(), createdAt: new Date().toISOString(),
  },
  winnerId: null,
  finalPrice: null,
  endedAt: new Date().toISOString(),
});

test('a transaction whose statement failed is refused even when its work caught the error: nothing committed, no event, no after-commit task', async () => {
  const client = wsClient(app, token('tx-listener'));
  const sub = await subscribed(app, client, `subscription { auctionEnded { auction { id } } }`, {}, 'AUCTION_ENDED');
  const nftId = `nft-${randomUUID()}`;
  let taskRan = false;
  await expect(
    app.services.tx.run(async (uow) => {
      await sql`insert into users (id, role) values ('tx-seller', 'user') on conflict do nothing`.execute(uow.em.getKysely());
      await sql`insert into auctions (seller_id, nft_id, title, starting_price, min_increment, end_time, soft_close_seconds)
        values ('tx-seller', ${nftId}, 'Lot', 1, 1, now() + interval '1 hour', 0)`.execute(uow.em.getKysely());
      await uow.events.add('AUCTION_ENDED', ended('tx-1'));
      uow.afterCommit(() => {
        taskRan = true;
        return Promise.resolve();
      });
      try {
        await sql`select 1 / 0`.execute(uow.em.getKysely());
      } catch {
        // What a careless service might do: swallow the error and carry on.
      }
      return 'done';
    }),
  ).rejects.toThrow(/aborted/);

  const em = app.services.orm.em.fork();
  const [{ n }] = await em.execute<Array<{ n: number }>>(`select count(*)::int as n from auctions where nft_id = ?`, [nftId]);
  expect(n).toBe(0);
  const [{ events }] = await em.execute<Array<{ events: number }>>(`select count(*)::int as events from outbox_events where payload->'auction'->>'id' = 'tx-1'`);
  expect(events).toBe(0);
  // What was never committed is never announced: a published event would arrive within milliseconds.
  await sleep(500);
  expect(sub.events).toHaveLength(0);
  expect(taskRan).toBe(false);

  // A transaction that fails nothing commits and publishes as before.
  await app.services.tx.run((uow) => uow.events.add('AUCTION_ENDED', ended('tx-2')));
  await sub.waitFor((s) => s.events.length === 1, 3_000, 'the committed event');
  expect(sub.events[0].auctionEnded).toEqual({ auction: { id: 'tx-2' } });
  sub.dispose();
  await client.dispose();
});

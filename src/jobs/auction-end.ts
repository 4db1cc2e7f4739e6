import type { EntityManager } from '@mikro-orm/postgresql';
import type { UnitOfWork } from '../db/transactions.js';
import { AUCTION_END } from '../services/auctions.js';
import { toSnapshot, type AuctionRow } from '../services/auction-rows.js';
import type { DeadlineKind, Settled } from './deadlines.js';
import { pgArray } from '../db/sql.js';

/**
 * Job `deadline:auction-end`: ends every ACTIVE auction whose end_time has come, at most `limit`
 * per transaction, each once (`status = 'ACTIVE'` in the update; SKIP LOCKED leaves an auction a bid
 * is holding to the next round, which then sees its moved end_time).
 */
export function auctionEndKind(batchSize: number): DeadlineKind {
  return {
    name: AUCTION_END,
    label: 'auction end',
    batchSize,

    async nextDeadline(em: EntityManager, skip: readonly string[]): Promise<Date | null> {
      const [row] = await em.execute<Array<{ at: string | null }>>(
        `select min(end_time) as at from auctions where status = 'ACTIVE' and id <> all(?::bigint[])`,
        [pgArray(skip)],
      );
      return row?.at ? new Date(row.at) : null;
    },

    async countPending(em: EntityManager): Promise<number> {
      const [row] = await em.execute<Array<{ n: string }>>(`select count(*) as n from auctions where status = 'ACTIVE'`);
      return Number(row.n);
    },

    async settleDue(uow: UnitOfWork, limit: number, skip: readonly string[]): Promise<Settled> {
      const rows = await uow.em.execute<AuctionRow[]>(
        `with due as (
           select id from auctions
            where status = 'ACTIVE' and end_time <= ? and id <> all(?::bigint[])
            order by end_time
            limit ?
            for update skip locked)
         update auctions a set status = 'ENDED', winner_id = a.highest_bidder_id, ended_at = ?
           from due where a.id = due.id and a.status = 'ACTIVE'
         returning a.*`,
        [uow.now, pgArray(skip), limit, uow.now],
      );
      const ended = rows.map(toSnapshot);
      await uow.events.addMany(
        ended.flatMap((auction) => [
          {
            topic: 'AUCTION_ENDED' as const,
            payload: {
              auction,
              winnerId: auction.winnerId,
              finalPrice: auction.winnerId ? auction.highestBid : null,
              endedAt: auction.endedAt!,
            },
          },
          { topic: 'AUCTION_UPDATED' as const, payload: { auction }, key: auction.id },
        ]),
      );
      // Ending an auction has no precondition that can fail: nothing is ever left behind.
      return { settled: ended.map((a) => a.id), failed: [] };
    },
  };
}

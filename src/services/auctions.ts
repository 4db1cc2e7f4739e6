import { LockMode, type FilterObject } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { rowsAs } from '../db/rows.js';
import { pgArray } from '../db/sql.js';
import type { UnitOfWork } from '../db/transactions.js';
import { Auction, AUCTION_TRANSITIONS, type AuctionStatus } from '../entities/Auction.js';
import { Bid } from '../entities/Bid.js';
import { badInput, conflict, forbidden, notFound } from '../errors.js';
import { auctionWire } from '../events/types.js';
import type { ArmDeadline, SettleOutcome } from './deadline-handle.js';
import { parseId } from './ids.js';
import { keysetPage, type Page } from './pagination.js';
import type { Identity } from './users.js';

export interface CreateAuctionInput {
  nftId: string;
  title: string;
  startingPrice: number;
  minIncrement: number;
  endTime: Date;
  softCloseSeconds: number;
}

function assertTransition(from: AuctionStatus, to: AuctionStatus, id: string): void {
  if (!AUCTION_TRANSITIONS[from].includes(to)) throw conflict(`Auction ${id} is ${from}, not ACTIVE`);
}

const checkAuctionId = (id: string) => parseId(id, 'an auction', 'auctionId');

/** Auctions whose end is still to come: ACTIVE. The end is their deadline (`auctions_status_end_time_idx`). */
export const pendingAuctions = (skip: readonly string[] = []): FilterObject<Auction> =>
  skip.length > 0 ? { status: 'ACTIVE', id: { $nin: [...skip] } } : { status: 'ACTIVE' };

/** The one definition of "due to end": ACTIVE and its `endTime` has come. */
export const dueAuctions = (now: Date, skip: readonly string[] = []): FilterObject<Auction> => ({
  ...pendingAuctions(skip),
  endTime: { $lte: now },
});

/**
 * The due auctions one `endDue` batch takes, earliest first, locked; SKIP LOCKED leaves an auction a
 * bid is holding to the next round, which then sees its moved end. Exported for the benchmarks' EXPLAIN.
 */
export function dueAuctionsQuery(em: EntityManager, now: Date, limit: number, skip: readonly string[] = []) {
  return em
    .createQueryBuilder(Auction)
    .select('id')
    .where(dueAuctions(now, skip))
    .orderBy({ endTime: 'asc' })
    .limit(limit)
    .setLockMode(LockMode.PESSIMISTIC_PARTIAL_WRITE);
}

/** Auctions: creation, bids with soft close, cancellation, and ending those whose end has come. */
export class AuctionService {
  constructor(private readonly armEnd: ArmDeadline) {}

  async create(uow: UnitOfWork, user: Identity, input: CreateAuctionInput): Promise<Auction> {
    if (!(input.endTime instanceof Date) || Number.isNaN(input.endTime.getTime())) throw badInput('endTime is not a date', 'endTime');
    if (input.endTime.getTime() <= uow.now.getTime()) throw badInput('endTime must be in the future', 'endTime');
    const auction = uow.em.create(Auction, {
      sellerId: user.id,
      nftId: input.nftId,
      title: input.title,
      startingPrice: input.startingPrice,
      minIncrement: input.minIncrement,
      endTime: input.endTime,
      softCloseSeconds: input.softCloseSeconds,
      status: 'ACTIVE',
      createdAt: uow.now,
    });
    await uow.em.flush();
    await uow.events.add('AUCTION_UPDATED', { auction: auctionWire(auction) }, auction.id);
    uow.afterCommit(() => this.armEnd(input.endTime));
    return auction;
  }

  async placeBid(uow: UnitOfWork, user: Identity, auctionId: string, amount: number): Promise<Auction> {
    const auction = await this.lock(uow.em, checkAuctionId(auctionId));
    if (auction.sellerId === user.id) throw forbidden('Sellers cannot bid on their own auction');
    assertTransition(auction.status, 'ENDED', auctionId);
    const now = uow.now.getTime();
    const endTime = auction.endTime.getTime();
    if (now >= endTime) throw conflict(`Auction ${auctionId} has reached its end time`);
    const minimum = auction.highestBid === null ? auction.startingPrice : auction.highestBid + auction.minIncrement;
    if (amount < minimum) throw conflict(`Bid too low: at least ${minimum} is needed`);
    // Soft close: a bid in the last softCloseSeconds moves the end to now + softCloseSeconds.
    const softCloseMs = auction.softCloseSeconds * 1000;
    if (softCloseMs > 0 && endTime - now < softCloseMs) auction.endTime = new Date(now + softCloseMs);
    uow.em.create(Bid, { auctionId: auction.id, bidderId: user.id, amount, createdAt: uow.now });
    auction.highestBid = amount;
    auction.highestBidderId = user.id;
    // The row is locked and ACTIVE (checked above): this update cannot race an end or a cancel.
    await uow.em.flush();
    await uow.events.add('AUCTION_UPDATED', { auction: auctionWire(auction) }, auction.id);
    return auction;
  }

  async cancel(uow: UnitOfWork, user: Identity, auctionId: string): Promise<Auction> {
    const auction = await this.lock(uow.em, checkAuctionId(auctionId));
    if (auction.sellerId !== user.id && user.role !== 'admin') throw forbidden('Only the seller or an admin can cancel an auction');
    assertTransition(auction.status, 'CANCELLED', auctionId);
    auction.status = 'CANCELLED';
    await uow.em.flush();
    await uow.events.add('AUCTION_UPDATED', { auction: auctionWire(auction) }, auction.id);
    return auction;
  }

  /**
   * The end deadline: at most `limit` ACTIVE auctions whose end has come become ENDED with their
   * winner, each once (`status = 'ACTIVE'` in the update). Set-based: 1,000 ends per transaction
   * (AUCTION_END_BATCH_SIZE) are one select and one update, which is what lets 10,000 auctions ending
   * in one second all end within ~200 ms of their end (docs/benchmarks.md).
   */
  async endDue(uow: UnitOfWork, limit: number, skip: readonly string[]): Promise<SettleOutcome> {
    const due = await dueAuctionsQuery(uow.em, uow.now, limit, skip).execute<Array<{ id: string }>>('all');
    if (due.length === 0) return { settled: [], failed: [] };
    const rows = await uow.em.execute<Array<Record<string, unknown>>>(
      `update auctions set status = 'ENDED', winner_id = highest_bidder_id, ended_at = ?
        where id = any(?::bigint[]) and status = 'ACTIVE'
        returning *`,
      [uow.now, pgArray(due.map((d) => d.id))],
    );
    const ended = rowsAs(uow.em, Auction, rows);
    await uow.events.addMany(
      ended.flatMap((a) => {
        const auction = auctionWire(a);
        return [
          {
            topic: 'AUCTION_ENDED' as const,
            payload: { auction, winnerId: a.winnerId, finalPrice: a.winnerId ? a.highestBid : null, endedAt: auction.endedAt! },
          },
          { topic: 'AUCTION_UPDATED' as const, payload: { auction }, key: a.id },
        ];
      }),
    );
    // Ending an auction has no precondition that can fail: nothing is ever left behind.
    return { settled: ended.map((a) => a.id), failed: [], dueAt: ended.map((a) => a.endTime) };
  }

  /** The earliest end still to come (failed ones aside), for the wake-up. */
  async nextEnd(em: EntityManager, skip: readonly string[]): Promise<Date | null> {
    const first = await em.findOne(Auction, pendingAuctions(skip), { orderBy: { endTime: 'asc' }, fields: ['endTime'] });
    return first?.endTime ?? null;
  }

  countActive(em: EntityManager): Promise<number> {
    return em.count(Auction, pendingAuctions());
  }

  async get(em: EntityManager, auctionId: string): Promise<Auction> {
    const auction = await em.findOne(Auction, { id: checkAuctionId(auctionId) });
    if (!auction) throw notFound('Auction', auctionId);
    return auction;
  }

  /** Newest first, `first` at a time, after an opaque cursor. */
  list(em: EntityManager, filter: { status?: AuctionStatus | null }, first: number, after?: string | null): Promise<Page<Auction>> {
    return keysetPage(em, Auction, filter.status ? { status: filter.status } : {}, first, after);
  }

  /** Bids of many auctions in one query (the `Auction.bids` field), highest first. */
  async bidsOf(em: EntityManager, auctionIds: readonly string[]): Promise<Map<string, Bid[]>> {
    const bids = await em.find(Bid, { auctionId: { $in: [...auctionIds] } }, { orderBy: [{ amount: 'desc' }, { id: 'asc' }] });
    const byAuction = new Map<string, Bid[]>(auctionIds.map((id) => [id, []]));
    for (const bid of bids) byAuction.get(bid.auctionId)?.push(bid);
    return byAuction;
  }

  private async lock(em: EntityManager, id: string): Promise<Auction> {
    const auction = await em.findOne(Auction, { id }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!auction) throw notFound('Auction', id);
    return auction;
  }
}

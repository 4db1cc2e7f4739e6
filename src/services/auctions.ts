import { LockMode, type FilterObject } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { sql } from 'kysely';
import { isoUtc, pgArray } from '../db/sql.js';
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
   * winner, each once (`status = 'ACTIVE'` in the update). One statement per batch (at most
   * AUCTION_END_BATCH_SIZE): it takes the due auctions, earliest first, SKIP LOCKED (an auction a bid
   * is holding is left to the next round, which then sees its moved end), ends them and writes their AUCTION_ENDED and AUCTION_UPDATED outbox rows, whose payloads PostgreSQL
   * builds as `auctionWire` does and hands back as JSON text for Redis. Reading the rows into JS,
   * building the payloads and sending them back as one 1 MB parameter was 32 ms of the ~45 ms from the
   * end of 1,000 auctions to their commit (docs/benchmarks.md, "Same-instant ends").
   */
  async endDue(uow: UnitOfWork, limit: number, skip: readonly string[]): Promise<SettleOutcome> {
    const now = uow.now.toISOString();
    const { rows } = await sql<{ event_id: string | null; topic: string | null; wire: string | null; id: string | null; end_time: Date | null }>`
      with due as (
        select id from auctions
         where status = 'ACTIVE' and end_time <= ${now}::timestamptz
               ${skip.length > 0 ? sql`and id <> all(${pgArray(skip)}::bigint[])` : sql``}
         order by end_time
         limit ${limit}
         for update skip locked),
      ended as (
        update auctions set status = 'ENDED', winner_id = highest_bidder_id, ended_at = ${now}::timestamptz
         where id = any(array(select id from due)) and status = 'ACTIVE'
        returning *),
      wired as materialized (
        select id, end_time, winner_id, highest_bid, gen_random_uuid() as ended_event, gen_random_uuid() as updated_event,
               jsonb_build_object(
                 'id', id::text, 'sellerId', seller_id, 'nftId', nft_id, 'title', title, 'startingPrice', starting_price,
                 'minIncrement', min_increment, 'endTime', ${isoUtc(sql.ref('end_time'))}, 'status', status,
                 'highestBid', highest_bid, 'highestBidderId', highest_bidder_id, 'winnerId', winner_id,
                 'softCloseSeconds', soft_close_seconds, 'endedAt', ${isoUtc(sql.ref('ended_at'))},
                 'createdAt', ${isoUtc(sql.ref('created_at'))}) as auction
          from ended),
      published as (
        insert into outbox_events (id, topic, payload)
        select ended_event, 'AUCTION_ENDED',
               jsonb_build_object('eventId', ended_event, 'auction', auction, 'winnerId', winner_id,
                 'finalPrice', case when winner_id is null then null else highest_bid end, 'endedAt', auction -> 'endedAt')
          from wired
        union all
        select updated_event, 'AUCTION_UPDATED:' || id, jsonb_build_object('eventId', updated_event, 'auction', auction) -- channelOf('AUCTION_UPDATED', id)
          from wired
        returning id, topic, payload)
      select id::text as event_id, topic, payload::text as wire, null as id, null::timestamptz as end_time from published
      union all
      select null, null, null, id::text, end_time from wired`.execute(uow.em.getKysely());
    const settled: string[] = [];
    const dueAt: Date[] = [];
    for (const row of rows) {
      if (row.event_id !== null && row.topic !== null && row.wire !== null) {
        // Already in the outbox: the transaction's events, published after commit as they are.
        uow.events.events.push({ channel: row.topic, payload: { eventId: row.event_id }, wire: row.wire });
      } else if (row.id !== null && row.end_time !== null) {
        settled.push(row.id);
        dueAt.push(new Date(row.end_time));
      }
    }
    // Ending an auction has no precondition that can fail: nothing is ever left behind.
    return { settled, failed: [], dueAt };
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

import { LockMode, type FilterObject } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { UnitOfWork } from '../db/transactions.js';
import { Auction, AUCTION_TRANSITIONS, type AuctionStatus } from '../entities/Auction.js';
import { Bid } from '../entities/Bid.js';
import { badInput, conflict, forbidden, notFound } from '../errors.js';
import type { PublishedEvent } from '../events/bus.js';
import { entityOnChannels, type EventBatchKind } from '../events/outbox.js';
import { auctionWire, channelOf, type AuctionData, type DomainEvents, type Wire } from '../events/types.js';
import type { AuditLog } from './audit.js';
import type { ArmDeadline, SettleOutcome } from './deadline-handle.js';
import { parseId } from './ids.js';
import { checkFirst, keysetPage, pageOf, type Page } from '../pagination.js';
import { auctionsByIds, bidsOfAuctions, endDueAuctions, type EndedRow } from './auctions/sql.js';
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

/** Auctions whose end is still to come: ACTIVE. The end is their deadline (`auctions_active_end_time_idx`). */
export const pendingAuctions = (skip: readonly string[] = []): FilterObject<Auction> =>
  skip.length > 0 ? { status: 'ACTIVE', id: { $nin: [...skip] } } : { status: 'ACTIVE' };

/** The outbox topic of a batch of auction ends, whose entries are `[auctionId, endedEventId, updatedEventId]`. */
const AUCTION_ENDS = '@auction-ends';

/** An ended auction's AUCTION_ENDED and AUCTION_UPDATED events, held by the outbox row `outboxId`. */
function endEvents(row: EndedRow, outboxId: string): PublishedEvent[] {
  // Each column named, not the rest of the row spread: every subscriber's execution reads this object.
  const auction: Wire<AuctionData> = {
    id: row.id,
    sellerId: row.sellerId,
    nftId: row.nftId,
    title: row.title,
    startingPrice: row.startingPrice,
    minIncrement: row.minIncrement,
    endTime: row.endTime,
    status: row.status,
    highestBid: row.highestBid,
    highestBidderId: row.highestBidderId,
    winnerId: row.winnerId,
    softCloseSeconds: row.softCloseSeconds,
    endedAt: row.endedAt,
    createdAt: row.createdAt,
  };
  const { endedEvent, updatedEvent } = row;
  const ended: DomainEvents['AUCTION_ENDED'] = {
    eventId: endedEvent,
    auction,
    winnerId: auction.winnerId,
    finalPrice: auction.winnerId === null ? null : auction.highestBid,
    endedAt: auction.endedAt!,
  };
  const updated: DomainEvents['AUCTION_UPDATED'] = { eventId: updatedEvent, auction };
  return [
    { channel: channelOf('AUCTION_ENDED'), payload: ended, outboxId },
    { channel: channelOf('AUCTION_UPDATED', auction.id), payload: updated, outboxId },
  ];
}

/**
 * Batches of auction ends read back from the outbox: the events rebuilt from the ended auctions, which
 * never change again, with the event ids the batch keeps.
 */
export const auctionEnds: EventBatchKind = {
  topic: AUCTION_ENDS,
  entityOn: entityOnChannels(channelOf('AUCTION_ENDED'), channelOf('AUCTION_UPDATED')),
  async expand(em, entries) {
    const auctions = await auctionsByIds(em, entries.map(({ entry }) => entry[0]));
    const byId = new Map(auctions.map((a) => [a.id, a]));
    return entries.flatMap(({ outboxId, entry: [id, endedEvent, updatedEvent] }) => {
      const auction = byId.get(id);
      return auction && endedEvent && updatedEvent ? endEvents({ ...auction, endedEvent, updatedEvent }, outboxId) : [];
    });
  },
};

/** One `Auction.bids` page a field resolver asks for: the request's bid loader's key. */
export interface BidPageRequest {
  auctionId: string;
  first: number;
  after: string | null;
}

/** A bid's place in the order bids are listed (highest amount, then earliest): its cursor. */
const encodeBidCursor = (bid: Pick<Bid, 'amount' | 'id'>) => Buffer.from(`bid:${bid.amount}:${bid.id}`).toString('base64url');

function decodeBidCursor(cursor: string): { amount: number; id: string } {
  const match = /^bid:(\d{1,10}):([1-9]\d{0,17})$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!match) throw badInput('after is not a bid cursor this API returned', 'after');
  return { amount: Number(match[1]), id: match[2] };
}

/** Auctions: creation, bids with soft close, cancellation, and ending those whose end has come. */
export class AuctionService {
  constructor(
    private readonly armEnd: ArmDeadline,
    private readonly audit?: AuditLog,
  ) {}

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
    // An admin acting on another's auction is an admin action, whichever way it came (GraphQL or REST).
    if (auction.sellerId !== user.id) await this.audit?.record(uow, user, 'CANCEL_AUCTION', auction.id, { id: auctionId, result: auctionWire(auction) });
    return auction;
  }

  /**
   * The end deadline: at most `limit` ACTIVE auctions whose end has come become ENDED with their
   * winner, each once (`status = 'ACTIVE'` in the update). One statement per batch (at most
   * AUCTION_END_BATCH_SIZE): it takes the due auctions, earliest first, SKIP LOCKED (an auction a bid
   * is holding is left to the next round, which then sees its moved end), ends them, and writes one
   * outbox row for the batch (`auctionEnds`) instead of an AUCTION_ENDED and an AUCTION_UPDATED row per
   * auction. The events are built here from the ended rows, with the ids that row keeps (the
   * statement and its measured cost: `endDueAuctions` in auctions/sql.ts).
   */
  async endDue(uow: UnitOfWork, limit: number, skip: readonly string[]): Promise<SettleOutcome> {
    const rows = await endDueAuctions(uow.em, AUCTION_ENDS, uow.now, limit, skip);
    const settled: string[] = [];
    const dueAt: Date[] = [];
    for (const { outboxId, ...row } of rows) {
      uow.events.events.push(...endEvents(row, outboxId));
      settled.push(row.id);
      dueAt.push(new Date(row.endTime));
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

  /**
   * Pages of many auctions' bids (the `Auction.bids` field, through the request's loader), highest
   * first then earliest, as bids have always been listed: one query per distinct (`first`, `after`),
   * so one for a page of auctions that all ask alike. Each auction's page is its own `limit first + 1`
   * (a lateral join walking `bids_auction_id_idx`), so a page costs its size, not the auction's bids.
   */
  async bidPages(em: EntityManager, requests: readonly BidPageRequest[]): Promise<Map<BidPageRequest, Page<Bid>>> {
    const groups = new Map<string, BidPageRequest[]>();
    for (const r of requests) {
      checkFirst(r.first);
      const key = `${r.first}:${r.after ?? ''}`;
      groups.set(key, [...(groups.get(key) ?? []), r]);
    }
    const pages = new Map<BidPageRequest, Page<Bid>>();
    for (const group of groups.values()) {
      const { first, after } = group[0];
      const cursor = after === null ? null : decodeBidCursor(after);
      const ids = [...new Set(group.map((r) => r.auctionId))];
      const { bids, previous } = await bidsOfAuctions(em, ids, cursor, first + 1);
      const found = new Map<string, { bids: Bid[]; previous: boolean }>(ids.map((id) => [id, { bids: [], previous: previous.has(id) }]));
      for (const bid of bids) found.get(String(bid.auctionId))?.bids.push(bid);
      for (const r of group) {
        const { bids: all, previous: before } = found.get(r.auctionId)!;
        pages.set(r, pageOf(all.slice(0, first), encodeBidCursor, { next: all.length > first, previous: before }));
      }
    }
    return pages;
  }

  private async lock(em: EntityManager, id: string): Promise<Auction> {
    const auction = await em.findOne(Auction, { id }, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!auction) throw notFound('Auction', id);
    return auction;
  }
}

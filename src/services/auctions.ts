import type { EntityManager } from '@mikro-orm/postgresql';
import type { UnitOfWork } from '../db/transactions.js';
import { AUCTION_TRANSITIONS, type AuctionStatus } from '../entities/Auction.js';
import { badInput, conflict, forbidden, notFound } from '../errors.js';
import type { AuctionSnapshot } from '../events/types.js';
import type { Deadlines } from '../jobs/deadlines.js';
import type { Identity } from './users.js';
import { toSnapshot, type AuctionRow } from './auction-rows.js';
import { pgArray } from '../db/sql.js';
import { parseId } from './ids.js';
import { decodeCursor, toPage, type Page } from './pagination.js';

export const AUCTION_END = 'auction-end';

export interface CreateAuctionInput {
  nftId: string;
  title: string;
  startingPrice: number;
  minIncrement: number;
  endTime: Date;
  softCloseSeconds: number;
}

export interface BidView {
  id: string;
  auctionId: string;
  bidderId: string;
  amount: number;
  createdAt: Date;
}

function assertTransition(from: AuctionStatus, to: AuctionStatus, id: string): void {
  if (!AUCTION_TRANSITIONS[from].includes(to)) throw conflict(`Auction ${id} is ${from}, not ACTIVE`);
}

const checkAuctionId = (id: string) => parseId(id, 'an auction', 'auctionId');

/** Auctions: creation, bids with soft close, cancellation, and settling the ends that are due. */
export class AuctionService {
  constructor(private readonly deadlines: Deadlines) {}

  async create(uow: UnitOfWork, user: Identity, input: CreateAuctionInput): Promise<AuctionSnapshot> {
    if (!(input.endTime instanceof Date) || Number.isNaN(input.endTime.getTime())) throw badInput('endTime is not a date', 'endTime');
    if (input.endTime.getTime() <= uow.now.getTime()) throw badInput('endTime must be in the future', 'endTime');
    const [row] = await uow.em.execute<AuctionRow[]>(
      `insert into auctions (seller_id, nft_id, title, starting_price, min_increment, end_time, soft_close_seconds)
       values (?, ?, ?, ?, ?, ?, ?) returning *`,
      [user.id, input.nftId, input.title, input.startingPrice, input.minIncrement, input.endTime, input.softCloseSeconds],
    );
    const auction = toSnapshot(row);
    await uow.events.add('AUCTION_UPDATED', { auction }, auction.id);
    uow.afterCommit(() => this.deadlines.arm(AUCTION_END, input.endTime));
    return auction;
  }

  async placeBid(uow: UnitOfWork, user: Identity, auctionId: string, amount: number): Promise<AuctionSnapshot> {
    const row = await this.lock(uow.em, checkAuctionId(auctionId));
    if (row.seller_id === user.id) throw forbidden('Sellers cannot bid on their own auction');
    assertTransition(row.status, 'ENDED', auctionId);
    const now = uow.now.getTime();
    const endTime = new Date(row.end_time).getTime();
    if (now >= endTime) throw conflict(`Auction ${auctionId} has reached its end time`);
    const minimum = row.highest_bid === null ? row.starting_price : row.highest_bid + row.min_increment;
    if (amount < minimum) throw conflict(`Bid too low: at least ${minimum} is needed`);
    // Soft close: a bid in the last softCloseSeconds moves the end to now + softCloseSeconds.
    const softCloseMs = row.soft_close_seconds * 1000;
    const newEnd = softCloseMs > 0 && endTime - now < softCloseMs ? new Date(now + softCloseMs) : new Date(endTime);
    await uow.em.execute('insert into bids (auction_id, bidder_id, amount, created_at) values (?, ?, ?, ?)', [
      row.id,
      user.id,
      amount,
      uow.now,
    ]);
    const [updated] = await uow.em.execute<AuctionRow[]>(
      `update auctions set highest_bid = ?, highest_bidder_id = ?, end_time = ?
        where id = ? and status = 'ACTIVE' returning *`,
      [amount, user.id, newEnd, row.id],
    );
    const auction = toSnapshot(updated);
    await uow.events.add('AUCTION_UPDATED', { auction }, auction.id);
    return auction;
  }

  async cancel(uow: UnitOfWork, user: Identity, auctionId: string): Promise<AuctionSnapshot> {
    const row = await this.lock(uow.em, checkAuctionId(auctionId));
    if (row.seller_id !== user.id && user.role !== 'admin') throw forbidden('Only the seller or an admin can cancel an auction');
    assertTransition(row.status, 'CANCELLED', auctionId);
    const [updated] = await uow.em.execute<AuctionRow[]>(
      `update auctions set status = 'CANCELLED' where id = ? and status = 'ACTIVE' returning *`,
      [row.id],
    );
    const auction = toSnapshot(updated);
    await uow.events.add('AUCTION_UPDATED', { auction }, auction.id);
    return auction;
  }

  async get(em: EntityManager, auctionId: string): Promise<AuctionSnapshot> {
    const [row] = await em.execute<AuctionRow[]>('select * from auctions where id = ?', [checkAuctionId(auctionId)]);
    if (!row) throw notFound('Auction', auctionId);
    return toSnapshot(row);
  }

  /** Newest first, `first` at a time, after an opaque cursor. */
  async list(em: EntityManager, filter: { status?: AuctionStatus }, first: number, after?: string): Promise<Page<AuctionSnapshot>> {
    if (!Number.isInteger(first) || first < 1 || first > 100) throw badInput('first must be between 1 and 100', 'first');
    const afterId = after === undefined ? undefined : decodeCursor(after);
    const where: string[] = [];
    const params: unknown[] = [];
    if (filter.status) {
      where.push('status = ?');
      params.push(filter.status);
    }
    if (afterId !== undefined) {
      where.push('id < ?');
      params.push(afterId);
    }
    params.push(first + 1);
    const rows = await em.execute<AuctionRow[]>(
      `select * from auctions ${where.length ? `where ${where.join(' and ')}` : ''} order by id desc limit ?`,
      params,
    );
    return toPage(rows, first, toSnapshot);
  }

  /** Bids of many auctions in one query (the `Auction.bids` field), highest first. */
  async bidsOf(em: EntityManager, auctionIds: readonly string[]): Promise<Map<string, BidView[]>> {
    const rows = await em.execute<Array<{ id: string; auction_id: string; bidder_id: string; amount: number; created_at: Date }>>(
      'select * from bids where auction_id = any(?::bigint[]) order by amount desc, id',
      [pgArray(auctionIds)],
    );
    const byAuction = new Map<string, BidView[]>(auctionIds.map((id) => [id, []]));
    for (const r of rows) {
      byAuction.get(String(r.auction_id))?.push({
        id: String(r.id),
        auctionId: String(r.auction_id),
        bidderId: r.bidder_id,
        amount: r.amount,
        createdAt: new Date(r.created_at),
      });
    }
    return byAuction;
  }

  private async lock(em: EntityManager, id: string): Promise<AuctionRow> {
    const [row] = await em.execute<AuctionRow[]>('select * from auctions where id = ? for update', [id]);
    if (!row) throw notFound('Auction', id);
    return row;
  }
}

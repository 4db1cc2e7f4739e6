import type { AuctionSnapshot } from '../events/types.js';

/** An `auctions` row as raw SQL returns it. */
export interface AuctionRow {
  id: string;
  seller_id: string;
  nft_id: string;
  title: string;
  starting_price: number;
  min_increment: number;
  end_time: Date;
  status: AuctionSnapshot['status'];
  highest_bid: number | null;
  highest_bidder_id: string | null;
  winner_id: string | null;
  soft_close_seconds: number;
  ended_at: Date | null;
  created_at: Date;
}

export function toSnapshot(row: AuctionRow): AuctionSnapshot {
  return {
    id: String(row.id),
    sellerId: row.seller_id,
    nftId: row.nft_id,
    title: row.title,
    startingPrice: row.starting_price,
    minIncrement: row.min_increment,
    endTime: new Date(row.end_time).toISOString(),
    status: row.status,
    highestBid: row.highest_bid,
    highestBidderId: row.highest_bidder_id,
    winnerId: row.winner_id,
    softCloseSeconds: row.soft_close_seconds,
    endedAt: row.ended_at ? new Date(row.ended_at).toISOString() : null,
    createdAt: new Date(row.created_at).toISOString(),
  };
}

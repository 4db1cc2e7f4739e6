import type { AuctionStatus } from '../entities/Auction.js';
import { channelOf, reviveAuction, type AuctionData, type DomainEvents } from '../events/types.js';
import type { AppServices } from '../app-services.js';

export interface CountdownTick {
  auctionId: string;
  endTime: Date;
  serverTime: Date;
  remainingMs: number;
  status: AuctionStatus;
}

/**
 * One subscriber's countdown. It listens for the auction's updates before reading it (so no change
 * falls between the read and the listen), ticks every COUNTDOWN_TICK_SECONDS from the known state,
 * answers at once when an update arrives (a moved endTime), and completes after the tick that shows
 * the auction ENDED or CANCELLED. No database query per tick.
 */
export async function* countdown(services: AppServices, auctionId: string): AsyncGenerator<CountdownTick> {
  const updates = services.bus.iterate<DomainEvents['AUCTION_UPDATED']>(channelOf('AUCTION_UPDATED', auctionId));
  const tickMs = services.config.countdownTickSeconds * 1000;
  const frame = (a: AuctionData): CountdownTick => {
    const now = services.clock.now();
    const endTime = a.endTime;
    return { auctionId: a.id, endTime, serverTime: now, remainingMs: Math.max(0, endTime.getTime() - now.getTime()), status: a.status };
  };
  try {
    let auction: AuctionData = await services.auctions.get(services.orm.em.fork(), auctionId);
    yield frame(auction);
    let pending = updates.next();
    while (auction.status === 'ACTIVE') {
      let timer: NodeJS.Timeout | undefined;
      const tick = new Promise<'tick'>((resolve) => (timer = setTimeout(() => resolve('tick'), tickMs)));
      const winner = await Promise.race([pending, tick]);
      clearTimeout(timer);
      if (winner !== 'tick') {
        if (winner.done) return;
        auction = reviveAuction(winner.value.auction);
        pending = updates.next();
      }
      yield frame(auction);
    }
  } finally {
    await updates.return?.();
  }
}

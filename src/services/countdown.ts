import { channelOf, type AuctionSnapshot, type DomainEvents } from '../events/types.js';
import type { Services } from './index.js';

export interface CountdownTick {
  auctionId: string;
  endTime: Date;
  serverTime: Date;
  remainingMs: number;
  status: AuctionSnapshot['status'];
}

/**
 * One subscriber's countdown. It listens for the auction's updates before reading it (so no change
 * falls between the read and the listen), ticks every COUNTDOWN_TICK_SECONDS from the known state,
 * answers at once when an update arrives (a moved endTime), and completes after the tick that shows
 * the auction ENDED or CANCELLED. No database query per tick.
 */
export async function* countdown(services: Services, auctionId: string): AsyncGenerator<CountdownTick> {
  const updates = services.bus.iterate<DomainEvents['AUCTION_UPDATED']>(channelOf('AUCTION_UPDATED', auctionId));
  const tickMs = services.config.countdownTickSeconds * 1000;
  const frame = (a: AuctionSnapshot): CountdownTick => {
    const now = services.clock.now();
    const endTime = new Date(a.endTime);
    return { auctionId: a.id, endTime, serverTime: now, remainingMs: Math.max(0, endTime.getTime() - now.getTime()), status: a.status };
  };
  try {
    let auction = await services.auctions.get(services.orm.em.fork(), auctionId);
    yield frame(auction);
    let pending = updates.next();
    while (auction.status === 'ACTIVE') {
      let timer: NodeJS.Timeout | undefined;
      const tick = new Promise<'tick'>((resolve) => (timer = setTimeout(() => resolve('tick'), tickMs)));
      const winner = await Promise.race([pending, tick]);
      clearTimeout(timer);
      if (winner !== 'tick') {
        if (winner.done) return;
        auction = winner.value.auction;
        pending = updates.next();
      }
      yield frame(auction);
    }
  } finally {
    await updates.return?.();
  }
}

import type { DeadlineKind } from '../scheduling/deadlines.js';
import type { AuctionService } from '../services/auctions.js';

/** `deadline:auction-end`: ACTIVE auctions end at their `endTime` (AuctionService.endDue), AUCTION_END_BATCH_SIZE per transaction. */
export const AUCTION_END = 'auction-end';

export const auctionEndKind = (auctions: AuctionService, batchSize: number): DeadlineKind => ({
  name: AUCTION_END,
  label: 'auction end',
  batchSize,
  nextDeadline: (em, skip) => auctions.nextEnd(em, skip),
  countPending: (em) => auctions.countActive(em),
  settleDue: (uow, limit, skip) => auctions.endDue(uow, limit, skip),
});

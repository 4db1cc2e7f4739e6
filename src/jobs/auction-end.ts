import type { DeadlineKind } from '../scheduling/deadlines.js';
import type { AuctionService } from '../services/auctions.js';

/**
 * `deadline:auction-end`: ACTIVE auctions end at their `endTime` (AuctionService.endDue),
 * AUCTION_END_BATCH_SIZE per transaction, AUCTION_END_LANES transactions at once while batches come
 * back full (endDue takes its rows SKIP LOCKED and locks nothing else).
 */
export const AUCTION_END = 'auction-end';

export const auctionEndKind = (auctions: AuctionService, batchSize: number, lanes = 1): DeadlineKind => ({
  name: AUCTION_END,
  label: 'auction end',
  batchSize,
  lanes,
  nextDeadline: (em, skip) => auctions.nextEnd(em, skip),
  countPending: (em) => auctions.countActive(em),
  settleDue: (uow, limit, skip) => auctions.endDue(uow, limit, skip),
});

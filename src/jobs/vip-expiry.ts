import type { DeadlineKind } from '../scheduling/deadlines.js';
import type { VipService } from '../services/vip.js';

export const VIP_EXPIRY = 'vip-expiry';

/** `deadline:vip-expiry`: an active membership lapses at its `expiresAt` (VipService.expireDue) and its owner hears it. */
export const vipExpiryKind = (vip: VipService, batchSize: number): DeadlineKind => ({
  name: VIP_EXPIRY,
  label: 'VIP expiry',
  batchSize,
  nextDeadline: (em, skip) => vip.nextExpiry(em, skip),
  countPending: (em) => vip.countActive(em),
  settleDue: (uow, limit, skip) => vip.expireDue(uow, limit, skip),
});

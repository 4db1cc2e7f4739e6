import type { UnitOfWork } from '../../db/transactions.js';
import type { Order } from '../../entities/Order.js';
import type { SettleFailure } from '../deadline-handle.js';
import type { WalletService } from '../wallets.js';
import { frozenPart } from './rules.js';

/** Why an order's frozen money cannot be released, or null when it can. */
export function frozenProblem(order: Order, walletFrozen: number | undefined): string | null {
  const part = frozenPart(order);
  if (part === 0) return null;
  if (walletFrozen === undefined) return `the wallet of user ${order.userId} is missing`;
  if (walletFrozen < part) return `the wallet of user ${order.userId} holds ${walletFrozen} frozen cents, the order needs ${part}`;
  return null;
}

/**
 * Locks the wallets of orders about to release their frozen part (given back or debited), in
 * user-id order, and splits the orders into those whose wallets hold it (counting several orders
 * of one wallet together) and those that cannot, with the reason.
 */
export async function lockReleasable(wallets: WalletService, uow: UnitOfWork, orders: Order[]): Promise<{ ok: Order[]; failed: SettleFailure[] }> {
  const frozen = await wallets.lockFrozen(
    uow.em,
    orders.filter((o) => frozenPart(o) > 0).map((o) => o.userId),
  );
  const ok: Order[] = [];
  const failed: SettleFailure[] = [];
  for (const order of orders) {
    const problem = frozenProblem(order, frozen.get(order.userId));
    if (problem) {
      failed.push({ id: order.id, reason: problem });
      continue;
    }
    if (frozenPart(order) > 0) frozen.set(order.userId, frozen.get(order.userId)! - frozenPart(order));
    ok.push(order);
  }
  return { ok, failed };
}

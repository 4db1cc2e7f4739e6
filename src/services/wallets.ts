import type { EntityManager } from '@mikro-orm/postgresql';
import type { UnitOfWork } from '../db/transactions.js';
import type { LedgerEntryKind } from '../entities/LedgerEntry.js';
import { badInput, conflict, notFound } from '../errors.js';
import type { UserService } from './users.js';
import { pgArray } from '../db/sql.js';

/** Wallet columns are PostgreSQL integers: no balance may pass this many cents. */
export const MAX_CENTS = 2_147_483_647;

export interface WalletView {
  userId: string;
  balance: number;
  frozen: number;
  updatedAt: Date;
}

interface WalletRow {
  user_id: string;
  balance: number;
  frozen: number;
  updated_at: Date | string;
}

const toView = (row: WalletRow): WalletView => ({
  userId: row.user_id,
  balance: row.balance,
  frozen: row.frozen,
  updatedAt: new Date(row.updated_at),
});

/** A user id an admin types: not empty, no surrounding spaces (" bob" would be a new user), at most 200 characters. */
export function checkUserId(userId: string): void {
  if (!userId || userId !== userId.trim() || userId.length > 200) {
    throw badInput('userId must be 1 to 200 characters without surrounding spaces', 'userId');
  }
}

export interface LedgerLine {
  userId: string;
  orderId: string | null;
  entry: LedgerEntryKind;
  amount: number;
}

/**
 * Wallets: `balance` is spendable, `frozen` is held by unpaid orders. Every movement is also a
 * `wallet_ledger` line written in the same transaction, so balance + frozen over all wallets always
 * equals credits minus debits.
 */
export class WalletService {
  constructor(private readonly users: UserService) {}

  async get(em: EntityManager, userId: string): Promise<WalletView> {
    const [row] = await em.execute<WalletRow[]>('select * from wallets where user_id = ?', [userId]);
    if (!row) throw notFound('Wallet of user', userId);
    return toView(row);
  }

  /** Admin: puts money in a user's wallet (the user is created if the id was never seen). */
  async credit(uow: UnitOfWork, userId: string, amount: number): Promise<WalletView> {
    if (!Number.isInteger(amount) || amount < 1 || amount > 1_000_000_000) {
      throw badInput('amount must be between 1 and 1000000000 cents', 'amount');
    }
    checkUserId(userId);
    await this.users.ensureExists(uow.em, userId);
    const [row] = await uow.em.execute<WalletRow[]>(
      `update wallets set balance = balance + ?, updated_at = ?
        where user_id = ? and balance::bigint + frozen + ? <= ? returning *`,
      [amount, uow.now, userId, amount, MAX_CENTS],
    );
    if (!row) throw conflict(`Wallet of user ${userId} cannot hold more than ${MAX_CENTS} cents`);
    await this.record(uow, [{ userId, orderId: null, entry: 'CREDIT', amount }]);
    return toView(row);
  }

  /** Moves `amount` from balance to frozen; CONFLICT when the balance is too small (nothing changes). */
  async freeze(uow: UnitOfWork, userId: string, amount: number): Promise<void> {
    const rows = await uow.em.execute(
      `update wallets set balance = balance - ?, frozen = frozen + ?, updated_at = ?
        where user_id = ? and balance >= ? returning user_id`,
      [amount, amount, uow.now, userId, amount],
    );
    if (rows.length === 0) throw conflict(`Insufficient wallet balance: ${amount} cents are needed`);
  }

  /** Takes `amount` straight from the balance (an admin's WALLET order); CONFLICT when too small. */
  async debitBalance(uow: UnitOfWork, userId: string, amount: number): Promise<void> {
    const rows = await uow.em.execute(
      `update wallets set balance = balance - ?, updated_at = ? where user_id = ? and balance >= ? returning user_id`,
      [amount, uow.now, userId, amount],
    );
    if (rows.length === 0) throw conflict(`Insufficient wallet balance: ${amount} cents are needed`);
  }

  /**
   * Locks the wallets of `userIds` (in one order, so two batches never deadlock) and returns their
   * frozen money. A user without a wallet is missing from the map.
   */
  async lockFrozen(em: EntityManager, userIds: readonly string[]): Promise<Map<string, number>> {
    if (userIds.length === 0) return new Map();
    const rows = await em.execute<Array<{ user_id: string; frozen: number }>>(
      'select user_id, frozen from wallets where user_id = any(?::text[]) order by user_id for update',
      [pgArray([...new Set(userIds)])],
    );
    return new Map(rows.map((r) => [r.user_id, r.frozen]));
  }

  async record(uow: UnitOfWork, lines: LedgerLine[]): Promise<void> {
    if (lines.length === 0) return;
    await uow.em.execute(
      `insert into wallet_ledger (user_id, order_id, entry, amount, created_at)
       select * from unnest(?::text[], ?::bigint[], ?::text[], ?::int[], ?::timestamptz[])`,
      [
        pgArray(lines.map((l) => l.userId)),
        `{${lines.map((l) => l.orderId ?? 'NULL').join(',')}}`,
        pgArray(lines.map((l) => l.entry)),
        `{${lines.map((l) => l.amount).join(',')}}`,
        pgArray(lines.map(() => uow.now.toISOString())),
      ],
    );
  }
}

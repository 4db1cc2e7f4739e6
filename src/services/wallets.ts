import { LockMode } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { UnitOfWork } from '../db/transactions.js';
import { LedgerEntry, type LedgerEntryKind } from '../entities/LedgerEntry.js';
import { Wallet } from '../entities/Wallet.js';
import { badInput, conflict, notFound } from '../errors.js';
import type { UserService } from './users.js';

/** Wallet columns are PostgreSQL integers: no balance may pass this many cents. */
export const MAX_CENTS = 2_147_483_647;

/** The most one admin credit or adjustment moves, in cents (creditWallet's bound from the start). */
const MAX_ADMIN_CENTS = 1_000_000_000;

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
 * equals credits, adjustments (signed) and refunds minus debits. Each change locks the wallet row first, so the checks below hold
 * until commit.
 */
export class WalletService {
  constructor(private readonly users: UserService) {}

  async get(em: EntityManager, userId: string): Promise<Wallet> {
    const wallet = await em.findOne(Wallet, { userId });
    if (!wallet) throw notFound('Wallet of user', userId);
    return wallet;
  }

  /**
   * Admin: puts money in the wallet of a user the server has seen (a token of theirs was used, or an
   * admin ordered for them). An id never seen is NOT_FOUND: a mistyped id would otherwise make a user
   * (and credit them) that nobody owns.
   */
  async credit(uow: UnitOfWork, userId: string, amount: number): Promise<Wallet> {
    if (!Number.isInteger(amount) || amount < 1 || amount > MAX_ADMIN_CENTS) {
      throw badInput(`amount must be between 1 and ${MAX_ADMIN_CENTS} cents`, 'amount');
    }
    const wallet = await this.lockKnown(uow.em, userId);
    if (wallet.balance + wallet.frozen + amount > MAX_CENTS) throw conflict(`Wallet of user ${userId} cannot hold more than ${MAX_CENTS} cents`);
    wallet.balance += amount;
    wallet.updatedAt = uow.now;
    await this.record(uow, [{ userId, orderId: null, entry: 'CREDIT', amount }]);
    return wallet;
  }

  /**
   * Admin: corrects a wallet's balance by `amount` cents, up or down (a mistyped credit, a goodwill
   * gesture), as one signed ADJUST line. The frozen part belongs to unpaid orders and is left alone:
   * an adjustment that would take the available balance below zero is CONFLICT.
   */
  async adjust(uow: UnitOfWork, userId: string, amount: number, reason: string): Promise<Wallet> {
    if (!Number.isInteger(amount) || amount === 0 || Math.abs(amount) > MAX_ADMIN_CENTS) {
      throw badInput(`amount must be a non-zero number of cents between -${MAX_ADMIN_CENTS} and ${MAX_ADMIN_CENTS}`, 'amount');
    }
    if (reason.trim().length === 0 || reason.length > 500) throw badInput('reason must be 1 to 500 characters', 'reason');
    const wallet = await this.lockKnown(uow.em, userId);
    if (wallet.balance + amount < 0) throw conflict(`Wallet of user ${userId} has ${wallet.balance} cents available: it cannot give ${-amount}`);
    if (wallet.balance + wallet.frozen + amount > MAX_CENTS) throw conflict(`Wallet of user ${userId} cannot hold more than ${MAX_CENTS} cents`);
    wallet.balance += amount;
    wallet.updatedAt = uow.now;
    await this.record(uow, [{ userId, orderId: null, entry: 'ADJUST', amount }]);
    return wallet;
  }

  /** Moves `amount` from balance to frozen; CONFLICT when the balance is too small (nothing changes). */
  async freeze(uow: UnitOfWork, userId: string, amount: number): Promise<void> {
    const wallet = await this.lock(uow.em, userId);
    if (wallet.balance < amount) throw conflict(`Insufficient wallet balance: ${amount} cents are needed`);
    wallet.balance -= amount;
    wallet.frozen += amount;
    wallet.updatedAt = uow.now;
  }

  /** Takes `amount` straight from the balance (an admin's WALLET order); CONFLICT when too small. */
  async debitBalance(uow: UnitOfWork, userId: string, amount: number): Promise<void> {
    const wallet = await this.lock(uow.em, userId);
    if (wallet.balance < amount) throw conflict(`Insufficient wallet balance: ${amount} cents are needed`);
    wallet.balance -= amount;
    wallet.updatedAt = uow.now;
  }

  /** Locks the wallets of `userIds` in user-id order (so two batches never deadlock). A user without a wallet is missing. */
  async lockMany(em: EntityManager, userIds: readonly string[]): Promise<Map<string, Wallet>> {
    if (userIds.length === 0) return new Map();
    const wallets = await em.find(
      Wallet,
      { userId: { $in: [...new Set(userIds)] } },
      { orderBy: { userId: 'asc' }, lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true },
    );
    return new Map(wallets.map((w) => [w.userId, w]));
  }

  /**
   * The frozen money of `userIds`' wallets, locked in user-id order, for a batch that settles many
   * orders in one statement: plain values, no managed entities (hydrating them per batch halved the
   * expiry rate, docs/benchmarks.md). A user without a wallet is missing from the map.
   */
  async lockFrozen(em: EntityManager, userIds: readonly string[]): Promise<Map<string, number>> {
    if (userIds.length === 0) return new Map();
    const rows = await em
      .createQueryBuilder(Wallet)
      .select(['userId', 'frozen'])
      .where({ userId: { $in: [...new Set(userIds)] } })
      .orderBy({ userId: 'asc' })
      .setLockMode(LockMode.PESSIMISTIC_WRITE)
      .execute<Array<{ userId: string; frozen: number }>>('all');
    return new Map(rows.map((r) => [r.userId, r.frozen]));
  }

  /** The ledger lines of one transaction, in one insert. */
  async record(uow: UnitOfWork, lines: LedgerLine[]): Promise<void> {
    if (lines.length === 0) return;
    await uow.em.insertMany(
      LedgerEntry,
      lines.map((l) => ({ userId: l.userId, orderId: l.orderId, entry: l.entry, amount: l.amount, createdAt: uow.now })),
    );
  }

  /** The wallet of a user an admin names, locked: a malformed id is BAD_USER_INPUT, one never seen NOT_FOUND. */
  private async lockKnown(em: EntityManager, userId: string): Promise<Wallet> {
    checkUserId(userId);
    if (!(await this.users.get(em, userId))) throw notFound('User', userId);
    return this.lock(em, userId);
  }

  private async lock(em: EntityManager, userId: string): Promise<Wallet> {
    const wallet = await em.findOne(Wallet, { userId }, { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true });
    if (!wallet) throw notFound('Wallet of user', userId);
    return wallet;
  }
}

import type { EntityManager } from '@mikro-orm/postgresql';
import { User, type Role } from '../entities/User.js';
import { Wallet } from '../entities/Wallet.js';

export interface Identity {
  id: string;
  role: Role;
}

/**
 * The first time a valid token is seen its user gets a row and a wallet at zero. Known
 * (id, role) pairs are remembered so a request costs no write once its user exists.
 */
export class UserService {
  private readonly known = new Set<string>();

  async ensure(em: EntityManager, who: Identity): Promise<void> {
    const key = `${who.role}:${who.id}`;
    if (this.known.has(key)) return;
    // The token's role wins: an id first seen as a user and now holding an admin token becomes admin.
    // One statement, so one commit: a flash sale's 50,000 first-time buyers each cost this once.
    // (The wallet's foreign key is checked at the end of the statement, when the user row is there.)
    await em.execute(
      `with u as (insert into users (id, role) values (?, ?) on conflict (id) do update set role = excluded.role)
       insert into wallets (user_id) values (?) on conflict (user_id) do nothing`,
      [who.id, who.role, who.id],
    );
    if (this.known.size > 100_000) this.known.clear();
    this.known.add(key);
  }

  /** A user named by an admin (credited, ordered for) before their first token: created as a user with a wallet. */
  async ensureExists(em: EntityManager, id: string): Promise<void> {
    await em.createQueryBuilder(User).insert({ id, role: 'user' }).onConflict('id').ignore().execute();
    await this.ensureWallet(em, id);
  }

  /** Many users at once (a flash-sale batch's buyers, named by their stream entries): two statements. */
  async ensureMany(em: EntityManager, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return;
    await em.createQueryBuilder(User).insert(ids.map((id) => ({ id, role: 'user' as const }))).onConflict('id').ignore().execute();
    await em.createQueryBuilder(Wallet).insert(ids.map((userId) => ({ userId }))).onConflict('userId').ignore().execute();
  }

  get(em: EntityManager, id: string): Promise<User | null> {
    return em.findOne(User, { id });
  }

  private async ensureWallet(em: EntityManager, userId: string): Promise<void> {
    await em.createQueryBuilder(Wallet).insert({ userId }).onConflict('userId').ignore().execute();
  }
}

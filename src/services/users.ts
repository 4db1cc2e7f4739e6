import type { EntityManager } from '@mikro-orm/postgresql';
import { upsertUsersWithWallets } from './users/sql.js';
import { User, type Role } from '../entities/User.js';
import { Wallet } from '../entities/Wallet.js';
import { GroupQueue, type Waiting } from './group-queue.js';

export interface Identity {
  id: string;
  role: Role;
  /** When the token it came from expires (its `exp`); a graphql-ws socket is closed then (4403). */
  expiresAt?: Date;
}

/**
 * Known (id, role) pairs one generation holds. Two generations: at most 2 × 100,000 keys (ids are at
 * most 128 characters, verifyToken: ~40 MB at worst, ~10 MB for typical ids), and a flash sale's 50,000
 * buyers stay known through the sale.
 */
const KNOWN_PER_GENERATION = 100_000;

/**
 * The first time a valid token is seen its user gets a row and a wallet at zero. Known
 * (id, role) pairs are remembered so a request costs no write once its user exists.
 */
export class UserService {
  /**
   * Bounded without forgetting the active users all at once: a pair found in the older generation moves
   * to the newer one, and the older is dropped when the newer fills. (Clearing everything at 100,000
   * made every active user write their row again together; a flood of new ids now costs the users
   * unseen for a generation one idempotent upsert each.)
   */
  private known = new Set<string>();
  private knownBefore = new Set<string>();

  /** `perGeneration`: smaller in tests. */
  constructor(private readonly perGeneration = KNOWN_PER_GENERATION) {}
  /**
   * First requests that arrive while one statement is running are written together by the next:
   * a flash sale's 50,000 first-time buyers cost one statement per group, not one commit each
   * (a statement's socket write alone was 17% of the server's time under `bench:seckill`).
   */
  private readonly firsts = new GroupQueue<{ emOf: () => EntityManager; who: Identity }, void>((group) => this.insert(group), {
    maxGroup: 500,
    inFlight: 1,
  });

  /** `emOf` is asked for an entity manager only when a write is needed. */
  async ensure(emOf: () => EntityManager, who: Identity): Promise<void> {
    const key = `${who.role}:${who.id}`;
    if (this.known.has(key)) return;
    if (this.knownBefore.has(key)) return this.remember(key);
    await this.firsts.add({ emOf, who });
    this.remember(key);
  }

  private remember(key: string): void {
    if (this.known.size >= this.perGeneration) {
      this.knownBefore = this.known;
      this.known = new Set();
    }
    this.known.add(key);
  }

  /** A user named by an admin (credited, ordered for) before their first token: created as a user with a wallet. */
  async ensureExists(em: EntityManager, id: string): Promise<void> {
    await em.createQueryBuilder(User).insert({ id, role: 'user' }).onConflict('id').ignore().execute();
    await this.ensureWallet(em, id);
  }

  get(em: EntityManager, id: string): Promise<User | null> {
    return em.findOne(User, { id });
  }

  /**
   * One statement for the group (`upsertUsersWithWallets`). Of one id twice in a group, the later
   * role, as one after the other would leave it.
   */
  private async insert(group: Array<Waiting<{ emOf: () => EntityManager; who: Identity }, void>>): Promise<void> {
    const roles = new Map<string, Role>();
    for (const { item } of group) roles.set(item.who.id, item.who.role);
    await upsertUsersWithWallets(group[0].item.emOf(), roles);
    for (const w of group) w.resolve();
  }

  private async ensureWallet(em: EntityManager, userId: string): Promise<void> {
    await em.createQueryBuilder(Wallet).insert({ userId }).onConflict('userId').ignore().execute();
  }
}

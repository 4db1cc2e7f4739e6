import type { EntityManager } from '@mikro-orm/postgresql';
import type { Role } from '../entities/User.js';

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
    await em.execute(
      `insert into users (id, role) values (?, ?)
       on conflict (id) do update set role = excluded.role where users.role <> excluded.role`,
      [who.id, who.role],
    );
    await em.execute('insert into wallets (user_id) values (?) on conflict do nothing', [who.id]);
    if (this.known.size > 100_000) this.known.clear();
    this.known.add(key);
  }

  /** A user named by an admin (credited, ordered for) before their first token: created as a user with a wallet. */
  async ensureExists(em: EntityManager, id: string): Promise<void> {
    await em.execute(`insert into users (id, role) values (?, 'user') on conflict (id) do nothing`, [id]);
    await em.execute('insert into wallets (user_id) values (?) on conflict do nothing', [id]);
  }

  async get(em: EntityManager, id: string): Promise<{ id: string; role: Role; createdAt: Date } | null> {
    const [row] = await em.execute<Array<{ id: string; role: Role; created_at: Date }>>('select * from users where id = ?', [id]);
    return row ? { id: row.id, role: row.role, createdAt: new Date(row.created_at) } : null;
  }
}

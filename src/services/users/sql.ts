/**
 * The users' one set-based statement: a group of first-seen callers and their wallets in one write.
 * Every other read and write goes through the entity manager.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { sql } from 'kysely';
import { pgArray } from '../../db/sql.js';
import type { Role } from '../../entities/User.js';

/**
 * Users by id with their token's role (it wins over the stored one: a user now holding an admin token
 * becomes admin), each with an empty wallet if they have none. One statement for a group of new
 * callers; the wallet's foreign key is checked at the end of the statement.
 */
export async function upsertUsersWithWallets(em: EntityManager, roles: ReadonlyMap<string, Role>): Promise<void> {
  const ids = pgArray([...roles.keys()]);
  await sql`with u as (insert into users (id, role) select * from unnest(${ids}::text[], ${pgArray([...roles.values()])}::text[])
                       on conflict (id) do update set role = excluded.role)
            insert into wallets (user_id) select unnest(${ids}::text[]) on conflict (user_id) do nothing`.execute(em.getKysely());
}

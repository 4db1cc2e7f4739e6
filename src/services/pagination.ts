import type { EntityName, FilterQuery } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { badInput } from '../errors.js';

/** A Relay-style connection page: what every `…Connection` type in the schema is. */
export interface Page<T> {
  edges: Array<{ cursor: string; node: T }>;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

/** The one bound on `first` for every connection. */
export const MAX_PAGE_SIZE = 100;

export function encodeCursor(id: string): string {
  return Buffer.from(`id:${id}`).toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString();
  const match = /^id:([1-9][0-9]{0,17})$/.exec(text);
  if (!match) throw badInput('after is not a cursor this API returned', 'after');
  return match[1];
}

export function checkFirst(first: number): void {
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) throw badInput(`first must be between 1 and ${MAX_PAGE_SIZE}`, 'first');
}

/**
 * Keyset pagination over a bigserial id, newest first: `where … and id < cursor order by id desc
 * limit first + 1` (the extra row says whether there is a next page). Used by every connection.
 */
export async function keysetPage<T extends { id: string }>(
  em: EntityManager,
  entity: EntityName<T>,
  where: FilterQuery<T>,
  first: number,
  after?: string | null,
): Promise<Page<T>> {
  checkFirst(first);
  const filter = (after == null ? where : { $and: [where, { id: { $lt: decodeCursor(after) } }] }) as FilterQuery<T>;
  const rows = await em.find(entity, filter, { orderBy: { id: 'desc' } as never, limit: first + 1 });
  const nodes = rows.slice(0, first) as T[];
  return {
    edges: nodes.map((node) => ({ cursor: encodeCursor(node.id), node })),
    pageInfo: { hasNextPage: rows.length > first, endCursor: nodes.length ? encodeCursor(nodes[nodes.length - 1].id) : null },
  };
}

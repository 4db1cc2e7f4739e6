import type { EntityName, FilterQuery } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { badInput } from './errors.js';

/** A Relay-style connection page: what every `…Connection` type in the schema is. */
export interface Page<T> {
  edges: Array<{ cursor: string; node: T }>;
  pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
}

/**
 * A page from its nodes (at most `first`), each node's cursor and whether rows lie beyond it either
 * way: every connection builds its page here, so each fills the whole PageInfo alike.
 */
export function pageOf<T>(nodes: T[], cursorOf: (node: T, index: number) => string, more: { next: boolean; previous: boolean }): Page<T> {
  const edges = nodes.map((node, i) => ({ cursor: cursorOf(node, i), node }));
  return {
    edges,
    pageInfo: {
      hasNextPage: more.next,
      hasPreviousPage: more.previous,
      startCursor: edges.length ? edges[0].cursor : null,
      endCursor: edges.length ? edges[edges.length - 1].cursor : null,
    },
  };
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
 *
 * `hasPreviousPage` is computed, not the `false` Relay allows for forward paging: true when `after`
 * was given and a row the filter matches lies at or before the cursor. The page is read with
 * `id <= cursor` and one row more, so in the usual case (the cursor's own row still matches) the
 * answer comes with the page, in the same query; only when that row is gone or no longer matches
 * (an order that left the filtered status) does a second query look for any newer row.
 */
export async function keysetPage<T extends { id: string }>(
  em: EntityManager,
  entity: EntityName<T>,
  where: FilterQuery<T>,
  first: number,
  after?: string | null,
): Promise<Page<T>> {
  checkFirst(first);
  const cursor = after == null ? null : decodeCursor(after);
  const and = (bound: object) => ({ $and: [where, { id: bound }] }) as FilterQuery<T>;
  const rows = (await em.find(entity, cursor === null ? where : and({ $lte: cursor }), {
    orderBy: { id: 'desc' } as never,
    limit: cursor === null ? first + 1 : first + 2,
  })) as T[];
  let previous = false;
  if (cursor !== null) {
    if (rows[0]?.id === cursor) {
      rows.shift();
      previous = true;
    } else {
      previous = (await em.findOne(entity, and({ $gt: cursor }), { orderBy: { id: 'asc' } as never })) !== null;
    }
  }
  return pageOf(rows.slice(0, first), (node) => encodeCursor(node.id), { next: rows.length > first, previous });
}

import { badInput } from '../errors.js';

export interface Page<T> {
  edges: Array<{ cursor: string; node: T }>;
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

export function encodeCursor(id: string): string {
  return Buffer.from(`id:${id}`).toString('base64url');
}

export function decodeCursor(cursor: string): string {
  const text = Buffer.from(cursor, 'base64url').toString();
  const match = /^id:([1-9][0-9]{0,17})$/.exec(text);
  if (!match) throw badInput('after is not a cursor this API returned', 'after');
  return match[1];
}

/** Rows fetched with `limit first + 1`, newest first by id: the page and whether there is another. */
export function toPage<R, T extends { id: string }>(rows: R[], first: number, map: (row: R) => T): Page<T> {
  const nodes = rows.slice(0, first).map(map);
  return {
    edges: nodes.map((node) => ({ cursor: encodeCursor(node.id), node })),
    pageInfo: { hasNextPage: rows.length > first, endCursor: nodes.length ? encodeCursor(nodes[nodes.length - 1].id) : null },
  };
}

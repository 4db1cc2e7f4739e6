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

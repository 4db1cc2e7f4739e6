import { GraphQLError, visit, type DocumentNode } from 'graphql';

const hasNul = (value: unknown): boolean => {
  if (typeof value === 'string') return value.includes('\0');
  if (Array.isArray(value)) return value.some(hasNul);
  if (value !== null && typeof value === 'object') return Object.values(value).some(hasNul);
  return false;
};

/**
 * PostgreSQL cannot store a NUL character in text, and a bound parameter holding one breaks the
 * wire message (08P01) instead of failing as bad input. Refused up front, in the document's string
 * literals and in the variables, for HTTP and WebSocket alike.
 */
export function nulCharacterError(document: DocumentNode, variables: unknown): GraphQLError | null {
  let found = hasNul(variables);
  if (!found) {
    visit(document, {
      StringValue(node) {
        if (node.value.includes('\0')) found = true;
      },
    });
  }
  if (!found) return null;
  return new GraphQLError('Invalid input: text may not contain NUL characters', {
    extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } },
  });
}

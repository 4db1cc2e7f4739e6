/** The error codes PRODUCT.md promises in `extensions.code`. */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'BAD_USER_INPUT'
  | 'CONFLICT'
  | 'SERVICE_UNAVAILABLE'
  | 'INTERNAL_SERVER_ERROR';

/**
 * A refusal by a business rule: what the caller may be told (`message`), a code from PRODUCT.md and
 * what identifies the input at fault (`details`: the field, the id). Services throw it and know
 * nothing of the wire; each edge maps it once: GraphQL to `extensions: { code, ...details }`
 * (src/http/graphql-errors.ts, over HTTP and graphql-ws alike), REST to `httpStatus[code]`.
 */
export class AppError extends Error {
  constructor(readonly code: ErrorCode, message: string, readonly details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'AppError';
  }
}

export const unauthenticated = (message = 'Sign in with a Bearer token') => new AppError('UNAUTHENTICATED', message);
export const forbidden = (message = 'Not allowed') => new AppError('FORBIDDEN', message);
export const notFound = (what: string, id: string) => new AppError('NOT_FOUND', `${what} ${id} not found`, { id });
export const badInput = (message: string, field?: string) =>
  new AppError('BAD_USER_INPUT', message, field ? { field } : {});
export const conflict = (message: string) => new AppError('CONFLICT', message);
/** Something outside (a payment provider) could not be reached; nothing was left half done. */
export const unavailable = (message: string) => new AppError('SERVICE_UNAVAILABLE', message);

/** The HTTP status the REST routes answer with for each code. */
export const httpStatus: Record<ErrorCode, number> = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  NOT_FOUND: 404,
  BAD_USER_INPUT: 400,
  CONFLICT: 409,
  SERVICE_UNAVAILABLE: 503,
  INTERNAL_SERVER_ERROR: 500,
};

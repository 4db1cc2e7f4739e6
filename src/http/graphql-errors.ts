import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type ExecutionResult, type GraphQLFormattedError } from 'graphql';
import { ArgumentValidationError } from 'type-graphql';
import type { AppServices } from '../app-services.js';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import { AppError } from '../errors.js';

/** PostgreSQL unreachable: a client may send the same request again later. */
export const databaseUnavailable = () =>
  new GraphQLError('The database is unavailable; try again shortly', { extensions: { code: 'SERVICE_UNAVAILABLE', http: { status: 503 } } });

/** The domain error behind a GraphQL error (thrown by a resolver, or the error itself), if it is one. */
function domainError(error: unknown): AppError | undefined {
  if (error instanceof AppError) return error;
  const original = (error as { originalError?: unknown } | null)?.originalError;
  return original instanceof AppError ? original : undefined;
}

/** What PRODUCT.md promises a client in `extensions` for a domain error: its code, then its details. */
const extensionsOf = (err: AppError): Record<string, unknown> => ({ code: err.code, ...err.details });

/**
 * A GraphQL error whose cause is a domain error, as the client sees it: same message, locations and
 * path, the code in `extensions`. Any other error is returned as it is. For the paths Apollo's
 * formatter does not see (graphql-ws results and errors, subscription events): errors only, so a
 * result without them costs one check.
 */
export function withCode(error: GraphQLError): GraphQLError {
  const domain = domainError(error);
  if (!domain) return error;
  const mapped = new GraphQLError(error.message, { path: error.path, originalError: domain, extensions: extensionsOf(domain) });
  // graphql-jit's errors carry their locations without nodes to compute them from.
  if (error.locations) (mapped as { locations?: unknown }).locations = error.locations;
  return mapped;
}

/** `withCode` over a result's errors; the result itself when none is a domain error. */
export function resultWithCodes<R extends ExecutionResult>(result: R): R {
  if (!result.errors?.some((e) => domainError(e))) return result;
  return { ...result, errors: result.errors.map(withCode) };
}

/** The code a GraphQL error answers with, for the request log (before the formatter has run). */
export function codeOf(error: GraphQLError): unknown {
  return domainError(error)?.code ?? error.extensions?.code ?? 'INTERNAL_SERVER_ERROR';
}

/** Codes a client may see as they are: ours (PRODUCT.md) and the standard GraphQL request failures. */
const PASS_THROUGH = new Set([
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'BAD_USER_INPUT',
  'CONFLICT',
  'SERVICE_UNAVAILABLE',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'QUERY_TOO_DEEP',
  'QUERY_TOO_COSTLY',
  'QUERY_TOO_COMPLEX',
]);

/** SQLSTATE class 22, "data exception", as the driver or MikroORM's wrapper reports it. */
function isDataException(err: unknown): boolean {
  const e = err as { code?: unknown; sqlState?: unknown } | null;
  const state = typeof e?.sqlState === 'string' ? e.sqlState : typeof e?.code === 'string' ? e.code : '';
  return /^22[0-9A-Z]{3}$/.test(state);
}

export function formatError(services: AppServices) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    const domain = domainError(original) ?? domainError(error);
    if (domain) {
      // Apollo adds the stack trace in development only (includeStacktraceInErrorResponses).
      const { stacktrace } = formatted.extensions ?? {};
      const extensions = extensionsOf(domain);
      return { ...formatted, extensions: stacktrace === undefined ? extensions : { ...extensions, stacktrace } };
    }
    if (original instanceof ArgumentValidationError) {
      const details = original.extensions.validationErrors as Array<{ property: string; constraints?: Record<string, string> }>;
      return {
        message: `Invalid input: ${details.flatMap((d) => Object.values(d.constraints ?? {})).join('; ')}`,
        path: formatted.path,
        extensions: {
          code: 'BAD_USER_INPUT',
          validationErrors: details.map((d) => ({ property: d.property, constraints: d.constraints })),
        },
      };
    }
    if (isDatabaseUnavailable(original)) {
      return { message: databaseUnavailable().message, path: formatted.path, extensions: { code: 'SERVICE_UNAVAILABLE' } };
    }
    if (isDataException(original)) {
      // PostgreSQL refused a value (a NUL character in text, a number out of range): the caller's input.
      return {
        message: 'Invalid input: a value cannot be stored (text with a NUL character, or out of range)',
        path: formatted.path,
        extensions: { code: 'BAD_USER_INPUT' },
      };
    }
    const code = formatted.extensions?.code;
    if (typeof code === 'string' && PASS_THROUGH.has(code)) {
      if (services.config.nodeEnv === 'development') return formatted;
      const extensions = { ...formatted.extensions };
      delete extensions.stacktrace;
      return { ...formatted, extensions };
    }
    services.log.error({ err: original, path: formatted.path }, 'unexpected GraphQL error');
    return {
      message: services.config.nodeEnv === 'development' ? formatted.message : 'Internal server error',
      path: formatted.path,
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    };
  };
}

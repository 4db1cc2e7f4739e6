import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { ArgumentValidationError } from 'type-graphql';
import type { AppServices } from '../app-services.js';
import { isDatabaseUnavailable } from '../db/unavailable.js';

/** PostgreSQL unreachable: a client may send the same request again later. */
export const databaseUnavailable = () =>
  new GraphQLError('The database is unavailable; try again shortly', { extensions: { code: 'SERVICE_UNAVAILABLE', http: { status: 503 } } });


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
      const { stacktrace: _drop, ...extensions } = formatted.extensions ?? {};
      return services.config.nodeEnv === 'development' ? formatted : { ...formatted, extensions };
    }
    services.log.error({ err: original, path: formatted.path }, 'unexpected GraphQL error');
    return {
      message: services.config.nodeEnv === 'development' ? formatted.message : 'Internal server error',
      path: formatted.path,
      extensions: { code: 'INTERNAL_SERVER_ERROR' },
    };
  };
}

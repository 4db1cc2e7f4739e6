import type { Server } from 'node:http';
import { ApolloServer, type ApolloServerPlugin } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, parse, specifiedRules, validate, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import { WebSocketServer } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { ArgumentValidationError } from 'type-graphql';
import { createContext, type Context } from '../context.js';
import { AppError } from '../errors.js';
import type { Identity } from '../services/users.js';
import type { Services } from '../services/index.js';
import { queryLimits } from '../schema/limits.js';

/** Codes a client may see as they are: ours (PRODUCT.md) and the standard GraphQL request failures. */
const PASS_THROUGH = new Set([
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'BAD_USER_INPUT',
  'CONFLICT',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'QUERY_TOO_DEEP',
  'QUERY_TOO_COSTLY',
]);

export function formatError(services: Services) {
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

/** Apollo for HTTP; errors found while reading the token answer 401 with their code. */
export async function createApollo(services: Services, schema: GraphQLSchema, httpServer: Server, wsCleanup: () => Promise<void>) {
  const disposeWs: ApolloServerPlugin = {
    async serverWillStart() {
      return { drainServer: wsCleanup };
    },
  };
  const apollo = new ApolloServer<Context>({
    schema,
    introspection: true,
    validationRules: [queryLimits(services.config.graphqlMaxDepth, services.config.graphqlMaxCost)],
    includeStacktraceInErrorResponses: services.config.nodeEnv === 'development',
    formatError: formatError(services),
    plugins: [ApolloServerPluginDrainHttpServer({ httpServer }), disposeWs, ApolloServerPluginLandingPageDisabled()],
  });
  await apollo.start();
  return apollo;
}

export async function httpContext(services: Services, authorization: unknown, requestId: unknown): Promise<Context> {
  try {
    return await createContext(services, authorization, typeof requestId === 'string' ? requestId.slice(0, 100) : undefined);
  } catch (err) {
    if (err instanceof AppError) {
      throw new GraphQLError(err.message, { extensions: { code: err.code, http: { status: 401 } } });
    }
    throw err;
  }
}

/**
 * graphql-ws on the same HTTP server and path. The token is read once, in `onConnect`, from
 * `connectionParams.authorization`; a connection without a valid one is closed (4403 Forbidden).
 * Every subscription is checked against the same depth and cost limits as HTTP queries.
 */
export function createWsServer(services: Services, schema: GraphQLSchema, httpServer: Server) {
  const wsServer = new WebSocketServer({ server: httpServer, path: '/graphql' });
  const limits = [...specifiedRules, queryLimits(services.config.graphqlMaxDepth, services.config.graphqlMaxCost)];
  type Extra = { identity?: Identity };
  const cleanup = useServer<Record<string, unknown> | undefined, Extra>(
    {
      schema,
      onConnect: async (ctx) => {
        const params = ctx.connectionParams ?? {};
        const header = params.authorization ?? params.Authorization;
        try {
          const c = await createContext(services, header);
          if (!c.user) return false;
          ctx.extra.identity = c.user;
          return true;
        } catch {
          return false;
        }
      },
      onSubscribe: async (ctx, _id, payload) => {
        let document;
        try {
          document = parse(payload.query);
        } catch (err) {
          return [new GraphQLError((err as Error).message, { extensions: { code: 'GRAPHQL_PARSE_FAILED' } })];
        }
        const errors = validate(schema, document, limits);
        if (errors.length > 0) return errors;
        const contextValue = await createContext(services, undefined);
        contextValue.user = ctx.extra.identity ?? null;
        return { schema, document, variableValues: payload.variables, operationName: payload.operationName, contextValue };
      },
      onError: (_ctx, _id, _payload, errors) => {
        services.log.warn({ errors: errors.map((e) => e.message) }, 'subscription error');
      },
    },
    wsServer,
  );
  return { wsServer, dispose: async () => void (await cleanup.dispose()) };
}

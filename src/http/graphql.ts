import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { ApolloServer, HeaderMap, type ApolloServerPlugin } from '@apollo/server';
import type { NextFunction, Request, Response } from 'express';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { GraphQLError, type GraphQLSchema } from 'graphql';
import { createContext, type Context } from '../context.js';
import { AppError } from '../errors.js';
import type { AppServices } from '../app-services.js';
import { limitErrors, type QueryLimits } from '../schema/limits.js';
import { nulCharacterError } from './input-guard.js';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import { databaseUnavailable, formatError } from './graphql-errors.js';

/** Apollo for HTTP; errors found while reading the token answer 401 with their code. */
export async function createApollo(
  services: AppServices,
  schema: GraphQLSchema,
  httpServer: Server,
  wsCleanup: () => Promise<void>,
  onOperation: (operation: string | null | undefined, failed: boolean) => void = () => {},
) {
  const disposeWs: ApolloServerPlugin = {
    async serverWillStart() {
      return { drainServer: wsCleanup };
    },
  };
  const limits: QueryLimits = {
    maxDepth: services.config.graphqlMaxDepth,
    maxCost: services.config.graphqlMaxCost,
    maxFragments: services.config.graphqlMaxFragments,
  };
  // Hostile input refused before anything runs. The limits need the request's variables (a `first: $n`
  // costs its value), which validation rules never see: they run here, after graphql's own validation,
  // as graphql-ws runs them in `onSubscribe`.
  const refuseHostile: ApolloServerPlugin<Context> = {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, request }) {
          const [refused] = limitErrors(document, request.operationName, request.variables, limits);
          if (refused) throw new GraphQLError(refused.message, { nodes: refused.nodes, extensions: { ...refused.extensions, http: { status: 400 } } });
          const nul = nulCharacterError(document, request.variables);
          if (nul) throw nul;
        },
      };
    },
  };
  // One line per operation: who, what, the names of its variables, and how it ended. Never the
  // variables' values at info: they carry what clients type (addresses, amounts, messages); at debug,
  // one more line has them.
  const requestLog: ApolloServerPlugin<Context> = {
    async requestDidStart() {
      return {
        async willSendResponse({ contextValue, request, errors, operationName }) {
          // The name as resolved from the document: a client-sent name on a query that does not validate
          // would make labels without bound.
          onOperation(operationName, (errors?.length ?? 0) > 0);
          const requestId = contextValue.requestId;
          const operation = request.operationName ?? undefined;
          services.log.info(
            {
              requestId,
              userId: contextValue.user?.id,
              operation,
              variables: request.variables ? Object.keys(request.variables) : undefined,
              errors: errors?.map((e) => e.extensions?.code ?? 'INTERNAL_SERVER_ERROR'),
            },
            'graphql request',
          );
          if (request.variables) services.log.debug({ requestId, operation, variables: request.variables }, 'graphql request variables');
        },
      };
    },
  };
  // GraphQL over HTTP: a request that never executed (the document does not parse or validate, or its
  // variables cannot be coerced) answers 400 only under application/graphql-response+json; a client
  // that accepts application/json gets 200 with the errors, as graphql-http's audits expect.
  const requestErrorsAs200: ApolloServerPlugin<Context> = {
    async requestDidStart({ request }) {
      return {
        async willSendResponse({ response, errors }) {
          if (response.http.status !== 400 || !errors?.length) return;
          if (prefersGraphqlResponseJson(request.http?.headers.get('accept'))) return;
          const notExecuted = errors.every((e) => typeof e.extensions?.code === 'string' && NOT_EXECUTED.has(e.extensions.code));
          if (notExecuted) response.http.status = 200;
        },
      };
    },
  };
  const apollo = new ApolloServer<Context>({
    schema,
    // The server's own SIGTERM/SIGINT handling stops everything in order (src/main.ts). Apollo's, on by
    // default outside NODE_ENV=test, stopped only Apollo and then raised the signal again, which killed
    // the process before the rest of the graceful stop had run.
    stopOnTerminationSignals: false,
    introspection: true,
    // The parser stops past this many tokens, before any validation rule runs: the cheapest first wall.
    // 5,000 by default: graphql's own worst case (one field repeated at one level, compared pairwise)
    // is bounded by its validation work budget, ~106 ms from 1,500 tokens up and still 82 ms at 1,000
    // (measured), so a lower default would refuse large real queries for little gain.
    parseOptions: { maxTokens: services.config.graphqlMaxTokens },
    includeStacktraceInErrorResponses: services.config.nodeEnv === 'development',
    formatError: formatError(services),
    plugins: [ApolloServerPluginDrainHttpServer({ httpServer }), disposeWs, refuseHostile, requestLog, requestErrorsAs200, ApolloServerPluginLandingPageDisabled()],
  });
  await apollo.start();
  return apollo;
}

/**
 * Codes of a request that never executed. The query limits' codes are among them: they were validation
 * errors (answered 200 to application/json) before the limits moved to `didResolveOperation`.
 */
const NOT_EXECUTED = new Set(['GRAPHQL_PARSE_FAILED', 'GRAPHQL_VALIDATION_FAILED', 'BAD_USER_INPUT', 'QUERY_TOO_DEEP', 'QUERY_TOO_COSTLY', 'QUERY_TOO_COMPLEX']);

/** Whether Apollo answers this Accept header with application/graphql-response+json (listed first, or only). */
function prefersGraphqlResponseJson(accept: string | undefined | null): boolean {
  if (!accept) return false;
  const types = accept.split(',').map((t) => t.split(';')[0].trim().toLowerCase());
  const gql = types.indexOf('application/graphql-response+json');
  if (gql === -1) return false;
  const json = types.findIndex((t) => t === 'application/json' || t === 'application/*' || t === '*/*');
  return json === -1 || gql < json;
}

/** What the HTTP handlers need to build a request's context. */
export type RequestContext = (req: IncomingMessage) => Promise<Context>;

/** One GraphQL request over HTTP, its body already read, through Apollo; the answer written with `res.end`. */
export async function answerOverHttp(apollo: ApolloServer<Context>, context: RequestContext, req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
  const headers = new HeaderMap();
  for (const [key, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
  }
  const url = req.url ?? '';
  const query = url.indexOf('?');
  const answer = await apollo.executeHTTPGraphQLRequest({
    httpGraphQLRequest: { method: (req.method ?? 'GET').toUpperCase(), headers, search: query === -1 ? '' : url.slice(query), body },
    context: () => context(req),
  });
  for (const [key, value] of answer.headers) res.setHeader(key, value);
  res.statusCode = answer.status ?? 200;
  if (answer.body.kind === 'complete') {
    res.end(answer.body.string);
    return;
  }
  for await (const chunk of answer.body.asyncIterator) res.write(chunk);
  res.end();
}

/**
 * GraphQL over HTTP on Apollo, as Express middleware (after `express.json`). In place of
 * `@as-integrations/express5`, whose legacy `url.parse` of every URL was 2.8% of the server's time in
 * a flash sale and whose `res.send` hashed every answer for an ETag (CPU profile of `bench:seckill`,
 * docs/benchmarks.md); GraphQL answers are not revalidated by ETag.
 */
export function graphqlOverHttp(apollo: ApolloServer<Context>, context: RequestContext) {
  return async (req: Request, res: Response, next: NextFunction): Promise<void> => {
    try {
      await answerOverHttp(apollo, context, req, res, req.body);
    } catch (err) {
      next(err);
    }
  };
}


export async function httpContext(services: AppServices, authorization: unknown, requestId: unknown, clientIp?: string): Promise<Context> {
  try {
    const ctx = await createContext(services, authorization, typeof requestId === 'string' ? requestId.slice(0, 100) : undefined);
    ctx.clientIp = clientIp;
    return ctx;
  } catch (err) {
    if (err instanceof AppError) {
      throw new GraphQLError(err.message, { extensions: { code: err.code, http: { status: 401 } } });
    }
    if (isDatabaseUnavailable(err)) throw databaseUnavailable();
    throw err;
  }
}

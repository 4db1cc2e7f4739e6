import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { ApolloServer, HeaderMap, type ApolloServerPlugin } from '@apollo/server';
import type { NextFunction, Request, Response } from 'express';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { GraphQLError, getOperationAST, parse, type DocumentNode, type GraphQLSchema } from 'graphql';
import { createContext, type Context } from '../context.js';
import { AppError } from '../errors.js';
import type { AppServices } from '../app-services.js';
import { limitErrors, type QueryLimits } from '../schema/limits.js';
import { nulCharacterError } from './input-guard.js';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import { codeOf, databaseUnavailable, formatError } from './graphql-errors.js';

/** Apollo for HTTP; errors found while reading the token answer 401 with their code. */
export async function createApollo(
  services: AppServices,
  schema: GraphQLSchema,
  httpServer: Server,
  wsCleanup: () => Promise<void>,
  onOperation: (operation: string | null | undefined, failed: boolean) => void = () => {},
) {
  const disposeWs: ApolloServerPlugin = {
    serverWillStart() {
      return Promise.resolve({ drainServer: wsCleanup });
    },
  };
  const limits: QueryLimits = {
    maxDepth: services.config.graphqlMaxDepth,
    maxCost: services.config.graphqlMaxCost,
    maxFragments: services.config.graphqlMaxFragments,
  };
  // The query limits run before Apollo, in `answerOverHttp` (the one place HTTP requests pass), with
  // what they need from here.
  const guard: HttpGuard = {
    limits,
    maxTokens: services.config.graphqlMaxTokens,
    format: formatError(services),
    refused: (req, request, operationName, code) => {
      onOperation(operationName, true);
      const variables = request.variables ? Object.keys(request.variables) : undefined;
      services.log.info({ requestId: req.headers['x-request-id'], operation: request.operationName, variables, errors: [code] }, 'graphql request');
    },
  };
  // Text with a NUL character, which PostgreSQL refuses, refused before anything runs.
  const refuseHostile: ApolloServerPlugin<Context> = {
    requestDidStart() {
      return Promise.resolve({
        didResolveOperation({ document, request }) {
          const nul = nulCharacterError(document, request.variables);
          return nul ? Promise.reject(nul) : Promise.resolve();
        },
      });
    },
  };
  // One line per operation: who, what, the names of its variables, and how it ended. Never the
  // variables' values at info: they carry what clients type (addresses, amounts, messages); at debug,
  // one more line has them.
  const requestLog: ApolloServerPlugin<Context> = {
    requestDidStart() {
      return Promise.resolve({
        willSendResponse({ contextValue, request, errors, operationName }) {
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
              errors: errors?.map(codeOf),
            },
            'graphql request',
          );
          if (request.variables) services.log.debug({ requestId, operation, variables: request.variables }, 'graphql request variables');
          return Promise.resolve();
        },
      });
    },
  };
  // GraphQL over HTTP: a request that never executed (the document does not parse or validate, or its
  // variables cannot be coerced) answers 400 only under application/graphql-response+json; a client
  // that accepts application/json gets 200 with the errors, as graphql-http's audits expect.
  const requestErrorsAs200: ApolloServerPlugin<Context> = {
    requestDidStart({ request }) {
      return Promise.resolve({
        willSendResponse({ response, errors }) {
          if (response.http.status === 400 && errors?.length && !prefersGraphqlResponseJson(request.http?.headers.get('accept'))) {
            const notExecuted = errors.every((e) => typeof e.extensions?.code === 'string' && NOT_EXECUTED.has(e.extensions.code));
            if (notExecuted) response.http.status = 200;
          }
          return Promise.resolve();
        },
      });
    },
  };
  const apollo = new ApolloServer<Context>({
    schema,
    // The server's own SIGTERM/SIGINT handling stops everything in order (src/main.ts). Apollo's, on by
    // default outside NODE_ENV=test, stopped only Apollo and then raised the signal again, which killed
    // the process before the rest of the graceful stop had run.
    stopOnTerminationSignals: false,
    introspection: true,
    // Automatic persisted queries off: a request naming a document by its hash carries no text for
    // `answerOverHttp` to check, so one registered with `first: $n` at n = 2 could run again unchecked
    // with n = 100,000. No client of ours uses them; Apollo Client's persisted-query link answered
    // PERSISTED_QUERY_NOT_SUPPORTED sends the text from then on.
    persistedQueries: false,
    // The parser stops past this many tokens, before any validation rule runs: the cheapest first wall.
    // 5,000 by default: graphql's own worst case (one field repeated at one level, compared pairwise)
    // is bounded by its validation work budget, ~106 ms from 1,500 tokens up and still 82 ms at 1,000
    // (measured), so a lower default would refuse large real queries for little gain.
    parseOptions: { maxTokens: services.config.graphqlMaxTokens },
    includeStacktraceInErrorResponses: services.config.nodeEnv === 'development',
    formatError: formatError(services),
    // What Apollo itself logs (a document it could not cache, a plugin that threw) goes through pino
    // like every other line, not to the console.
    logger: apolloLogger(services.log),
    plugins: [ApolloServerPluginDrainHttpServer({ httpServer }), disposeWs, refuseHostile, requestLog, requestErrorsAs200, ApolloServerPluginLandingPageDisabled()],
  });
  guards.set(apollo, guard);
  await apollo.start();
  return apollo;
}

/** Apollo's Logger (a string at each of four levels) on pino. */
function apolloLogger(log: AppServices['log']) {
  const at = (level: 'debug' | 'info' | 'warn' | 'error') => (message?: unknown) => log[level]({ source: 'apollo' }, String(message));
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Codes of a request that never executed (the query limits' are answered before Apollo, with the same statuses). */
const NOT_EXECUTED = new Set(['GRAPHQL_PARSE_FAILED', 'GRAPHQL_VALIDATION_FAILED', 'BAD_USER_INPUT']);

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

/** A GraphQL request as Apollo reads it from a POST body or a GET's search parameters. */
interface GraphqlRequest {
  query: string;
  operationName?: string;
  variables?: Record<string, unknown>;
}

/** What `answerOverHttp` checks before Apollo, for each Apollo server `createApollo` made. */
interface HttpGuard {
  limits: QueryLimits;
  maxTokens: number;
  format: ReturnType<typeof formatError>;
  /** A request refused by the limits: its metric and its log line, as the requestLog plugin writes them. */
  refused: (req: IncomingMessage, request: GraphqlRequest, operationName: string | undefined, code: unknown) => void;
}
const guards = new WeakMap<ApolloServer<Context>, HttpGuard>();

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value) && !Buffer.isBuffer(value);

/** The request in a body or search as Apollo reads it; undefined for one Apollo refuses before parsing (it says why). */
function graphqlRequest(method: string, search: string, body: unknown): GraphqlRequest | undefined {
  if (method === 'POST') {
    if (!isRecord(body) || typeof body.query !== 'string') return undefined;
    const { query, operationName, variables } = body;
    if ((operationName != null && typeof operationName !== 'string') || (variables != null && !isRecord(variables))) return undefined;
    return { query, operationName: operationName ?? undefined, variables: variables ?? undefined };
  }
  if (method !== 'GET') return undefined;
  const params = new URLSearchParams(search);
  const [query, ...more] = params.getAll('query');
  if (query === undefined || more.length > 0 || params.getAll('operationName').length > 1 || params.getAll('variables').length > 1) return undefined;
  const text = params.get('variables');
  let variables: unknown;
  if (text !== null) {
    try {
      variables = JSON.parse(text);
    } catch {
      return undefined;
    }
    if (!isRecord(variables)) return undefined;
  }
  return { query, operationName: params.get('operationName') ?? undefined, variables: variables as Record<string, unknown> | undefined };
}

/**
 * The query limits, before Apollo: parsed (with the token limit) and checked in time linear in the
 * document, so a refused document never reaches graphql's validation, whose comparison of fields
 * repeated under one key is quadratic (1,249 copies of `me { id }`, 12 KB: ~100 ms of validation
 * per request before; see src/schema/limits.ts). A document that passes is parsed again by Apollo
 * (or taken from its cache of validated documents): the parse here costs ~6 µs for a typical query
 * (an auction page with its bids, 170 characters; measured), not worth a seam Apollo does not have.
 * A refusal answers as Apollo answers a document that does not validate: 200 with the errors to
 * application/json, 400 to a client preferring application/graphql-response+json, 406 to one
 * accepting neither. It comes before Apollo reads the token, so it carries no user.
 */
function refuseOverLimits(guard: HttpGuard, req: IncomingMessage, res: ServerResponse, method: string, search: string, body: unknown): boolean {
  const request = graphqlRequest(method, search, body);
  if (!request) return false;
  let document: DocumentNode;
  try {
    document = parse(request.query, { maxTokens: guard.maxTokens });
  } catch {
    return false; // Apollo refuses it as cheaply, with its own message (GRAPHQL_PARSE_FAILED)
  }
  const [refused] = limitErrors(document, request.operationName, request.variables, guard.limits);
  if (!refused) return false;
  guard.refused(req, request, getOperationAST(document, request.operationName)?.name?.value, refused.extensions.code);
  const accept = req.headers.accept;
  let status = prefersGraphqlResponseJson(accept) ? 400 : 200;
  let type = status === 400 ? 'application/graphql-response+json; charset=utf-8' : 'application/json; charset=utf-8';
  let error = guard.format(refused.toJSON(), refused);
  if (accept && !acceptsJson(accept)) {
    status = 406;
    type = 'application/json; charset=utf-8';
    error = {
      message: "An 'accept' header was provided for this request which does not accept application/json; charset=utf-8 or application/graphql-response+json; charset=utf-8",
      extensions: { code: 'BAD_REQUEST' },
    };
  }
  res.statusCode = status;
  res.setHeader('content-type', type);
  res.end(`${JSON.stringify({ errors: [error] })}\n`);
  return true;
}

/** Whether an Accept header takes application/json or application/graphql-response+json (a range with q=0 does not). */
function acceptsJson(accept: string): boolean {
  return accept.split(',').some((range) => {
    const [type, ...params] = range.split(';').map((p) => p.trim().toLowerCase());
    if (params.some((p) => /^q=0(\.0*)?$/.test(p))) return false;
    return type === '*/*' || type === 'application/*' || type === 'application/json' || type === 'application/graphql-response+json';
  });
}

/** One GraphQL request over HTTP, its body already read, through Apollo; the answer written with `res.end`. */
export async function answerOverHttp(apollo: ApolloServer<Context>, context: RequestContext, req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
  const url = req.url ?? '';
  const query = url.indexOf('?');
  const method = (req.method ?? 'GET').toUpperCase();
  const search = query === -1 ? '' : url.slice(query);
  const guard = guards.get(apollo);
  if (guard && refuseOverLimits(guard, req, res, method, search, body)) return;
  const headers = new HeaderMap();
  for (const [key, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
  }
  const answer = await apollo.executeHTTPGraphQLRequest({
    httpGraphQLRequest: { method, headers, search, body },
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

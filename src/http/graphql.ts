import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { ApolloServer, HeaderMap, type ApolloServerPlugin } from '@apollo/server';
import type { NextFunction, Request, Response } from 'express';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { unwrapResolverError } from '@apollo/server/errors';
import { GraphQLError, parse, specifiedRules, validate, type GraphQLFormattedError, type GraphQLSchema } from 'graphql';
import { WebSocketServer, type WebSocket } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { ArgumentValidationError } from 'type-graphql';
import { createContext, type Context } from '../context.js';
import { AppError } from '../errors.js';
import type { Identity } from '../services/users.js';
import type { AppServices } from '../app-services.js';
import { queryLimits } from '../schema/limits.js';
import { nulCharacterError } from './input-guard.js';
import { guardWrites, type SendText } from './ws-writes.js';
import { sharedSubscribe } from './subscriptions.js';
import { isDatabaseUnavailable } from '../db/unavailable.js';

/** PostgreSQL unreachable: a client may send the same request again later. */
const databaseUnavailable = () =>
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
]);

/** SQLSTATE class 22, "data exception", as the driver or MikroORM's wrapper reports it. */
function isDataException(err: unknown): boolean {
  const e = err as { code?: unknown; sqlState?: unknown } | null;
  const state = typeof e?.sqlState === 'string' ? e.sqlState : typeof e?.code === 'string' ? e.code : '';
  return /^22[0-9A-Z]{3}$/.test(state);
}

/** The query limits' own codes: Apollo reports every validation error as GRAPHQL_VALIDATION_FAILED. */
const LIMIT_CODES = new Set(['QUERY_TOO_DEEP', 'QUERY_TOO_COSTLY']);

function limitCode(error: unknown): string | undefined {
  const source = error instanceof GraphQLError ? error.originalError : undefined;
  const own = source instanceof GraphQLError ? source.extensions?.code : undefined;
  return typeof own === 'string' && LIMIT_CODES.has(own) ? own : undefined;
}

export function formatError(services: AppServices) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    // A query refused by its depth or cost answers the limit's code over HTTP, as over graphql-ws.
    const limit = limitCode(error);
    if (limit) formatted = { ...formatted, extensions: { ...formatted.extensions, code: limit } };
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
  // One line per operation: who, what, which ids in its variables, and how it ended.
  const requestLog: ApolloServerPlugin<Context> = {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, request }) {
          const nul = nulCharacterError(document, request.variables);
          if (nul) throw nul;
        },
        async willSendResponse({ contextValue, request, errors, operationName }) {
          // The name as resolved from the document: a client-sent name on a query that does not validate
          // would make labels without bound.
          onOperation(operationName, (errors?.length ?? 0) > 0);
          services.log.info(
            {
              requestId: contextValue.requestId,
              userId: contextValue.user?.id,
              operation: request.operationName ?? undefined,
              variables: request.variables,
              errors: errors?.map((e) => e.extensions?.code ?? 'INTERNAL_SERVER_ERROR'),
            },
            'graphql request',
          );
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
          const notExecuted = errors.every((e) => {
            const code = e.extensions?.code;
            return code === 'GRAPHQL_PARSE_FAILED' || code === 'GRAPHQL_VALIDATION_FAILED' || code === 'BAD_USER_INPUT';
          });
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
    validationRules: [queryLimits(services.config.graphqlMaxDepth, services.config.graphqlMaxCost)],
    includeStacktraceInErrorResponses: services.config.nodeEnv === 'development',
    formatError: formatError(services),
    plugins: [ApolloServerPluginDrainHttpServer({ httpServer }), disposeWs, requestLog, requestErrorsAs200, ApolloServerPluginLandingPageDisabled()],
  });
  await apollo.start();
  return apollo;
}

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
async function answerOverHttp(apollo: ApolloServer<Context>, context: RequestContext, req: IncomingMessage, res: ServerResponse, body: unknown): Promise<void> {
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

/** `application/json`, with no parameter or `charset=utf-8`: what the direct path reads itself. */
const PLAIN_JSON = /^application\/json\s*(;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;

function sendJsonError(res: ServerResponse, status: number, code: string, message: string, close = false): void {
  const body = JSON.stringify({ errors: [{ message, extensions: { code } }] });
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
    // Refused before its end: the rest of the body is not read, the connection not kept.
    ...(close ? { Connection: 'close' } : {}),
  });
  res.end(body);
}

/**
 * The common request, `POST /graphql` with a plain JSON body, straight from the HTTP server to Apollo:
 * Express's router, `express.json` (body-parser, raw-body, type-is) and its request and response
 * wrappers cost ~8% of the server's thread per request in a flash sale (CPU profile of
 * `bench:seckill`). Answers as the Express route does: a body over `limitBytes` is 413
 * PAYLOAD_TOO_LARGE, JSON that does not parse (or is not an object or array) 400 BAD_REQUEST, both as
 * GraphQL JSON. Returns false, touching nothing, for every other request (another path or method,
 * another content type, a compressed body), which then goes to Express.
 */
export function graphqlJsonPost(apollo: ApolloServer<Context>, context: RequestContext, limitBytes: number, onError: (err: unknown) => void) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'POST' || (req.url !== '/graphql' && !req.url?.startsWith('/graphql?'))) return false;
    const type = req.headers['content-type'];
    if (!type || !PLAIN_JSON.test(type) || req.headers['content-encoding']) return false;
    const declared = Number(req.headers['content-length']);
    if (declared > limitBytes) {
      sendJsonError(res, 413, 'PAYLOAD_TOO_LARGE', 'request entity too large', true);
      return true;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      if (refused) return;
      size += chunk.length;
      if (size > limitBytes) {
        refused = true;
        chunks.length = 0;
        sendJsonError(res, 413, 'PAYLOAD_TOO_LARGE', 'request entity too large', true);
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => undefined); // the client went away: nothing to answer
    req.on('end', () => {
      if (refused) return;
      let text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString('utf8');
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a byte-order mark, as express.json drops it
      let body: unknown;
      try {
        // As express.json's strict mode: an object or an array, nothing else.
        const first = /\S/.exec(text)?.[0];
        if (first !== '{' && first !== '[') throw new SyntaxError(first === undefined ? 'Unexpected end of JSON input' : `Unexpected token '${first}', the body must be a JSON object`);
        body = JSON.parse(text);
      } catch (err) {
        sendJsonError(res, 400, 'BAD_REQUEST', (err as Error).message);
        return;
      }
      answerOverHttp(apollo, context, req, res, body).catch((err) => {
        onError(err);
        if (res.headersSent) res.destroy();
        else sendJsonError(res, 500, 'INTERNAL_SERVER_ERROR', 'Internal server error');
      });
    });
    return true;
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

/**
 * graphql-ws on the same HTTP server and path. The token is read once, in `onConnect`, from
 * `connectionParams.authorization`; a connection without a valid one is closed (4403 Forbidden).
 * Every subscription is checked against the same depth and cost limits as HTTP queries. A socket
 * holding more than WS_MAX_BUFFERED_BYTES its client has not read is closed (1013, see ws-writes.ts).
 */
export function createWsServer(services: AppServices, schema: GraphQLSchema, httpServer: Server, onSlowClose: () => void = () => {}) {
  const wsServer = new WebSocketServer({ server: httpServer, path: '/graphql' });
  const maxBufferedBytes = services.config.wsMaxBufferedBytes;
  // Each socket's `sendText` (ws-writes.ts), for its subscriptions' results.
  const senders = new WeakMap<WebSocket, SendText>();
  wsServer.on('connection', (socket, request) => {
    const sendText = guardWrites(socket, {
      maxBufferedBytes,
      onSlowClose: (bufferedBytes) => {
        services.log.warn({ bufferedBytes, maxBufferedBytes, remoteAddress: request.socket.remoteAddress }, 'closed a WebSocket that does not read its events');
        onSlowClose();
      },
    });
    if (sendText) senders.set(socket, sendText);
  });
  const limits = [...specifiedRules, queryLimits(services.config.graphqlMaxDepth, services.config.graphqlMaxCost)];
  type Extra = { identity?: Identity; subscriptions?: Set<string> };
  // Each open socket's running subscriptions, for the metrics.
  const live = new Set<Set<string>>();
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
          ctx.extra.subscriptions = new Set();
          live.add(ctx.extra.subscriptions);
          return true;
        } catch (err) {
          // Not the token's fault: 1013 Try Again Later, not 4403 Forbidden (the later close is a no-op).
          if (isDatabaseUnavailable(err)) ctx.extra.socket.close(1013, databaseUnavailable().message);
          return false;
        }
      },
      onSubscribe: async (ctx, id, payload) => {
        let document;
        try {
          document = parse(payload.query);
        } catch (err) {
          return [new GraphQLError((err as Error).message, { extensions: { code: 'GRAPHQL_PARSE_FAILED' } })];
        }
        const errors = validate(schema, document, limits);
        if (errors.length > 0) return errors;
        const nul = nulCharacterError(document, payload.variables);
        if (nul) return [nul];
        const contextValue = await createContext(services, undefined);
        contextValue.user = ctx.extra.identity ?? null;
        contextValue.now = () => services.clock.now();
        contextValue.operationText = JSON.stringify([payload.query, payload.operationName]);
        contextValue.operationKey = JSON.stringify([payload.query, payload.operationName, payload.variables, contextValue.user?.role]);
        const socket = ctx.extra.socket;
        contextValue.subscriber = { id, send: senders.get(socket) ?? ((text) => socket.send(text)) };
        return { schema, document, variableValues: payload.variables, operationName: payload.operationName, contextValue };
      },
      subscribe: sharedSubscribe,
      onOperation: (ctx, id) => void ctx.extra.subscriptions?.add(id),
      onComplete: (ctx, id) => void ctx.extra.subscriptions?.delete(id),
      onClose: (ctx) => {
        if (ctx.extra.subscriptions) live.delete(ctx.extra.subscriptions);
      },
      onError: (_ctx, _id, _payload, errors) => {
        services.log.warn({ errors: errors.map((e) => e.message) }, 'subscription error');
      },
    },
    wsServer,
  );
  return {
    wsServer,
    dispose: async () => void (await cleanup.dispose()),
    /** Open sockets, and subscriptions running on them. */
    counts: () => ({ sockets: wsServer.clients.size, subscriptions: [...live].reduce((n, s) => n + s.size, 0) }),
  };
}

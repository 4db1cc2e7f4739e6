import type { Server } from 'node:http';
import { GraphQLError, parse, specifiedRules, validate, type GraphQLSchema } from 'graphql';
import { WebSocketServer, type WebSocket } from 'ws';
import { useServer } from 'graphql-ws/use/ws';
import { createContext } from '../context.js';
import type { Identity } from '../services/users.js';
import type { AppServices } from '../app-services.js';
import { limitErrors, type QueryLimits } from '../schema/limits.js';
import { nulCharacterError } from './input-guard.js';
import { guardWrites, type SendText } from './ws-writes.js';
import { ValidDocuments } from './ws-documents.js';
import { sharedSubscribe } from './subscriptions.js';
import { isDatabaseUnavailable } from '../db/unavailable.js';
import { databaseUnavailable, withCode } from './graphql-errors.js';
import { closeAtExpiry, heartbeat, SocketsPerUser, tooManySubscriptions, TOO_MANY_SOCKETS_CLOSE, verifyOrigin } from './ws-limits.js';

/**
 * graphql-ws on the same HTTP server and path. The token is read once, in `onConnect`, from
 * `connectionParams.authorization`; a connection without a valid one is closed (4403 Forbidden).
 * Every subscription is checked against the same depth and cost limits as HTTP queries. A socket
 * holding more than WS_MAX_BUFFERED_BYTES its client has not read is closed (1013, see ws-writes.ts).
 * Limits against hostile clients (ws-limits.ts): messages up to WS_MAX_MESSAGE_BYTES (1009), browser
 * pages of allowed origins only (403 on the upgrade), WS_MAX_SOCKETS_PER_USER (4429),
 * WS_MAX_SUBSCRIPTIONS per socket (an `error` message, LIMIT_EXCEEDED), closed when the token expires
 * (4403), terminated after an unanswered ping (WS_PING_SECONDS).
 */
export function createWsServer(services: AppServices, schema: GraphQLSchema, httpServer: Server, onSlowClose: () => void = () => {}) {
  const { config } = services;
  const wsServer = new WebSocketServer({
    server: httpServer,
    path: '/graphql',
    // ws reads a frame's length from its header and closes with 1009 before taking in a byte more
    // (also for a message in fragments); its default lets a client make the server buffer 100 MiB.
    maxPayload: config.wsMaxMessageBytes,
    verifyClient: verifyOrigin(config.corsOrigins),
  });
  const stopHeartbeat = heartbeat(wsServer, config.wsPingSeconds * 1000);
  const socketsPerUser = new SocketsPerUser(config.wsMaxSocketsPerUser);
  const maxSubscriptions = config.wsMaxSubscriptions;
  const maxBufferedBytes = services.config.wsMaxBufferedBytes;
  // Each socket's `sendText` (ws-writes.ts), for its subscriptions' results.
  const senders = new WeakMap<WebSocket, SendText>();
  wsServer.on('connection', (socket, request) => {
    const sendText = guardWrites(
      socket,
      {
        maxBufferedBytes,
        onSlowClose: (bufferedBytes) => {
          services.log.warn({ bufferedBytes, maxBufferedBytes, remoteAddress: request.socket.remoteAddress }, 'closed a WebSocket that does not read its events');
          onSlowClose();
        },
      },
      // The connection ws writes to: Node hands the upgraded socket over as the request's.
      request.socket,
    );
    senders.set(socket, sendText);
  });
  const limits: QueryLimits = { maxDepth: services.config.graphqlMaxDepth, maxCost: services.config.graphqlMaxCost, maxFragments: services.config.graphqlMaxFragments };
  type Extra = { identity?: Identity; subscriptions?: Set<string> };
  // Each open socket's running subscriptions, for the metrics.
  const live = new Set<Set<string>>();
  const validDocuments = new ValidDocuments();
  const cleanup = useServer<Record<string, unknown> | undefined, Extra>(
    {
      schema,
      onConnect: async (ctx) => {
        const params = ctx.connectionParams ?? {};
        const header = params.authorization ?? params.Authorization;
        try {
          const c = await createContext(services, header);
          if (!c.user) return false;
          const socket = ctx.extra.socket;
          // Gone while its token was checked: no 'close' would come to uncount it or stop its timer.
          if (socket.readyState !== socket.OPEN) return false;
          if (!socketsPerUser.take(c.user.id, socket)) {
            socket.close(TOO_MANY_SOCKETS_CLOSE.code, TOO_MANY_SOCKETS_CLOSE.reason); // the later 4403 is a no-op
            return false;
          }
          closeAtExpiry(socket, c.user.expiresAt);
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
        // graphql-ws records the id before it calls this hook, and forgets it when the operation ends
        // or is refused: this one is counted, and subscribe messages sent at once are all counted.
        if (Object.keys(ctx.subscriptions).length > maxSubscriptions) return [tooManySubscriptions(maxSubscriptions)];
        // A text that validated before is not parsed or validated again (ws-documents.ts).
        let document = validDocuments.get(payload.query);
        const known = document !== undefined;
        if (!document) {
          try {
            document = parse(payload.query, { maxTokens: services.config.graphqlMaxTokens });
          } catch (err) {
            return [new GraphQLError((err as Error).message, { extensions: { code: 'GRAPHQL_PARSE_FAILED' } })];
          }
        }
        // The limits first: linear in the document, they keep graphql's validation (quadratic in fields
        // repeated under one key) from ever seeing a document they refuse (src/schema/limits.ts).
        const refused = limitErrors(document, payload.operationName, payload.variables, limits);
        if (refused.length > 0) return refused;
        if (!known) {
          const invalid = validate(schema, document, specifiedRules);
          if (invalid.length > 0) return invalid;
          validDocuments.add(payload.query, document);
        }
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
      // Domain errors get their code here, as Apollo's formatter gives it over HTTP (graphql-errors.ts);
      // results sent straight to the socket get it in sharedSubscribe.
      onNext: (_ctx, _id, _payload, _args, result) => (result.errors ? { ...result, errors: result.errors.map((e) => withCode(e).toJSON()) } : undefined),
      onError: (_ctx, _id, _payload, errors) => {
        services.log.warn({ errors: errors.map((e) => e.message) }, 'subscription error');
        return errors.map((e) => withCode(e).toJSON());
      },
    },
    wsServer,
    0, // graphql-ws's keep-alive (a timer per socket, 12 s) is off: `heartbeat` pings every WS_PING_SECONDS
  );
  // A socket's errors in one log line. ws emits one when it closes a socket itself (a message over
  // WS_MAX_MESSAGE_BYTES: 1009; an invalid frame: 1002) or its connection fails; graphql-ws's listener,
  // attached in its own 'connection' handler above, printed each to the console with its stack and then
  // closed the socket with 1011, a no-op after ws's close. Here: ours instead, one line through the logger.
  wsServer.on('connection', (socket, request) => {
    socket.removeAllListeners('error');
    socket.on('error', (err: Error & { code?: string }) => {
      const remoteAddress = request.socket.remoteAddress;
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') services.log.warn({ remoteAddress, maxBytes: config.wsMaxMessageBytes }, 'closed a WebSocket whose message is over WS_MAX_MESSAGE_BYTES (1009)');
      else services.log.warn({ remoteAddress, code: err.code, err: err.message }, 'WebSocket error');
      if (socket.readyState === socket.OPEN) socket.close(1011, 'Internal server error');
    });
  });
  return {
    wsServer,
    dispose: async () => {
      stopHeartbeat();
      await cleanup.dispose();
    },
    /** Open sockets, and subscriptions running on them. */
    counts: () => ({ sockets: wsServer.clients.size, subscriptions: [...live].reduce((n, s) => n + s.size, 0) }),
  };
}

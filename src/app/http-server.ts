import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import type { Redis } from 'ioredis';
import type { AppServices } from '../app-services.js';
import type { TokenKeys } from '../auth.js';
import type { Config } from '../config.js';
import { adminRoutes } from '../http/admin.js';
import { clientAddress, compileTrust } from '../http/client-address.js';
import { graphqlCors } from '../http/cors.js';
import { createApollo, graphqlOverHttp, httpContext } from '../http/graphql.js';
import { graphqlJsonPost } from '../http/graphql-json.js';
import { createWsServer } from '../http/graphql-ws.js';
import type { Metrics } from '../http/metrics.js';
import { withRequestId } from '../http/request-id.js';
import { playgroundHtml, restRoutes, wantsPlayground } from '../http/routes.js';
import { createSchema } from '../http/schema.js';
import type { Logger } from '../logger.js';
import type { Scheduler } from '../scheduling/agenda.js';

/** The largest GraphQL request body accepted over HTTP (100 KiB, as `express.json`'s '100kb'). */
const GRAPHQL_BODY_LIMIT_BYTES = 100 * 1024;

export interface HttpServerParts {
  config: Config;
  services: AppServices;
  tokens: TokenKeys;
  scheduler: Scheduler;
  /** The publishing connection: GET /health pings it, and callbacks keep their replay keys in it. */
  redisPub: Redis;
  metrics: Metrics;
  log: Logger;
}

export type WsServer = ReturnType<typeof createWsServer>;
export type Apollo = Awaited<ReturnType<typeof createApollo>>;

export interface HttpServer {
  httpServer: Server;
  apollo: Apollo;
  ws: WsServer;
  /** Starts listening on PORT (0: any free port) and says where. */
  listen(): Promise<{ port: number; url: string }>;
}

/** One HTTP server for GraphQL over HTTP, graphql-ws, the REST routes (callbacks, health, admin) and /metrics. */
export async function createHttpServer({ config, services, tokens, scheduler, redisPub, metrics, log }: HttpServerParts): Promise<HttpServer> {
  const schema = await createSchema();
  const app = express();
  app.disable('x-powered-by');
  // One reading of TRUST_PROXY for Express (req.ip, req.secure: the admin cookie's Secure) and the direct path's client address.
  const trust = compileTrust(config.trustProxy);
  app.set('trust proxy', trust);
  const cors = graphqlCors(config.corsOrigins);
  // Every answer carries its x-request-id, and every log line the request causes names it (request-id.ts).
  const httpServer = createServer((req, res) =>
    withRequestId(req, res, () => {
      if (cors?.(req, res)) return; // a CORS preflight, answered; otherwise its headers are set for both paths
      // Set below, before the server listens: no request arrives while it is not.
      if (!graphqlPost(req, res)) app(req, res);
    }),
  );
  const ws = createWsServer(services, schema, httpServer, () => metrics.websocketSlowCloses.inc());
  const apollo = await createApollo(services, schema, httpServer, ws.dispose, (op, failed) => metrics.graphqlOperation(op, failed));

  // GraphQL first: most requests are GraphQL, and they need not pass the other routers.
  app.get('/graphql', (req, res, next) => (wantsPlayground(req) ? res.type('html').send(playgroundHtml()) : next()));
  // The client's address as Express's req.ip gives it, for both paths (H5 payments send it to the provider).
  const requestContext = (req: IncomingMessage) => httpContext(services, req.headers.authorization, req.headers['x-request-id'], clientAddress(req, trust));
  // POST /graphql with a JSON body goes straight to Apollo (graphqlJsonPost); everything else to Express.
  const graphqlPost = graphqlJsonPost(apollo, requestContext, GRAPHQL_BODY_LIMIT_BYTES, (err) => log.error({ err }, 'GraphQL request failed'));
  app.use('/graphql', express.json({ limit: GRAPHQL_BODY_LIMIT_BYTES }), graphqlOverHttp(apollo, requestContext));
  // A body the JSON parser refused (malformed, too large) gets a GraphQL-shaped error, not Express's HTML page.
  app.use('/graphql', (err: unknown, _req: express.Request, res: express.Response, next: express.NextFunction) => {
    const status = (err as { status?: number } | null)?.status;
    if (typeof status !== 'number' || status < 400 || status >= 500) return next(err);
    const code = status === 413 ? 'PAYLOAD_TOO_LARGE' : 'BAD_REQUEST';
    res.status(status).json({ errors: [{ message: (err as Error).message, extensions: { code } }] });
  });
  app.get('/metrics', async (_req, res) => {
    try {
      const { contentType, body } = await metrics.text();
      res.type(contentType).send(body);
    } catch (err) {
      log.warn({ err }, 'metrics could not be collected');
      res.status(503).type('text/plain').send('metrics could not be collected\n');
    }
  });
  app.use(adminRoutes(tokens, scheduler, log));
  app.use(restRoutes(services, redisPub));

  const listen = async () => {
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(config.port, resolve);
    });
    const port = (httpServer.address() as AddressInfo).port;
    const url = `http://localhost:${port}/graphql`;
    log.info({ url }, 'Deadline is serving GraphQL (and subscriptions) at this URL');
    return { port, url };
  };
  return { httpServer, apollo, ws, listen };
}

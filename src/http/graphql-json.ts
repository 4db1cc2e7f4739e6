import { AsyncResource } from 'node:async_hooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ApolloServer } from '@apollo/server';
import type { Context } from '../context.js';
import { answerOverHttp, type RequestContext } from './graphql.js';

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
    // Bound: a request's 'end' comes from its socket, outside the request's scope (src/http/request-id.ts),
    // and everything from here on must log under the request's id.
    req.on('end', AsyncResource.bind(() => {
      if (refused) return;
      let text = (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).toString('utf8');
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
    }));
    return true;
  };
}

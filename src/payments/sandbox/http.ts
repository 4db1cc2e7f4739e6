/** The sandbox's small HTTP helpers, shared by its trades (./trades.ts), v3 routes (./v3.ts), control API (./control.ts) and refunds (./refunds.ts). */
import type { IncomingMessage, ServerResponse } from 'node:http';

const MAX_BODY_BYTES = 1 << 20;

/** An answer other than 2xx: `code` is WeChat's error code on v3 routes; the control API shows `message`. */
export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** A delivered (or failed: status 0) notification POST. */
export interface Delivery {
  status: number;
  body: string;
  error?: string;
}

/** A signed, encrypted notification as the sandbox POSTs it, kept for the retries tests play. */
export interface SandboxCallback {
  url: string;
  notificationId: string;
  body: Buffer;
  headers: Record<string, string>;
}

export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new HttpError(413, 'INVALID_REQUEST', 'body too large'));
        req.destroy();
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export function parseBody(raw: Buffer): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(raw.toString('utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new HttpError(400, 'PARAM_ERROR', '参数错误: body is not a JSON object');
}

export function sendJson(res: ServerResponse, status: number, payload: unknown): void {
  const body = JSON.stringify(payload);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

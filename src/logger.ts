import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';
import { currentRequestId } from './request-scope.js';

export type { Logger };

export interface LoggerOptions {
  /** LOG_LEVEL, one of pino's levels. */
  level: string;
  name?: string;
  /** Rewrites each serialised line before it is written (src/redact.ts masks passwords). */
  redact?: (line: string) => string;
  /** INSTANCE_NAME, on every line (`instance`): which of several servers wrote it. */
  instance?: string;
  /**
   * Human-readable lines (pino-pretty) instead of JSON: a developer's terminal (see `wantsPrettyLogs`).
   * pino-pretty is a devDependency: where it is not installed (a production install) lines stay JSON.
   */
  pretty?: boolean;
  /** Where lines go; stdout when not given. */
  destination?: DestinationStream;
}

/** Development on a terminal reads pretty lines; anything else (a file, a pipe, a log shipper) gets JSON. */
export function wantsPrettyLogs(nodeEnv: string): boolean {
  return nodeEnv === 'development' && process.stdout.isTTY === true;
}

/**
 * One JSON object per line, each with `instance` (pino `base`) and, while a request is being served,
 * its `requestId` (pino `mixin`, from the request's AsyncLocalStorage scope: src/request-scope.ts).
 */
export function createLogger(opts: LoggerOptions): Logger {
  const options = {
    name: opts.name ?? 'deadline',
    level: opts.level,
    base: { pid: process.pid, ...(opts.instance ? { instance: opts.instance } : {}) },
    mixin: () => {
      const requestId = currentRequestId();
      return requestId ? { requestId } : {};
    },
    ...(opts.redact ? { hooks: { streamWrite: opts.redact } } : {}),
  };
  const destination = opts.destination ?? (opts.pretty ? prettyStream() : undefined);
  return destination ? pino(options, destination) : pino(options);
}

/** pino-pretty writing to stdout, synchronously (a fatal start-up line is written before the exit); undefined when not installed. */
function prettyStream(): DestinationStream | undefined {
  type Pretty = typeof import('pino-pretty');
  let pretty: Pretty;
  try {
    const loaded = createRequire(import.meta.url)('pino-pretty') as Pretty & { default?: Pretty };
    pretty = loaded.default ?? loaded;
  } catch {
    return undefined;
  }
  return pretty({ colorize: true, singleLine: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,instance', sync: true });
}

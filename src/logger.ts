import { pino, type Logger } from 'pino';

export type { Logger };

/** `redact`: rewrites each serialised line before it is written (src/redact.ts masks passwords). */
export function createLogger(level: string, name = 'deadline', redact?: (line: string) => string): Logger {
  return pino({ name, level, base: { pid: process.pid }, ...(redact ? { hooks: { streamWrite: redact } } : {}) });
}

/**
 * The typed readers of single variables: each takes the environment first and the variable's name
 * (docs.test.ts finds every variable by that shape), returns its default when it is unset or empty,
 * and stops start-up with a ConfigError naming the variable when its value is bad.
 */
import { maskUrlPasswords } from '../redact.js';

export type Env = Record<string, string | undefined>;

export class ConfigError extends Error {
  constructor(readonly variable: string, problem: string) {
    super(`Invalid configuration: ${variable} ${problem}`);
    this.name = 'ConfigError';
  }
}

export function str(env: Env, name: string, fallback: string): string {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  return raw;
}

export function num(env: Env, name: string, fallback: number, opts: { min?: number; integer?: boolean } = {}): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new ConfigError(name, `must be a number, got "${raw}"`);
  if (opts.integer && !Number.isInteger(value)) throw new ConfigError(name, `must be an integer, got "${raw}"`);
  if (opts.min !== undefined && value < opts.min) throw new ConfigError(name, `must be at least ${opts.min}, got "${raw}"`);
  return value;
}

export function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (/^(true|1|yes|on)$/i.test(raw)) return true;
  if (/^(false|0|no|off)$/i.test(raw)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

export function url(env: Env, name: string, fallback: string | undefined, protocols: string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    // Shown on the console and in logs: DATABASE_URL and REDIS_URL carry passwords.
    throw new ConfigError(name, `must be a URL, got "${maskUrlPasswords(raw)}"`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use ${protocols.join(' or ')}, got "${parsed.protocol}"`);
  }
  return raw;
}

export function timezone(env: Env, name: string, fallback: string): string {
  const tz = str(env, name, fallback);
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new ConfigError(name, `must be an IANA time zone, got "${tz}"`);
  }
  return tz;
}

export function required(env: Env, name: string, because: string): string {
  const raw = env[name];
  if (raw === undefined || raw === '') throw new ConfigError(name, `is required ${because}`);
  return raw;
}

/** A time of day, HH:MM (a leading zero added). */
export function clockTime(env: Env, name: string, fallback: string): string {
  const value = str(env, name, fallback);
  const m = /^([01]?\d|2[0-3]):([0-5]\d)$/.exec(value);
  if (!m) throw new ConfigError(name, `must be a time of day HH:MM, got "${value}"`);
  return `${m[1].padStart(2, '0')}:${m[2]}`;
}

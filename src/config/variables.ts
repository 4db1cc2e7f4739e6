/** Variables with rules of their own beyond their type, and the variables that no longer exist. */
import { hostname } from 'node:os';
import type { Config } from './types.js';
import { ConfigError, num, str, type Env } from './parse.js';

/** A subscriber cut off catches up from the outbox over the dedupe window: the outbox keeps at least that. */
export function outboxRetention(env: Env): number {
  const hours = num(env, 'OUTBOX_RETENTION_HOURS', 24, { min: 0.01 });
  const window = num(env, 'EVENT_DEDUPE_WINDOW_SECONDS', 600, { min: 1 });
  if (hours * 3600 < window) {
    throw new ConfigError('OUTBOX_RETENTION_HOURS', `must cover EVENT_DEDUPE_WINDOW_SECONDS (${window} s), got "${env.OUTBOX_RETENTION_HOURS}"`);
  }
  return hours;
}

/** TRUST_PROXY as Express takes it: true/false, a hop count, or addresses and subnets (comma-separated). */
export function trustProxy(env: Env): Config['trustProxy'] {
  const raw = env.TRUST_PROXY?.trim();
  if (!raw) return undefined;
  if (/^(true|false)$/i.test(raw)) return raw.toLowerCase() === 'true';
  if (/^\d+$/.test(raw)) return Number(raw);
  if (!/^[\w.:/, -]+$/.test(raw)) throw new ConfigError('TRUST_PROXY', `must be true, false, a hop count or addresses, got "${raw}"`);
  return raw;
}

export function corsOrigins(env: Env): string[] {
  const list = (env.CORS_ORIGINS ?? '').split(',').map((o) => o.trim()).filter(Boolean);
  for (const origin of list) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.origin !== origin.replace(/\/+$/, '')) {
      throw new ConfigError('CORS_ORIGINS', `must list origins such as https://shop.example.com, got "${origin}"`);
    }
  }
  return list.map((o) => o.replace(/\/+$/, ''));
}

/** pino's levels: LOG_LEVEL must be one of them. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function logLevel(env: Env, fallback: string): string {
  const level = str(env, 'LOG_LEVEL', fallback);
  if (!(LOG_LEVELS as readonly string[]).includes(level)) throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got "${level}"`);
  return level;
}

export function instanceName(env: Env): string {
  const name = str(env, 'INSTANCE_NAME', `${hostname()}-${process.pid}`);
  if (!/^[^\s]{1,200}$/.test(name)) throw new ConfigError('INSTANCE_NAME', `must be 1 to 200 characters without spaces, got "${name}"`);
  return name;
}

export function seckillGroup(env: Env): string {
  const group = str(env, 'SECKILL_GROUP', 'g1');
  if (!/^[\w:.-]{1,100}$/.test(group)) throw new ConfigError('SECKILL_GROUP', `must be 1 to 100 letters, digits or _:.-, got "${group}"`);
  return group;
}

/**
 * Variables of the deadline engine's earlier paths, gone with them (docs/architecture.md, "Deadlines"):
 * every instance's timer at the armed time, and the backstop, replaced the six. A server given one
 * still starts, and says so once at start.
 */
const REMOVED: Record<string, string> = {
  DEADLINE_WATCH_MS: 'every instance keeps a timer at each kind\'s armed time, so no watch polls for overdue deadlines',
  DEADLINE_WATCH_GRACE_MS: 'there is no watch to wait for: every instance\'s timer settles at the armed time',
  DEADLINE_ARM_BACKSTOP_MS: 'every instance\'s timer settles at the armed time; the wake-up job and the sweep are the backstop',
  DEADLINE_SETTLE_ON_TIME: 'every instance settles at the armed time on its own timer (DEADLINE_TIMERS=false turns an instance\'s off)',
  DEADLINE_INLINE_WINDOW_SECONDS: 'a run no longer waits in-process for the next deadline: the timers fire at it',
  DEADLINE_STALE_SECONDS: 'an armed time is never left behind: every instance\'s timer follows it',
};

export function removedVariables(env: Env): string[] {
  return Object.entries(REMOVED)
    .filter(([name]) => env[name] !== undefined)
    .map(([name, why]) => `${name} no longer exists: ${why}; remove it`);
}

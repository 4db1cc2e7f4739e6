import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { unauthenticated } from './errors.js';
import type { Identity } from './services/users.js';

const keys = new Map<string, KeyObject>();

/**
 * The secret as a key object, made once: given the string, jsonwebtoken tries to read it as a public key
 * on every call and falls back on the exception, 7% of the server's time under a flash sale (CPU profile
 * of `bench:seckill`, docs/benchmarks.md).
 */
function keyOf(secret: string): KeyObject {
  let key = keys.get(secret);
  if (!key) {
    key = createSecretKey(Buffer.from(secret, 'utf8'));
    keys.set(secret, key);
  }
  return key;
}

/** HS256 tokens: `sub` is the user id, `role` is `user` or `admin`. */
export function signToken(secret: string, userId: string, role: Identity['role'], expiresInSeconds = 7 * 24 * 3600): string {
  return jwt.sign({ role }, keyOf(secret), { algorithm: 'HS256', subject: userId, expiresIn: expiresInSeconds });
}

export function verifyToken(secret: string, token: string, nowMs = Date.now()): Identity {
  let claims: jwt.JwtPayload | string;
  try {
    claims = jwt.verify(token, keyOf(secret), { algorithms: ['HS256'], clockTimestamp: Math.floor(nowMs / 1000) });
  } catch (err) {
    throw unauthenticated(`Invalid token: ${(err as Error).message}`);
  }
  if (typeof claims === 'string' || typeof claims.sub !== 'string' || claims.sub.length === 0 || claims.sub.length > 128) {
    throw unauthenticated('Invalid token: no subject');
  }
  if (claims.role !== 'user' && claims.role !== 'admin') throw unauthenticated('Invalid token: role must be user or admin');
  return { id: claims.sub, role: claims.role, expiresAt: typeof claims.exp === 'number' ? new Date(claims.exp * 1000) : undefined };
}

/** Reads `Bearer <token>`; no header means an anonymous caller, a bad one is an error. */
export function identityFromHeader(secret: string, header: unknown): Identity | null {
  if (header === undefined || header === null || header === '') return null;
  if (typeof header !== 'string') throw unauthenticated('Authorization must be a string');
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!match) throw unauthenticated('Authorization must be "Bearer <token>"');
  return verifyToken(secret, match[1]);
}

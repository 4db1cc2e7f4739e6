import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { Config } from './config.js';
import { unauthenticated } from './errors.js';
import type { Identity } from './services/users.js';

/**
 * What signs and checks tokens: the HS256 secret, and the issuer and audience every token must carry
 * when they are configured (JWT_ISSUER, JWT_AUDIENCE). Built once from the config (`tokenKeys`).
 */
export interface TokenKeys {
  secret: string;
  issuer?: string;
  audience?: string;
}

/**
 * The config's keys. Throws when the secret is missing: a development config without JWT_SECRET must
 * first go through `resolveJwtSecret` (src/jwt-secret.ts), and nothing signs or accepts a token with
 * an empty or default secret in the meantime.
 */
export function tokenKeys(config: Pick<Config, 'jwtSecret' | 'jwtIssuer' | 'jwtAudience'>): TokenKeys {
  if (!config.jwtSecret) throw new Error('No JWT secret: set JWT_SECRET (a development server makes its own with resolveJwtSecret)');
  return {
    secret: config.jwtSecret,
    ...(config.jwtIssuer ? { issuer: config.jwtIssuer } : {}),
    ...(config.jwtAudience ? { audience: config.jwtAudience } : {}),
  };
}

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

/** HS256 tokens: `sub` is the user id, `role` is `user` or `admin`; `iss` and `aud` when the keys name them. */
export function signToken(keys: TokenKeys, userId: string, role: Identity['role'], expiresInSeconds = 7 * 24 * 3600): string {
  return jwt.sign({ role }, keyOf(keys.secret), {
    algorithm: 'HS256',
    subject: userId,
    expiresIn: expiresInSeconds,
    // jsonwebtoken refuses an option given as undefined: only the ones set.
    ...(keys.issuer ? { issuer: keys.issuer } : {}),
    ...(keys.audience ? { audience: keys.audience } : {}),
  });
}

/**
 * The identity a token names, or UNAUTHENTICATED. A token must expire (`exp`): one without it would be
 * an admin's key forever once it leaked, with no way to revoke it short of changing the secret.
 */
export function verifyToken(keys: TokenKeys, token: string, nowMs = Date.now()): Identity {
  let claims: jwt.JwtPayload | string;
  try {
    claims = jwt.verify(token, keyOf(keys.secret), {
      algorithms: ['HS256'],
      clockTimestamp: Math.floor(nowMs / 1000),
      issuer: keys.issuer,
      audience: keys.audience,
    });
  } catch (err) {
    throw unauthenticated(`Invalid token: ${(err as Error).message}`);
  }
  if (typeof claims === 'string' || typeof claims.sub !== 'string' || claims.sub.length === 0 || claims.sub.length > 128) {
    throw unauthenticated('Invalid token: no subject');
  }
  const role: unknown = claims.role;
  if (role !== 'user' && role !== 'admin') throw unauthenticated('Invalid token: role must be user or admin');
  if (typeof claims.exp !== 'number') throw unauthenticated('Invalid token: no expiry (exp)');
  return { id: claims.sub, role, expiresAt: new Date(claims.exp * 1000) };
}

/** Reads `Bearer <token>`; no header means an anonymous caller, a bad one is an error. */
export function identityFromHeader(keys: TokenKeys, header: unknown): Identity | null {
  if (header === undefined || header === null || header === '') return null;
  if (typeof header !== 'string') throw unauthenticated('Authorization must be a string');
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!match) throw unauthenticated('Authorization must be "Bearer <token>"');
  return verifyToken(keys, match[1]);
}

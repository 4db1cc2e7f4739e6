import { randomBytes } from 'node:crypto';
import { linkSync, mkdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, type Config } from './config.js';

/** Where a development server keeps the secret it made, relative to its working directory. */
export const DEV_SECRET_FILE = join('.deadline', 'jwt-secret');

/**
 * The config with its JWT secret: JWT_SECRET when set; else, in development only, the secret in
 * `<dir>/.deadline/jwt-secret`, made on first use. The server (src/main.ts) and `npm run token` both
 * call this from the project folder, so the tokens one prints the other accepts, and no secret is
 * known to anyone who did not read that file.
 */
export function resolveJwtSecret<C extends Pick<Config, 'nodeEnv' | 'jwtSecret'>>(config: C, dir: string): C & { jwtSecret: string } {
  if (config.jwtSecret) return config as C & { jwtSecret: string };
  if (config.nodeEnv !== 'development') throw new ConfigError('JWT_SECRET', 'is required outside development');
  return { ...config, jwtSecret: developmentSecret(dir) };
}

/** The development secret under `dir`: read, or made (32 random bytes, base64url) when absent. */
export function developmentSecret(dir: string): string {
  const file = join(dir, DEV_SECRET_FILE);
  mkdirSync(join(dir, '.deadline'), { recursive: true, mode: 0o700 });
  try {
    return readSecret(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  // Written whole under a name of its own, then linked into place: the server and `npm run token`
  // started together either make the file or read the one the other made, never a half-written one.
  const draft = `${file}.${process.pid}.${randomBytes(4).toString('hex')}`;
  writeFileSync(draft, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
  try {
    linkSync(draft, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(draft);
  }
  return readSecret(file);
}

function readSecret(file: string): string {
  const { mode } = statSync(file);
  // Anyone who can read it can sign an admin's token.
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    throw new ConfigError('JWT_SECRET', `is unset and ${file} is readable by other users (mode ${(mode & 0o777).toString(8)}): chmod 600 it, or set JWT_SECRET`);
  }
  const secret = readFileSync(file, 'utf8').trim();
  if (secret.length < 32) {
    throw new ConfigError('JWT_SECRET', `is unset and ${file} holds no usable secret (32 characters at least): delete it to have a new one made, or set JWT_SECRET`);
  }
  return secret;
}

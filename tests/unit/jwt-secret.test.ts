import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import jwt from 'jsonwebtoken';
import { tokenKeys, verifyToken } from '../../src/auth.js';
import { ConfigError, loadConfig } from '../../src/config.js';
import { DEV_SECRET_FILE, resolveJwtSecret } from '../../src/jwt-secret.js';

/** A development server without JWT_SECRET: its own secret in .deadline/jwt-secret, which `npm run token` shares. */
const dirs: string[] = [];
const freshDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'deadline-secret-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const dev = (extra: Record<string, string> = {}) => loadConfig({ NODE_ENV: 'development', ...extra });
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/** The token CLI as `npm run token` runs it (the TypeScript source through the tests' loader), in `cwd`. */
async function cliToken(cwd: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(JWT_|NODE_ENV$|NODE_OPTIONS$)/.test(k)));
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', here('../support/ts-loader.mjs'), here('../../src/cli/token.ts'), ...args], {
    cwd,
    env: { ...clean, NODE_ENV: 'development', ...env },
  });
  return stdout.trim();
}

test('loadConfig knows no secret of its own in development: nothing signs until one is resolved', () => {
  const config = dev();
  expect(config.jwtSecret).toBeUndefined();
  expect(() => tokenKeys(config)).toThrow(/No JWT secret/);
});

test('without JWT_SECRET a development server makes a random secret once, kept 0600 in .deadline/, the same on every start', () => {
  const dir = freshDir();
  const first = resolveJwtSecret(dev(), dir).jwtSecret;
  const again = resolveJwtSecret(dev(), dir).jwtSecret;
  expect(again).toBe(first);
  // 32 random bytes, base64url.
  expect(first).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(statSync(join(dir, DEV_SECRET_FILE)).mode & 0o777).toBe(0o600);
  expect(statSync(join(dir, '.deadline')).mode & 0o777).toBe(0o700);
  // Another project folder, another secret: none is known in advance.
  expect(resolveJwtSecret(dev(), freshDir()).jwtSecret).not.toBe(first);
});

test('JWT_SECRET wins and touches no file; outside development it stays required', () => {
  const dir = freshDir();
  expect(resolveJwtSecret(dev({ JWT_SECRET: 'x'.repeat(32) }), dir).jwtSecret).toBe('x'.repeat(32));
  expect(() => statSync(join(dir, '.deadline'))).toThrow(/ENOENT/);
  // A config made by hand without a secret (loadConfig already refuses it outside development).
  expect(() => resolveJwtSecret({ nodeEnv: 'production', jwtSecret: undefined }, dir)).toThrow(/JWT_SECRET is required outside development/);
});

test('a secret file others can read, or one too short to be a secret, stops start-up naming JWT_SECRET', () => {
  const dir = freshDir();
  resolveJwtSecret(dev(), dir);
  const file = join(dir, DEV_SECRET_FILE);
  chmodSync(file, 0o644);
  expect(() => resolveJwtSecret(dev(), dir)).toThrow(ConfigError);
  expect(() => resolveJwtSecret(dev(), dir)).toThrow(/JWT_SECRET is unset and .* is readable by other users \(mode 644\)/);
  writeFileSync(file, 'secret\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  expect(() => resolveJwtSecret(dev(), dir)).toThrow(/holds no usable secret/);
});

test('npm run token signs with the server\'s secret: made by whichever runs first, and carrying JWT_ISSUER and JWT_AUDIENCE', async () => {
  // The CLI first: it makes the file the server then reads.
  const dir = freshDir();
  const admin = await cliToken(dir, ['boss', '--admin']);
  const server = tokenKeys(resolveJwtSecret(dev(), dir));
  expect(verifyToken(server, admin)).toMatchObject({ id: 'boss', role: 'admin' });
  // The server's secret from another folder does not accept it.
  expect(() => verifyToken(tokenKeys(resolveJwtSecret(dev(), freshDir())), admin)).toThrow('Invalid token: invalid signature');

  // The server first, with an issuer and an audience the CLI reads from the same environment.
  const other = freshDir();
  const env = { JWT_ISSUER: 'https://id.example.com', JWT_AUDIENCE: 'deadline' };
  const keys = tokenKeys(resolveJwtSecret(dev(env), other));
  const user = await cliToken(other, ['u-1'], env);
  expect(jwt.decode(user)).toMatchObject({ sub: 'u-1', role: 'user', iss: 'https://id.example.com', aud: 'deadline', exp: expect.any(Number) });
  expect(verifyToken(keys, user)).toMatchObject({ id: 'u-1', role: 'user' });
}, 30_000);

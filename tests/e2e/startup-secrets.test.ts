import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createTestDatabase } from '../support/harness.js';

/** `npm start` as an operator sees it fail: what it prints names the variable, never the password in it. */
const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));
let db: Awaited<ReturnType<typeof createTestDatabase>>;

beforeAll(async () => {
  db = await createTestDatabase('startup_secrets');
});
afterAll(async () => {
  await db?.drop();
});

/**
 * Runs src/main.ts (through the tests' TypeScript loader) until it exits; its code and everything it printed.
 * Compiling every module on load took over 60 s on a loaded 2-core CI machine (14 s on a quiet one): each
 * test gets 150 s.
 */
function runMain(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const proc = spawn(process.execPath, ['--import', here('../support/ts-loader.mjs'), here('../../src/main.ts')], {
    env: { ...process.env, NODE_OPTIONS: '', NODE_ENV: 'production', JWT_SECRET: 'startup-secret-0123456789abcdef', PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout.on('data', (d) => (output += d));
  proc.stderr.on('data', (d) => (output += d));
  return new Promise((resolve) => proc.once('close', (code) => resolve({ code, output })));
}

test('a Redis refusing the password in REDIS_URL stops start-up; the log shows neither the password nor the URL\'s', async () => {
  const password = 'hunter2-redis-Zq81';
  const { code, output } = await runMain({ DATABASE_URL: db.url, REDIS_URL: `redis://deadline-nobody:${password}@127.0.0.1:6379` });
  expect(code).toBe(1);
  const fatal = output.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; err?: { message: string; command?: { args: string[] } } }).find((l) => l.msg === 'start-up failed');
  expect(fatal?.err?.message).toMatch(/WRONGPASS/);
  // ioredis's error carries the AUTH command's arguments: the password is masked there too.
  expect(fatal?.err?.command?.args).toEqual(['deadline-nobody', '***']);
  expect(output).not.toContain(password);
}, 150_000);

test('a DATABASE_URL that does not parse stops start-up naming the variable, not the password', async () => {
  const password = 'hunter2-pg-Xv07';
  const { code, output } = await runMain({ DATABASE_URL: `postgres://app:${password}@127.0.0.1:54x2/deadline` });
  expect(code).toBe(1);
  expect(output).toContain('Invalid configuration: DATABASE_URL must be a URL, got "postgres://app:***@127.0.0.1:54x2/deadline"');
  expect(output).not.toContain(password);
}, 150_000);

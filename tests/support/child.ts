import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Config } from '../../src/config.js';
import { paymentSandbox } from './harness.js';

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/**
 * A real server in a process of its own (the TypeScript sources through swc, as jest runs them), for
 * tests that kill it with SIGKILL: no shutdown hook, no finished batch, connections cut mid-flight.
 */
export async function spawnServer(env: Record<string, string>): Promise<{ url: string; proc: ChildProcess; kill: () => Promise<void> }> {
  const sandboxUrl = env.SANDBOX_PAY_URL ?? (await paymentSandbox()).url;
  const proc = spawn(process.execPath, ['--import', here('./ts-loader.mjs'), here('./child-server.ts')], {
    env: { ...process.env, NODE_OPTIONS: '', SANDBOX_PAY_URL: sandboxUrl, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  proc.stderr.on('data', (d) => (stderr += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server process did not start: ${stderr}`)), 30_000);
    proc.stdout.on('data', (d) => {
      const m = /ready (\S+)/.exec(String(d));
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.once('exit', (code) => reject(new Error(`server process exited (${code}): ${stderr}`)));
  });
  const kill = () =>
    new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  return { url, proc, kill };
}

/** The environment a child server needs to run the same configuration as `config`. */
export function envOf(config: Config, extra: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: 'test',
    JWT_SECRET: config.jwtSecret ?? '',
    JWT_ISSUER: config.jwtIssuer ?? '',
    JWT_AUDIENCE: config.jwtAudience ?? '',
    DATABASE_URL: config.databaseUrl,
    REDIS_PREFIX: config.redisPrefix,
    SECKILL_KEY_PREFIX: config.seckill.keyPrefix,
    PORT: '0',
    JOB_PROCESS_EVERY_SECONDS: String(config.jobProcessEverySeconds),
    JOB_LOCK_LIFETIME_SECONDS: String(config.jobLockLifetimeSeconds),
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

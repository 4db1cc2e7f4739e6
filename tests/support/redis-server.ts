import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './ports.js';
import { sleep } from './wait.js';

/** Re-exported for the files that took it from here; its home is ./ports.ts. */
export { freePort };

/** redis-server exited before answering because its port was taken meanwhile (see `freePort`). */
class PortTaken extends Error {}

/**
 * A redis-server of a test's own (the machines' shared Redis keeps nothing on disk, and a test must not
 * restart it): on a free port, with its data in a directory of its own, append-only file fsynced on
 * every write, as production runs it. `kill` is SIGKILL (no shutdown save), `start` again reads the AOF;
 * `wipe` forgets everything, as a Redis that restarted without its files.
 */
export class OwnRedis {
  private proc: ChildProcess | undefined;
  private dir = mkdtempSync(join(tmpdir(), 'deadline-redis-'));

  private constructor(readonly port: number) {}

  static async create(): Promise<OwnRedis> {
    for (let attempt = 1; ; attempt++) {
      const redis = new OwnRedis(await freePort());
      try {
        await redis.start();
        return redis;
      } catch (err) {
        await redis.destroy();
        if (!(err instanceof PortTaken) || attempt === 5) throw err;
      }
    }
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.proc = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const proc = this.proc;
    let output = '';
    proc.stdout!.on('data', (d: Buffer) => void (output = (output + String(d)).slice(-4_000)));
    // INFO answers once the port is open and the AOF is loaded (LOADING errors until then).
    const deadline = Date.now() + 10_000;
    for (;;) {
      const client = new Redis(this.url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        // Ours, not another test's redis-server that took the port first.
        if (new RegExp(`^process_id:${proc.pid}\\r?$`, 'm').test(await client.info('server'))) return;
      } catch {
        // not yet
      } finally {
        // A probe that was refused is closed already ('end'): disconnecting it again would leave
        // ioredis waiting 2 s for a 'close' event that came before.
        if (client.status !== 'end') client.disconnect();
      }
      if (proc.exitCode !== null) {
        if (output.includes('Address already in use')) throw new PortTaken(`port ${this.port} was taken`);
        throw new Error(`redis-server on ${this.port} exited (${proc.exitCode}): ${output}`);
      }
      if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} did not start: ${output}`);
      await sleep(50);
    }
  }

  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill('SIGKILL');
    });
  }

  /** Killed, and its files gone: the next start is an empty Redis. */
  async wipe(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
    this.dir = mkdtempSync(join(tmpdir(), 'deadline-redis-'));
  }

  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

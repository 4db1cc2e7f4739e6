import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, testConfig } from '../support/harness.js';
import { envOf } from '../support/child.js';
import { ADMIN } from '../support/orders.js';

const file = (path: string) => fileURLToPath(new URL(path, import.meta.url));

/**
 * The real entry point (`src/main.ts`) as `npm start` runs it, NODE_ENV=production: SIGTERM stops it
 * gracefully. Apollo Server registers signal handlers of its own outside NODE_ENV=test (the other
 * tests' setting), so only a production process shows whether the stop runs to its end.
 */
let db: Awaited<ReturnType<typeof createTestDatabase>>;

beforeAll(async () => {
  db = await createTestDatabase('sigterm');
});

afterAll(async () => {
  await db?.drop();
});

test('SIGTERM (and a second one meanwhile) stops a production server to the end: it logs "stopped" and exits 0', async () => {
  const config = testConfig(db.url);
  const proc = spawn(process.execPath, ['--import', file('../support/ts-loader.mjs'), file('../../src/main.ts')], {
    env: { ...process.env, NODE_OPTIONS: '', ...envOf(config, { NODE_ENV: 'production', LOG_LEVEL: 'info', PAYMENTS_SANDBOX: 'true' }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(proc, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  let out = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (out += d));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the server did not start: ${out}`)), 30_000);
      proc.stdout.on('data', () => {
        const m = /"url":"([^"]+)"/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      void exited.then(([code]) => reject(new Error(`the server exited (${code}): ${out}`)));
    });
    // Something to stop: a flash sale whose stream the consumer reads (its WECHAT orders paid at the
    // sandbox, switched on as an operator would: production keeps it off by default).
    const admin = async (query: string, variables: Record<string, unknown>) => {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${ADMIN}` }, body: JSON.stringify({ query, variables }) });
      const body = (await res.json()) as { data?: Record<string, { id?: string }>; errors?: unknown };
      if (body.errors) throw new Error(JSON.stringify(body.errors));
      return body.data!;
    };
    const at = (s: number) => new Date(Date.now() + s * 1000).toISOString();
    const { createProduct } = await admin('mutation($i: CreateProductInput!) { createProduct(input: $i) { id } }', {
      i: { name: 'Flash', price: 990, kind: 'FLASH_SALE', stock: 1, saleStartsAt: at(-60), saleEndsAt: at(3600) },
    });
    await admin('mutation($p: ID!) { startFlashSale(productId: $p) { total } }', { p: createProduct.id });
    proc.kill('SIGTERM');
    proc.kill('SIGTERM');
    const [code, signal] = await exited;
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    expect(out).toContain('"msg":"stopping: no new requests or jobs"');
    expect(out).toContain('"msg":"stopped"');
  } finally {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }
}, 60_000);

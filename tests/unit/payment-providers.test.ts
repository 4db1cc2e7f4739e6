import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../src/config.js';
import { createProviders } from '../../src/payments/setup.js';

// Which provider pays what, by configuration, and the callback URL's provider segment looked up as a
// name, never as a property. A listener stands where the sandbox would be, counting who asks it.
let asked = 0;
let server: Server;
let sandboxUrl: string;

beforeAll(async () => {
  server = createServer((_req, res) => {
    asked++;
    res.writeHead(503).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  sandboxUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const production = (env: Record<string, string> = {}) =>
  loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'a-secret-of-enough-length-0123456789', SANDBOX_PAY_URL: sandboxUrl, ...env });

test('in production the sandbox is off: no method is paid there, its name is unknown, its keys are never fetched', async () => {
  const providers = createProviders(production());
  for (const method of ['WECHAT', 'ALIPAY', 'MIXED', 'WALLET', 'OFFLINE'] as const) expect([method, providers.routeOf(method)]).toEqual([method, null]);
  await expect(providers.byName('sandbox')).resolves.toBeNull();
  await expect(providers.forMethod('WECHAT')).rejects.toThrow(/no payment provider pays WECHAT/);
  await expect(providers.forMethod('ALIPAY')).rejects.toThrow(/no payment provider pays ALIPAY/);
  expect(asked).toBe(0);
});

test('PAYMENTS_SANDBOX=true (or development and test) lets the sandbox pay the methods whose provider is not configured', async () => {
  for (const config of [production({ PAYMENTS_SANDBOX: 'true' }), loadConfig({ NODE_ENV: 'test', JWT_SECRET: 'x'.repeat(32), SANDBOX_PAY_URL: sandboxUrl })]) {
    const providers = createProviders(config);
    expect(['WECHAT', 'MIXED', 'ALIPAY', 'WALLET'].map((m) => providers.routeOf(m as 'WECHAT'))).toEqual(['sandbox', 'sandbox', 'sandbox', null]);
  }
  // The sandbox is built on first use: asking for it asks the (here failing) sandbox for its keys.
  const before = asked;
  await expect(createProviders(production({ PAYMENTS_SANDBOX: 'true' })).byName('sandbox')).rejects.toThrow(/unreachable/);
  expect(asked).toBe(before + 1);
});

test('a configured provider pays its methods whether or not the sandbox is on', () => {
  const alipay = { ALIPAY_APP_ID: '2021000000000001', ALIPAY_PRIVATE_KEY: 'unused-here', ALIPAY_PUBLIC_KEY: 'unused-here' };
  const providers = createProviders(production(alipay));
  expect([providers.routeOf('ALIPAY'), providers.routeOf('WECHAT'), providers.routeOf('MIXED')]).toEqual(['alipay', null, null]);
});

test.each(['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'xyz', 'WECHAT', ''])('"%s" is no provider', async (name) => {
  await expect(createProviders(production({ PAYMENTS_SANDBOX: 'true' })).byName(name)).resolves.toBeNull();
});

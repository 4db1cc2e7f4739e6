import type { IncomingMessage } from 'node:http';
import { ConfigError, loadConfig } from '../../src/config.js';
import { clientAddress, compileTrust } from '../../src/http/client-address.js';

/** A request as the HTTP server hands it over: the socket's peer and the headers. */
const req = (remoteAddress: string, forwardedFor?: string) =>
  ({ socket: { remoteAddress }, headers: forwardedFor ? { 'x-forwarded-for': forwardedFor } : {} }) as unknown as IncomingMessage;
const trustOf = (value?: string) => compileTrust(loadConfig({ NODE_ENV: 'test', JWT_SECRET: 'x'.repeat(32), ...(value === undefined ? {} : { TRUST_PROXY: value }) }).trustProxy);

test('TRUST_PROXY is read as Express reads trust proxy', () => {
  const chain = req('10.0.0.2', '203.0.113.7, 10.0.0.1');
  expect(clientAddress(chain, trustOf())).toBe('10.0.0.2');
  expect(clientAddress(chain, trustOf('false'))).toBe('10.0.0.2');
  expect(clientAddress(chain, trustOf('true'))).toBe('203.0.113.7');
  // A hop count: that many proxies in front, whatever their addresses.
  expect(clientAddress(chain, trustOf('1'))).toBe('10.0.0.1');
  expect(clientAddress(chain, trustOf('2'))).toBe('203.0.113.7');
  // Addresses and subnets: trusted ones are skipped from the right, the first other is the client.
  expect(clientAddress(chain, trustOf('10.0.0.0/8'))).toBe('203.0.113.7');
  expect(clientAddress(chain, trustOf('10.0.0.2'))).toBe('10.0.0.1');
  expect(clientAddress(req('198.51.100.9', '203.0.113.7'), trustOf('loopback, 10.0.0.0/8'))).toBe('198.51.100.9');
  expect(clientAddress({ socket: {}, headers: {} } as unknown as IncomingMessage, trustOf('true'))).toBeUndefined();
});

test('a TRUST_PROXY that names no address stops start-up naming it', () => {
  expect(() => trustOf('10.0.0.0/99')).toThrow(ConfigError);
  expect(() => trustOf('proxy.internal')).toThrow(/^Invalid configuration: TRUST_PROXY /);
});

import type { IncomingMessage } from 'node:http';
import proxyaddr from 'proxy-addr';
import { ConfigError, type Config } from '../config.js';

/** Whether the proxy at `address`, `hop` hops from this server (0: the socket's peer), is trusted. */
export type TrustProxy = (address: string, hop: number) => boolean;

/**
 * TRUST_PROXY compiled once, read as Express reads its `trust proxy` setting (true, a hop count, or
 * addresses and subnets). The same function is given to Express (req.ip, req.secure) and used by the
 * direct JSON path (`clientAddress`), so both paths agree on who the client is.
 */
export function compileTrust(setting: Config['trustProxy']): TrustProxy {
  if (setting === true) return () => true;
  if (typeof setting === 'number') return (_address, hop) => hop < setting;
  if (typeof setting !== 'string') return () => false;
  try {
    return proxyaddr.compile(setting.split(',').map((s) => s.trim()).filter(Boolean));
  } catch (err) {
    throw new ConfigError('TRUST_PROXY', `must be true, false, a hop count or addresses and subnets: ${(err as Error).message}`);
  }
}

/**
 * The client's address: the socket's peer, or, behind trusted proxies only, the address they saw
 * (X-Forwarded-For read from the right, stopping at the first address not trusted). An untrusted
 * client cannot choose it by sending the header.
 */
export function clientAddress(req: IncomingMessage, trust: TrustProxy): string | undefined {
  // A socket already gone has no address (proxy-addr would throw on it).
  if (!req.socket?.remoteAddress) return undefined;
  return proxyaddr(req, trust);
}

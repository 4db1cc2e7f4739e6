/**
 * The 'sandbox' PaymentProvider: the real WeChat Pay client pointed at the sandbox service, with the
 * keys the sandbox generated at its start (GET /sandbox/credentials). The sandbox forgets its keys
 * when it restarts, so the composition root builds this on first use and again after a failure.
 */
import { ProviderUnavailable } from '../provider.js';
import { Keyring, type Now } from '../wechat/crypto.js';
import { WechatPayProvider, type WechatTradeType } from '../wechat/client.js';
import type { SandboxCredentials } from './server.js';

export interface SandboxProviderOptions {
  tradeType?: WechatTradeType;
  timeoutMs?: number;
  clock?: Now;
}

export function sandboxProvider(credentials: SandboxCredentials, opts: SandboxProviderOptions = {}): WechatPayProvider {
  return new WechatPayProvider({
    name: 'sandbox',
    baseUrl: credentials.baseUrl,
    mchid: credentials.mchid,
    appid: credentials.appid,
    serialNo: credentials.serialNo,
    privateKey: credentials.privateKey,
    apiV3Key: credentials.apiV3Key,
    keyring: new Keyring().addPublicKey(credentials.publicKeyId, credentials.publicKey),
    ...opts,
  });
}

/** Asks a running sandbox (e.g. `SANDBOX_PAY_URL`, http://127.0.0.1:4010) for its keys. */
export async function connectSandbox(url: string, opts: SandboxProviderOptions = {}): Promise<WechatPayProvider> {
  let credentials: SandboxCredentials;
  try {
    const res = await fetch(`${url.replace(/\/+$/, '')}/sandbox/credentials`, { signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000) });
    if (!res.ok) throw new Error(`answered ${res.status}`);
    credentials = (await res.json()) as SandboxCredentials;
  } catch (e) {
    throw new ProviderUnavailable(`payment sandbox at ${url} unreachable (npm run sandbox:pay): ${(e as Error).message}`, e);
  }
  // The sandbox reports the address it listens on; the caller's URL is the one known to reach it.
  return sandboxProvider({ ...credentials, baseUrl: url.replace(/\/+$/, '') }, opts);
}

import type { Config } from '../config.js';
import { AlipayProvider } from './alipay.js';
import { ProviderRegistry } from './registry.js';
import { WechatPayProvider } from './wechat/client.js';
import { Keyring } from './wechat/crypto.js';
import { promised } from './provider.js';
import { connectSandbox } from './sandbox/provider.js';

/**
 * The providers of this deployment: WeChat Pay when WECHATPAY_MCHID is set, Alipay when ALIPAY_APP_ID
 * is set, and the sandbox (WeChat Pay v3's shapes, keys fetched from the sandbox service on first
 * use) only while PAYMENTS_SANDBOX is on: then it pays the methods whose provider is not configured.
 * Off (production's default), the sandbox is not registered at all: no order starts there, its
 * callbacks are 404, and its keys, fetched over plain HTTP, are never asked for. Real money must not
 * be stood in for by a service that anyone who can reach it may sign for.
 * Providers sign and check timestamps on the real clock: the protocol's 300 s window is about the
 * wire, not business time.
 */
export function createProviders(config: Config): ProviderRegistry {
  const timeoutMs = config.paymentTimeoutSeconds * 1000;
  const wechat = config.wechat;
  const alipay = config.alipay;
  const standIn = config.paymentsSandbox ? 'sandbox' : null;
  return new ProviderRegistry(
    {
      ...(wechat && {
        wechat: () =>
          promised(() => {
            const keyring = new Keyring();
            if (wechat.publicKeyId && wechat.publicKey) keyring.addPublicKey(wechat.publicKeyId, wechat.publicKey);
            for (const cert of wechat.platformCerts) keyring.addCertificate(cert);
            return new WechatPayProvider({ name: 'wechat', ...wechat, keyring, timeoutMs });
          }),
      }),
      ...(alipay && {
        alipay: () =>
          promised(
            () =>
              new AlipayProvider({
                appId: alipay.appId,
                privateKey: alipay.privateKey,
                alipayPublicKey: alipay.publicKey,
                gateway: alipay.gateway,
                sellerId: alipay.sellerId,
                timeout: timeoutMs,
              }),
          ),
      }),
      ...(config.paymentsSandbox && { sandbox: () => connectSandbox(config.sandboxPayUrl, { timeoutMs }) }),
    },
    { WECHAT: wechat ? 'wechat' : standIn, ALIPAY: alipay ? 'alipay' : standIn },
  );
}

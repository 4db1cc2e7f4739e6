/** The payment providers' settings: each provider configured when its first variable is set, its others then required. */
import type { AlipayConfig, WechatConfig } from './types.js';
import { ConfigError, required, str, url, type Env } from './parse.js';

export function wechatConfig(env: Env): WechatConfig | undefined {
  const mchid = env.WECHATPAY_MCHID;
  if (!mchid) return undefined;
  const because = 'when WECHATPAY_MCHID is set';
  const apiV3Key = required(env, 'WECHATPAY_APIV3_KEY', because);
  if (Buffer.byteLength(apiV3Key) !== 32) throw new ConfigError('WECHATPAY_APIV3_KEY', 'must be 32 bytes');
  const publicKeyId = env.WECHATPAY_PUBLIC_KEY_ID || undefined;
  const publicKey = env.WECHATPAY_PUBLIC_KEY || undefined;
  const platformCerts = (env.WECHATPAY_PLATFORM_CERTS ?? '').split(',').map((p) => p.trim()).filter(Boolean);
  if (publicKeyId && !publicKeyId.startsWith('PUB_KEY_ID_')) throw new ConfigError('WECHATPAY_PUBLIC_KEY_ID', 'must start with PUB_KEY_ID_');
  if (!!publicKeyId !== !!publicKey) throw new ConfigError(publicKeyId ? 'WECHATPAY_PUBLIC_KEY' : 'WECHATPAY_PUBLIC_KEY_ID', 'is required with its pair');
  if (!publicKey && platformCerts.length === 0) {
    throw new ConfigError('WECHATPAY_PUBLIC_KEY', 'or WECHATPAY_PLATFORM_CERTS is required to verify WeChat Pay');
  }
  const tradeType = str(env, 'WECHATPAY_TRADE_TYPE', 'native');
  if (tradeType !== 'native' && tradeType !== 'h5') throw new ConfigError('WECHATPAY_TRADE_TYPE', `must be native or h5, got "${tradeType}"`);
  return {
    mchid,
    appid: required(env, 'WECHATPAY_APPID', because),
    serialNo: required(env, 'WECHATPAY_SERIAL_NO', because),
    privateKey: required(env, 'WECHATPAY_PRIVATE_KEY', because),
    apiV3Key,
    publicKeyId,
    publicKey,
    platformCerts,
    baseUrl: url(env, 'WECHATPAY_BASE_URL', 'https://api.mch.weixin.qq.com', ['https:', 'http:'])!,
    tradeType,
  };
}

export function alipayConfig(env: Env): AlipayConfig | undefined {
  const appId = env.ALIPAY_APP_ID;
  if (!appId) return undefined;
  const because = 'when ALIPAY_APP_ID is set';
  return {
    appId,
    privateKey: required(env, 'ALIPAY_PRIVATE_KEY', because),
    publicKey: required(env, 'ALIPAY_PUBLIC_KEY', because),
    gateway: url(env, 'ALIPAY_GATEWAY', 'https://openapi.alipay.com/gateway.do', ['https:', 'http:'])!,
    sellerId: env.ALIPAY_SELLER_ID || undefined,
  };
}

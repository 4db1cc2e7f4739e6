import type { PaymentMethod } from '../entities/Order.js';
import type { PaymentProvider, ProviderName } from './provider.js';

/** Which provider serves an order or a callback. The composition root decides (config: real or sandbox). */
export interface Providers {
  /** WECHAT and MIXED → WeChat Pay (or the sandbox), ALIPAY → Alipay (or the sandbox). */
  forMethod(method: PaymentMethod): Promise<PaymentProvider>;
  /** By the name in a callback URL or a stored intent; null for a name we do not serve. */
  byName(name: string): Promise<PaymentProvider | null>;
}

type Factory = () => Promise<PaymentProvider>;

/**
 * Providers built on first use and kept: the sandbox's keys are fetched from the running sandbox
 * service then, so the server may start before it. A failed build is retried on the next use.
 */
export class ProviderRegistry implements Providers {
  private readonly built = new Map<ProviderName, Promise<PaymentProvider>>();

  constructor(
    private readonly factories: Partial<Record<ProviderName, Factory>>,
    /** Which provider pays each online method (e.g. WECHAT → 'sandbox' when WeChat Pay is not configured). */
    private readonly routes: { WECHAT: ProviderName; ALIPAY: ProviderName },
  ) {}

  forMethod(method: PaymentMethod): Promise<PaymentProvider> {
    const name = method === 'ALIPAY' ? this.routes.ALIPAY : this.routes.WECHAT;
    return this.build(name);
  }

  async byName(name: string): Promise<PaymentProvider | null> {
    if (!(name in this.factories)) return null;
    return this.build(name as ProviderName);
  }

  private build(name: ProviderName): Promise<PaymentProvider> {
    let provider = this.built.get(name);
    if (!provider) {
      const factory = this.factories[name];
      if (!factory) return Promise.reject(new Error(`payment provider "${name}" is not configured`));
      provider = factory();
      provider.catch(() => this.built.delete(name));
      this.built.set(name, provider);
    }
    return provider;
  }
}

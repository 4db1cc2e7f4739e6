import type { PaymentMethod } from '../entities/Order.js';
import type { PaymentProvider, ProviderName } from './provider.js';

/** Which provider serves an order or a callback. The composition root decides (config: real or sandbox). */
export interface Providers {
  /**
   * The provider that pays a method in this deployment (WECHAT and MIXED: WeChat Pay or the sandbox;
   * ALIPAY: Alipay or the sandbox), or null: WALLET and OFFLINE orders, and online methods whose
   * provider is not configured while the sandbox is off. Decided without building anything.
   */
  routeOf(method: PaymentMethod): ProviderName | null;
  /** The provider `routeOf` names; rejects when there is none. */
  forMethod(method: PaymentMethod): Promise<PaymentProvider>;
  /** By the name in a callback URL or a stored intent; null for a name we do not serve. */
  byName(name: string): Promise<PaymentProvider | null>;
  /** Whether `byName` would find a provider of that name, decided without building it (no network). */
  serves(name: string): boolean;
}

type Factory = () => Promise<PaymentProvider>;

/** The only names a provider can have: a callback URL's segment is looked up here, never as a property. */
const PROVIDER_NAMES: readonly string[] = ['wechat', 'alipay', 'sandbox'] satisfies readonly ProviderName[];

/**
 * Providers built on first use and kept: the sandbox's keys are fetched from the running sandbox
 * service then, so the server may start before it. A failed build is retried on the next use.
 */
export class ProviderRegistry implements Providers {
  private readonly built = new Map<ProviderName, Promise<PaymentProvider>>();
  private readonly factories: ReadonlyMap<ProviderName, Factory>;

  constructor(
    factories: Partial<Record<ProviderName, Factory>>,
    /** Which provider pays each online method (e.g. WECHAT → 'sandbox' when WeChat Pay is not configured), null for none. */
    private readonly routes: { WECHAT: ProviderName | null; ALIPAY: ProviderName | null },
  ) {
    // A Map, not the object: `factories['constructor']` would be Object's own constructor.
    this.factories = new Map(Object.entries(factories).filter(([name, f]) => PROVIDER_NAMES.includes(name) && f) as Array<[ProviderName, Factory]>);
  }

  routeOf(method: PaymentMethod): ProviderName | null {
    switch (method) {
      case 'WECHAT':
      case 'MIXED':
        return this.routes.WECHAT;
      case 'ALIPAY':
        return this.routes.ALIPAY;
      default:
        return null;
    }
  }

  forMethod(method: PaymentMethod): Promise<PaymentProvider> {
    const name = this.routeOf(method);
    if (!name) return Promise.reject(new Error(`no payment provider pays ${method} orders on this server`));
    return this.build(name);
  }

  async byName(name: string): Promise<PaymentProvider | null> {
    if (!PROVIDER_NAMES.includes(name) || !this.factories.has(name as ProviderName)) return null;
    return this.build(name as ProviderName);
  }

  serves(name: string): boolean {
    return PROVIDER_NAMES.includes(name) && this.factories.has(name as ProviderName);
  }

  private build(name: ProviderName): Promise<PaymentProvider> {
    let provider = this.built.get(name);
    if (!provider) {
      const factory = this.factories.get(name);
      if (!factory) return Promise.reject(new Error(`payment provider "${name}" is not configured`));
      provider = factory();
      provider.catch(() => this.built.delete(name));
      this.built.set(name, provider);
    }
    return provider;
  }
}

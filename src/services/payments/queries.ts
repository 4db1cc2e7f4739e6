import type { FilterQuery } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Order } from '../../entities/Order.js';
import { Payment, PAYMENT_PROVIDERS, type PaymentProviderName } from '../../entities/Payment.js';
import { PaymentIntent } from '../../entities/PaymentIntent.js';
import { badInput, forbidden } from '../../errors.js';
import { keysetPage, type Page } from '../../pagination.js';
import { parseId } from '../ids.js';
import type { Identity } from '../users.js';

export interface PaymentFilter {
  needsRefund?: boolean | null;
  orderId?: string | null;
  provider?: string | null;
}

/** Reading payments: the intents behind `Order.payment`, and the payments list. */
export class PaymentQueries {
  /** The intents of many orders in one query (the `Order.payment` field). */
  async intentsOf(em: EntityManager, orderIds: readonly string[]): Promise<Map<string, PaymentIntent | null>> {
    const intents = await em.find(PaymentIntent, { orderId: { $in: [...orderIds] } });
    const byOrder = new Map<string, PaymentIntent | null>(orderIds.map((id) => [id, null]));
    for (const intent of intents) byOrder.set(intent.orderId, intent);
    return byOrder;
  }

  /** Newest first. Admins see every payment; a user those of their own orders. */
  async list(em: EntityManager, user: Identity, filter: PaymentFilter, first: number, after?: string | null): Promise<Page<Payment>> {
    const where: FilterQuery<Payment>[] = [];
    if (filter.needsRefund != null) where.push({ needsRefund: filter.needsRefund });
    if (filter.orderId != null) where.push({ orderId: parseId(filter.orderId, 'an order', 'orderId') });
    if (filter.provider != null) {
      if (!(PAYMENT_PROVIDERS as readonly string[]).includes(filter.provider)) {
        throw badInput(`provider must be one of ${PAYMENT_PROVIDERS.join(', ')}`, 'provider');
      }
      where.push({ provider: filter.provider as PaymentProviderName });
    }
    if (user.role !== 'admin') {
      if (filter.orderId != null) {
        const order = await em.findOne(Order, { id: filter.orderId }, { fields: ['userId'] });
        if (order && order.userId !== user.id) throw forbidden('Not your order');
      }
      // The caller's orders as a subquery: a user with many orders is never read into memory.
      where.push({ orderId: { $in: em.createQueryBuilder(Order).select('id').where({ userId: user.id }).toRaw() } });
    }
    return keysetPage(em, Payment, where.length > 0 ? { $and: where } : {}, first, after);
  }
}

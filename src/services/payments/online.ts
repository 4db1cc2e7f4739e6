import { ONLINE_METHODS, type Order } from '../../entities/Order.js';

/** The part of an order paid at its provider. */
export const onlinePart = (order: Pick<Order, 'amount' | 'walletAmount' | 'paymentMethod'>) =>
  order.paymentMethod === 'MIXED' ? order.amount - order.walletAmount : order.amount;

export const isOnline = (order: Pick<Order, 'paymentMethod'>) => ONLINE_METHODS.includes(order.paymentMethod);

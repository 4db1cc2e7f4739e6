import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { ORDER_CHANNELS, ORDER_STATUSES, PAYMENT_METHODS, type OrderChannel as OrderChannelValue, type OrderStatus as OrderStatusValue, type PaymentMethod as PaymentMethodValue } from '../entities/Order.js';
import { PRODUCT_KINDS, type ProductKind as ProductKindValue } from '../entities/Product.js';
import { PageInfo } from './types.js';
import { PaidVia, type PaidViaValue } from './payment-types.js';

export enum ProductKind {
  GOODS = 'GOODS',
  VIP_PLAN = 'VIP_PLAN',
  FLASH_SALE = 'FLASH_SALE',
}
registerEnumType(ProductKind, { name: 'ProductKind' });

export enum PaymentMethod {
  WECHAT = 'WECHAT',
  ALIPAY = 'ALIPAY',
  WALLET = 'WALLET',
  MIXED = 'MIXED',
  OFFLINE = 'OFFLINE',
}
registerEnumType(PaymentMethod, { name: 'PaymentMethod' });

export enum OrderChannel {
  H5 = 'H5',
  ADMIN = 'ADMIN',
  SECKILL = 'SECKILL',
}
registerEnumType(OrderChannel, { name: 'OrderChannel' });

export enum OrderStatus {
  PENDING = 'PENDING',
  PAID = 'PAID',
  CANCELLED = 'CANCELLED',
  EXPIRED = 'EXPIRED',
  REFUNDED = 'REFUNDED',
}
registerEnumType(OrderStatus, {
  name: 'OrderStatus',
  valuesConfig: { REFUNDED: { description: 'Was PAID; an admin refunded it (refundOrder): the money went back and the product\'s effect was reversed' } },
});

// The GraphQL enums and the entities' state types must name the same values.
for (const [name, gql, entity] of [
  ['ProductKind', ProductKind, PRODUCT_KINDS],
  ['PaymentMethod', PaymentMethod, PAYMENT_METHODS],
  ['OrderChannel', OrderChannel, ORDER_CHANNELS],
  ['OrderStatus', OrderStatus, ORDER_STATUSES],
] as const) {
  if (Object.values(gql).join() !== entity.join()) throw new Error(`${name} out of sync`);
}

@ObjectType()
export class Product {
  @Field(() => ID) id!: string;
  @Field() name!: string;
  @Field(() => Int, { description: 'Cents' }) price!: number;
  @Field(() => ProductKind) kind!: ProductKindValue;
  @Field(() => Int, { nullable: true, description: 'VIP_PLAN: days of VIP it adds; null is a lifetime plan' }) vipDays!: number | null;
  @Field(() => Int, { nullable: true, description: 'VIP_PLAN: the level it grants' }) vipLevel!: number | null;
  @Field({ description: 'VIP_PLAN: never lapses' }) vipLifetime!: boolean;
  @Field(() => Int, { nullable: true, description: 'Units left; null is unlimited' }) stock!: number | null;
  @Field(() => Date, { nullable: true, description: 'FLASH_SALE: the sale opens' }) saleStartsAt!: Date | null;
  @Field(() => Date, { nullable: true, description: 'FLASH_SALE: the sale closes (exclusive)' }) saleEndsAt!: Date | null;
  @Field({ description: 'False: withdrawn (updateProduct); new orders are refused with CONFLICT, orders made are kept' }) active!: boolean;
  @Field() createdAt!: Date;
}

@ObjectType({ description: 'Cents. `frozen` is held by unpaid orders until they are paid, cancelled or expire.' })
export class Wallet {
  @Field(() => ID) userId!: string;
  @Field(() => Int) balance!: number;
  @Field(() => Int) frozen!: number;
  @Field() updatedAt!: Date;
}

/**
 * GraphQL types declare the entities' own TypeScript types (string unions, Dates), so a service's
 * entity is returned as it is. `isExpired` is computed per response (OrderResolver).
 */
@ObjectType()
export class Order {
  @Field(() => ID) id!: string;
  @Field() orderNo!: string;
  @Field(() => ID) userId!: string;
  @Field(() => ID) productId!: string;
  @Field(() => Int) quantity!: number;
  @Field(() => Int, { description: 'Cents: price × quantity' }) amount!: number;
  @Field(() => Int, { description: 'Cents paid from the wallet (frozen while PENDING)' }) walletAmount!: number;
  @Field(() => PaymentMethod) paymentMethod!: PaymentMethodValue;
  @Field(() => OrderChannel) channel!: OrderChannelValue;
  @Field(() => OrderStatus) status!: OrderStatusValue;
  @Field(() => Date, { nullable: true, description: 'PENDING orders only; cleared when paid, cancelled or expired' }) expiresAt!: Date | null;
  @Field(() => String, { nullable: true }) cancelReason!: string | null;
  @Field(() => Date, { nullable: true }) paidAt!: Date | null;
  @Field(() => PaidVia, { nullable: true, description: 'PAID orders: the wallet, a provider callback, reconciliation, or an admin' }) paidVia!: PaidViaValue | null;
  @Field() createdAt!: Date;
}

@ObjectType()
export class OrderEdge {
  @Field() cursor!: string;
  @Field(() => Order) node!: Order;
}

@ObjectType()
export class OrderConnection {
  @Field(() => [OrderEdge]) edges!: OrderEdge[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

@ObjectType()
export class OrderExpired {
  @Field(() => ID) eventId!: string;
  @Field(() => Order) order!: Order;
}

import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { PAID_VIA, type PaidVia as PaidViaValue } from '../entities/Order.js';
import { PAYMENT_SOURCES, type PaymentSource as PaymentSourceValue } from '../entities/Payment.js';
import { PageInfo } from './types.js';

export enum PaidVia {
  WALLET = 'WALLET',
  CALLBACK = 'CALLBACK',
  COMPENSATE = 'COMPENSATE',
  ADMIN = 'ADMIN',
}
registerEnumType(PaidVia, { name: 'PaidVia', description: 'How a PAID order was paid' });

export enum PaymentSource {
  CALLBACK = 'CALLBACK',
  COMPENSATE = 'COMPENSATE',
}
registerEnumType(PaymentSource, { name: 'PaymentSource', description: "The provider's callback, or reconciliation asking the provider" });

for (const [name, gql, entity] of [
  ['PaidVia', PaidVia, PAID_VIA],
  ['PaymentSource', PaymentSource, PAYMENT_SOURCES],
] as const) {
  if (Object.values(gql).join() !== entity.join()) throw new Error(`${name} out of sync`);
}

@ObjectType({ description: 'What a client needs to pay an order at its provider; fields a provider has no use for are null' })
export class PaymentIntent {
  @Field({ description: 'wechat, alipay or sandbox' }) provider!: string;
  @Field(() => String, { nullable: true }) prepayId!: string | null;
  @Field(() => String, { nullable: true, description: 'Open in a mobile browser to pay' }) h5Url!: string | null;
  @Field(() => String, { nullable: true, description: 'Show as a QR code to pay' }) codeUrl!: string | null;
  @Field(() => Date, { nullable: true }) expiresAt!: Date | null;
}

@ObjectType({ description: 'Money a provider took for an order; needsRefund when it could not pay it' })
export class Payment {
  @Field(() => ID) id!: string;
  @Field(() => ID, { nullable: true, description: 'Null when no order has the number the provider sent' }) orderId!: string | null;
  @Field() orderNo!: string;
  @Field({ description: 'wechat, alipay or sandbox' }) provider!: string;
  @Field() transactionId!: string;
  @Field(() => Int, { description: 'Cents' }) amount!: number;
  @Field() paidAt!: Date;
  @Field(() => PaymentSource) source!: PaymentSourceValue;
  @Field() needsRefund!: boolean;
  @Field(() => String, { nullable: true }) refundReason!: string | null;
  @Field() createdAt!: Date;
}

@ObjectType()
export class PaymentEdge {
  @Field() cursor!: string;
  @Field(() => Payment) node!: Payment;
}

@ObjectType()
export class PaymentConnection {
  @Field(() => [PaymentEdge]) edges!: PaymentEdge[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

export type { PaidViaValue };

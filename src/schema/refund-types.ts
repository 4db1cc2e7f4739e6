import { ArgsType, Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { IsOptional } from 'class-validator';
import { REFUND_STATUSES, type RefundStatus as RefundStatusValue } from '../entities/Refund.js';
import { ConnectionArgs } from './inputs.js';
import { PageInfo } from './types.js';

export enum RefundStatus {
  PENDING = 'PENDING',
  SUCCEEDED = 'SUCCEEDED',
  FAILED = 'FAILED',
}
registerEnumType(RefundStatus, {
  name: 'RefundStatus',
  description: 'PENDING until the provider says; SUCCEEDED: the money is back (and the order REFUNDED); FAILED: nothing changed, another refund may be asked for',
});
if (Object.values(RefundStatus).join() !== REFUND_STATUSES.join()) throw new Error('RefundStatus out of sync');

/** `payment` and `order` are field resolvers (RefundResolver), loaded in batches. */
@ObjectType({ description: "Money an admin gave back: `amount` at the payment's provider, `walletAmount` into the buyer's wallet" })
export class Refund {
  @Field(() => ID) id!: string;
  @Field(() => String, { nullable: true, description: "The refund's number at its provider (the payment's id and the attempt: R{paymentId}-{attempt}); null when nothing is refunded at a provider" })
  outRefundNo!: string | null;
  @Field(() => Int, { description: "Cents refunded at the payment's provider" }) amount!: number;
  @Field(() => Int, { description: 'Cents given back to the wallet (the order\'s wallet part)' }) walletAmount!: number;
  @Field(() => RefundStatus) status!: RefundStatusValue;
  @Field({ description: "The admin's reason" }) reason!: string;
  @Field(() => String, { nullable: true, description: 'FAILED: what the provider said (ABNORMAL, CLOSED, NOT_ENOUGH, ACQ.TRADE_NOT_EXIST, …)' })
  failureReason!: string | null;
  @Field() createdAt!: Date;
  @Field(() => Date, { nullable: true, description: 'When it SUCCEEDED or FAILED' }) finishedAt!: Date | null;
}

@ObjectType()
export class RefundEdge {
  @Field() cursor!: string;
  @Field(() => Refund) node!: Refund;
}

@ObjectType()
export class RefundConnection {
  @Field(() => [RefundEdge]) edges!: RefundEdge[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

@InputType()
export class RefundFilter {
  @Field(() => RefundStatus, { nullable: true }) @IsOptional() status?: RefundStatus | null;
}

@ArgsType()
export class RefundsArgs extends ConnectionArgs {
  @Field(() => RefundFilter, { nullable: true }) @IsOptional() filter?: RefundFilter;
}

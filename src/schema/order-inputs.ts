import { ArgsType, Field, ID, InputType, Int } from 'type-graphql';
import { IsInt, IsNotEmpty, IsOptional, Length, Max, MaxLength, Min } from 'class-validator';
import { ConnectionArgs } from './inputs.js';
import { OrderStatus, PaymentMethod, ProductKind } from './order-types.js';

@InputType()
export class CreateProductInput {
  @Field() @Length(1, 200) name!: string;
  @Field(() => Int, { description: 'Cents' }) @IsInt() @Min(1) @Max(1_000_000_000) price!: number;
  @Field(() => ProductKind) kind!: ProductKind;
  @Field(() => Int, { nullable: true, description: 'VIP_PLAN only; omit for a lifetime plan' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(36_500)
  vipDays?: number | null;
  @Field(() => Int, { nullable: true, description: 'VIP_PLAN only (required there)' }) @IsOptional() @IsInt() @Min(1) @Max(100) vipLevel?: number | null;
  @Field(() => Boolean, { nullable: true, description: 'VIP_PLAN only: a plan that never lapses (then no vipDays)' })
  @IsOptional()
  vipLifetime?: boolean | null;
  @Field(() => Int, { nullable: true, description: 'Omit for unlimited; required for FLASH_SALE' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(1_000_000_000)
  stock?: number | null;
  @Field(() => Date, { nullable: true, description: 'FLASH_SALE only (required there): requests are taken from this time' })
  @IsOptional()
  saleStartsAt?: Date | null;
  @Field(() => Date, { nullable: true, description: 'FLASH_SALE only (required there): requests are refused from this time; after saleStartsAt' })
  @IsOptional()
  saleEndsAt?: Date | null;
}

@InputType()
export class CreateOrderInput {
  @Field(() => ID) @IsNotEmpty() productId!: string;
  // The ceiling is ORDER_MAX_QUANTITY, checked by the service (a decorator's bound is fixed at build).
  @Field(() => Int, { defaultValue: 1 }) @IsInt() @Min(1) quantity!: number;
  @Field(() => PaymentMethod, { description: 'WECHAT, ALIPAY, WALLET or MIXED (OFFLINE orders are made by admins)' })
  paymentMethod!: PaymentMethod;
  @Field(() => Int, { nullable: true, description: 'Cents frozen from the wallet: MIXED needs it; WALLET takes the whole amount' })
  @IsOptional()
  @IsInt()
  @Min(0)
  walletAmount?: number | null;
}

@InputType()
export class AdminCreateOrderInput {
  @Field(() => ID) @IsNotEmpty() @MaxLength(200) userId!: string;
  @Field(() => ID) @IsNotEmpty() productId!: string;
  @Field(() => Int, { defaultValue: 1 }) @IsInt() @Min(1) @Max(10_000) quantity!: number;
  @Field(() => PaymentMethod, { description: 'WALLET (debited at once) or OFFLINE' }) paymentMethod!: PaymentMethod;
}

@InputType()
export class OrderFilter {
  @Field(() => OrderStatus, { nullable: true }) @IsOptional() status?: OrderStatus | null;
  @Field({ nullable: true, description: 'PENDING and past expiresAt (true), or anything else (false)' }) @IsOptional() isExpired?: boolean;
  @Field(() => ID, { nullable: true, description: 'Admins: anyone; users: only themselves' }) @IsOptional() userId?: string | null;
}

@ArgsType()
export class OrdersArgs extends ConnectionArgs {
  @Field(() => OrderFilter, { nullable: true }) @IsOptional() filter?: OrderFilter;
}

@InputType()
export class PaymentFilter {
  @Field({ nullable: true, description: 'Only payments kept for a refund (true) or only those that paid their order (false)' })
  @IsOptional()
  needsRefund?: boolean;
  @Field(() => ID, { nullable: true }) @IsOptional() orderId?: string | null;
  @Field(() => String, { nullable: true, description: 'wechat, alipay or sandbox' }) @IsOptional() @MaxLength(20) provider?: string | null;
}

@ArgsType()
export class PaymentsArgs extends ConnectionArgs {
  @Field(() => PaymentFilter, { nullable: true }) @IsOptional() filter?: PaymentFilter;
}

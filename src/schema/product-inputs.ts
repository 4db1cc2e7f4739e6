import { Field, InputType, Int } from 'type-graphql';
import { IsInt, IsOptional, Length, Max, Min } from 'class-validator';

@InputType({ description: 'What updateProduct changes: an omitted field stays as it is' })
export class UpdateProductInput {
  @Field(() => String, { nullable: true }) @IsOptional() @Length(1, 200) name?: string | null;
  @Field(() => Int, { nullable: true, description: 'Cents; for orders made from now on' }) @IsOptional() @IsInt() @Min(1) @Max(1_000_000_000) price?: number | null;
  @Field(() => Int, {
    nullable: true,
    description: 'Units left (a FLASH_SALE: units still to sell, in Redis too); null makes it unlimited (not for a FLASH_SALE)',
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(1_000_000_000)
  stock?: number | null;
  @Field(() => Boolean, { nullable: true, description: 'False withdraws it: createOrder, adminCreateOrder, startFlashSale and seckill answer CONFLICT' })
  @IsOptional()
  active?: boolean | null;
}

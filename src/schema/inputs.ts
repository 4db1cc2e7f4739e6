import { MAX_PAGE_SIZE } from '../pagination.js';
import { ArgsType, Field, ID, InputType, Int } from 'type-graphql';
import { IsInt, IsNotEmpty, IsOptional, Length, Max, MaxLength, Min } from 'class-validator';
import { AuctionStatus } from './types.js';

@InputType()
export class CreateAuctionInput {
  @Field() @IsNotEmpty() @MaxLength(200) nftId!: string;
  @Field() @Length(1, 200) title!: string;
  @Field(() => Int, { description: 'Cents' }) @IsInt() @Min(0) startingPrice!: number;
  @Field(() => Int, { description: 'Cents' }) @IsInt() @Min(1) minIncrement!: number;
  @Field({ description: 'Must be in the future' }) endTime!: Date;
  @Field(() => Int, { defaultValue: 0, description: 'A bid this close to the end moves the end this far out' })
  @IsInt()
  @Min(0)
  @Max(86_400)
  softCloseSeconds!: number;
}

@InputType()
export class PlaceBidInput {
  @Field(() => ID) @IsNotEmpty() auctionId!: string;
  @Field(() => Int, { description: 'Cents' }) @IsInt() @Min(1) amount!: number;
}

@InputType()
export class AuctionFilter {
  @Field(() => AuctionStatus, { nullable: true }) @IsOptional() status?: AuctionStatus;
}

/** Every connection's paging arguments: one bound on `first` (MAX_PAGE_SIZE), an opaque `after` cursor. */
@ArgsType()
export class ConnectionArgs {
  @Field(() => Int, { defaultValue: 20 }) @IsInt() @Min(1) @Max(MAX_PAGE_SIZE) first!: number;
  @Field(() => String, { nullable: true }) @IsOptional() after?: string;
}

@ArgsType()
export class AuctionsArgs extends ConnectionArgs {
  @Field(() => AuctionFilter, { nullable: true }) @IsOptional() filter?: AuctionFilter;
}

import { Field, ID, Int, ObjectType } from 'type-graphql';

@ObjectType({ description: "A user's VIP membership; a user who never bought a plan is level 0 and inactive" })
export class VipStatus {
  @Field(() => ID) userId!: string;
  @Field(() => Int) level!: number;
  @Field(() => Date, { nullable: true, description: 'When it lapses; null for lifetime (or no membership)' }) expiresAt!: Date | null;
  @Field() isLifetime!: boolean;
  @Field(() => Int, { nullable: true, description: 'Calendar days in APP_TIMEZONE until the expiry day (0 on it); null for lifetime or inactive' })
  daysRemaining!: number | null;
  @Field() active!: boolean;
}

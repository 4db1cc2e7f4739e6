import { OptionalProps } from '@mikro-orm/core';
import { Check, Entity, Index, OneToOne, Property } from '@mikro-orm/decorators/legacy';
import { User } from './User.js';

/**
 * A user's VIP membership: its level, when it lapses (null: lifetime) and whether it is active. The
 * lapse is a deadline (the `vip-expiry` wake-up); paying a VIP_PLAN order extends it.
 */
@Entity({ tableName: 'vip_memberships' })
@Index({ name: 'vip_memberships_expires_at_active_idx', properties: ['expiresAt', 'active'] })
@Check({
  name: 'vip_memberships_lifetime_check',
  expression: '("is_lifetime" and "expires_at" is null) or (not "is_lifetime" and "expires_at" is not null)',
})
export class VipMembership {
  [OptionalProps]?: 'isLifetime' | 'active' | 'updatedAt' | 'expiresAt';

  @OneToOne(() => User, {
    primary: true,
    mapToPk: true,
    joinColumn: 'user_id',
    foreignKeyName: 'vip_memberships_user_id_fkey',
    deleteRule: 'no action',
    updateRule: 'no action',
  })
  userId!: string;

  @Property({ type: 'integer' })
  @Check({ name: 'vip_memberships_level_check', expression: '"level" > 0' })
  level!: number;

  @Property({ type: 'timestamptz', length: 3, nullable: true })
  expiresAt: Date | null = null;

  @Property({ type: 'boolean', default: false })
  isLifetime!: boolean;

  @Property({ type: 'boolean', default: true })
  active!: boolean;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  updatedAt!: Date;
}

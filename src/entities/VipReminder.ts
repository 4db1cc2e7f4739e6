import { OptionalProps } from '@mikro-orm/core';
import { Entity, ManyToOne, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { User } from './User.js';

/** A reminder milestone already written for a member's expiry day: the unique key that makes each once. */
@Entity({ tableName: 'vip_reminders' })
export class VipReminder {
  [OptionalProps]?: 'createdAt';

  @ManyToOne(() => User, {
    primary: true,
    mapToPk: true,
    joinColumn: 'user_id',
    foreignKeyName: 'vip_reminders_user_id_fkey',
    deleteRule: 'no action',
    updateRule: 'no action',
  })
  userId!: string;

  /** The expiry's calendar day in APP_TIMEZONE. */
  @PrimaryKey({ type: 'date' })
  expiresOn!: string;

  /** 3, 1, 0 (the day itself) or −1 … −7 (days after). */
  @PrimaryKey({ type: 'integer' })
  daysBefore!: number;

  @Property({ type: 'date' })
  sentOn!: string;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  createdAt!: Date;
}

import { OptionalProps } from '@mikro-orm/core';
import { Check, Entity, OneToOne, Property } from '@mikro-orm/decorators/legacy';
import { User } from './User.js';

/** Money is integer cents. `frozen` is the part held by unpaid orders. */
@Entity({ tableName: 'wallets' })
export class Wallet {
  [OptionalProps]?: 'balance' | 'frozen' | 'updatedAt';

  /** The primary key is also the foreign key to `users`. */
  @OneToOne(() => User, {
    primary: true,
    mapToPk: true,
    joinColumn: 'user_id',
    foreignKeyName: 'wallets_user_id_fkey',
    deleteRule: 'no action',
    updateRule: 'no action',
  })
  userId!: string;

  @Property({ type: 'integer', default: 0 })
  @Check({ name: 'wallets_balance_check', expression: '"balance" >= 0' })
  balance!: number;

  @Property({ type: 'integer', default: 0 })
  @Check({ name: 'wallets_frozen_check', expression: '"frozen" >= 0' })
  frozen!: number;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  updatedAt!: Date;
}

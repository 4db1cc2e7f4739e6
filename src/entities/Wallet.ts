import { OptionalProps } from '@mikro-orm/core';
import { Entity, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';

/** Money is integer cents. `frozen` is the part held by unpaid orders. */
@Entity({ tableName: 'wallets' })
export class Wallet {
  [OptionalProps]?: 'balance' | 'frozen' | 'updatedAt';

  @PrimaryKey({ type: 'text' })
  userId!: string;

  @Property({ type: 'integer', default: 0 })
  balance!: number;

  @Property({ type: 'integer', default: 0 })
  frozen!: number;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  updatedAt!: Date;
}

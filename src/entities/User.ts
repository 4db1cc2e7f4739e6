import { OptionalProps } from '@mikro-orm/core';
import { Entity, PrimaryKey, Property, Enum } from '@mikro-orm/decorators/legacy';

export type Role = 'user' | 'admin';

@Entity({ tableName: 'users' })
export class User {
  [OptionalProps]?: 'createdAt';

  /** The JWT `sub`: ids are minted outside, so they are text. */
  @PrimaryKey({ type: 'text' })
  id!: string;

  @Enum({ items: ['user', 'admin'], type: 'text' })
  role!: Role;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  createdAt!: Date;
}

import { OptionalProps } from '@mikro-orm/core';
import { Entity, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';

/** A provider callback already applied, by its notification id: a replay is recognised first. */
@Entity({ tableName: 'payment_notifications' })
export class PaymentNotification {
  [OptionalProps]?: 'receivedAt';

  @PrimaryKey({ type: 'text' })
  provider!: string;

  @PrimaryKey({ type: 'text' })
  notificationId!: string;

  @Property({ type: 'text' })
  orderNo!: string;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  receivedAt!: Date;
}

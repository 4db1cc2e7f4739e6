import { OptionalProps } from '@mikro-orm/core';
import { Entity, Enum, OneToOne, Property } from '@mikro-orm/decorators/legacy';
import { Order } from './Order.js';
import { PAYMENT_PROVIDERS, type PaymentProviderName } from './Payment.js';

/** What a client needs to pay an order at its provider; fields a provider has no use for are null. */
@Entity({ tableName: 'payment_intents' })
export class PaymentIntent {
  [OptionalProps]?: 'prepayId' | 'h5Url' | 'codeUrl' | 'expiresAt' | 'createdAt';

  @OneToOne(() => Order, {
    primary: true,
    mapToPk: true,
    joinColumn: 'order_id',
    foreignKeyName: 'payment_intents_order_id_fkey',
    deleteRule: 'no action',
    updateRule: 'no action',
  })
  orderId!: string;

  @Enum({ items: [...PAYMENT_PROVIDERS], type: 'text' })
  provider!: PaymentProviderName;

  @Property({ type: 'text', nullable: true })
  prepayId: string | null = null;

  @Property({ type: 'text', nullable: true, fieldName: 'h5_url' })
  h5Url: string | null = null;

  @Property({ type: 'text', nullable: true })
  codeUrl: string | null = null;

  @Property({ type: 'timestamptz', length: 3, nullable: true })
  expiresAt: Date | null = null;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  createdAt!: Date;
}

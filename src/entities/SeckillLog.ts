import { OptionalProps } from '@mikro-orm/core';
import { Entity, Enum, Index, ManyToOne, PrimaryKey, Property, Unique } from '@mikro-orm/decorators/legacy';
import { Order } from './Order.js';
import { Product } from './Product.js';

export const SECKILL_LOG_STATUSES = ['ORDERED', 'FAILED'] as const;
export type SeckillLogStatus = (typeof SECKILL_LOG_STATUSES)[number];

/**
 * One flash-sale stream entry, consumed: the order it made or why it made none. Unique by stream id,
 * so an entry delivered twice (a consumer died after the commit and before XACK) is recorded once.
 * `userId` is the entry's `uid` as sent (a BFF may send any), hence no foreign key.
 */
@Entity({ tableName: 'seckill_logs' })
@Unique({ name: 'seckill_logs_stream_id_key', properties: ['streamId'] })
@Index({ name: 'seckill_logs_product_id_user_id_idx', properties: ['productId', 'userId', 'id'] })
export class SeckillLog {
  [OptionalProps]?: 'requestId' | 'reason' | 'orderId' | 'createdAt';

  @PrimaryKey({ type: 'bigint', autoincrement: true })
  id!: string;

  @Property({ type: 'text' })
  streamId!: string;

  @ManyToOne(() => Product, {
    mapToPk: true,
    joinColumn: 'product_id',
    foreignKeyName: 'seckill_logs_product_id_fkey',
    deleteRule: 'no action',
    updateRule: 'no action',
  })
  productId!: string;

  @Property({ type: 'text' })
  userId!: string;

  /** The `rid` the Lua step wrote; null for an entry a BFF added itself. */
  @Property({ type: 'text', nullable: true })
  requestId: string | null = null;

  @Enum({ items: [...SECKILL_LOG_STATUSES], type: 'text' })
  status!: SeckillLogStatus;

  @Property({ type: 'text', nullable: true })
  reason: string | null = null;

  @ManyToOne(() => Order, {
    mapToPk: true,
    joinColumn: 'order_id',
    nullable: true,
    foreignKeyName: 'seckill_logs_order_id_fkey',
    deleteRule: 'no action',
    updateRule: 'no action',
  })
  orderId: string | null = null;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  createdAt!: Date;
}

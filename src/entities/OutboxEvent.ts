import { OptionalProps } from '@mikro-orm/core';
import { Entity, PrimaryKey, Property, Index } from '@mikro-orm/decorators/legacy';

/**
 * A change clients hear about, written in the same transaction as the change.
 * `publishedAt` null means Redis has not been told yet; the relay sweep finds those.
 */
@Entity({ tableName: 'outbox_events' })
@Index({ name: 'outbox_events_unpublished_idx', properties: ['createdAt'], where: '"published_at" is null' })
@Index({ name: 'outbox_events_created_at_idx', properties: ['createdAt'] })
export class OutboxEvent {
  [OptionalProps]?: 'createdAt' | 'claimedAt' | 'publishedAt';

  @PrimaryKey({ type: 'uuid' })
  id!: string;

  @Property({ type: 'text' })
  topic!: string;

  @Property({ type: 'jsonb' })
  payload!: Record<string, unknown>;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  createdAt!: Date;

  @Property({ type: 'timestamptz', length: 3, nullable: true })
  claimedAt: Date | null = null;

  @Property({ type: 'timestamptz', length: 3, nullable: true })
  publishedAt: Date | null = null;
}

import { OptionalProps } from '@mikro-orm/core';
import { Entity, Index, ManyToOne, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { User } from './User.js';

/**
 * An in-site message to one user (a VIP reminder, …). Unread while `readAt` is null; reading keeps
 * the first `readAt`. A user's messages are listed newest first by id (keyset pagination).
 */
@Entity({ tableName: 'messages' })
// "A user's messages, newest first": `where user_id = ? and id < cursor order by id desc limit n`.
@Index({ name: 'messages_user_id_idx', properties: ['userId', 'id'] })
// Unread per user (`unreadOnly`, `unreadMessageCount`, `markAllMessagesRead`): only the unread rows,
// so a user with years of read reminders costs what their unread ones cost.
@Index({ name: 'messages_user_id_unread_idx', properties: ['userId', 'id'], where: '"read_at" is null' })
export class Message {
  [OptionalProps]?: 'createdAt' | 'readAt';

  @PrimaryKey({ type: 'bigint', autoincrement: true })
  id!: string;

  @ManyToOne(() => User, {
    mapToPk: true,
    joinColumn: 'user_id',
    foreignKeyName: 'messages_user_id_fkey',
    deleteRule: 'no action',
    updateRule: 'no action',
  })
  userId!: string;

  /** What the message is about, for clients to group or style (e.g. `VIP_REMINDER`). */
  @Property({ type: 'text' })
  kind!: string;

  @Property({ type: 'text' })
  title!: string;

  @Property({ type: 'text' })
  body!: string;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  createdAt!: Date;

  @Property({ type: 'timestamptz', length: 3, nullable: true })
  readAt: Date | null = null;
}

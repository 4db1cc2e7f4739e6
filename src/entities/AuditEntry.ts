import { OptionalProps } from '@mikro-orm/core';
import { Entity, Enum, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';

/** One per admin mutation, named after it. */
export const AUDIT_ACTIONS = [
  'RUN_JOB',
  'PAUSE_JOB',
  'RESUME_JOB',
  'CREDIT_WALLET',
  'ADJUST_WALLET',
  'CREATE_PRODUCT',
  'UPDATE_PRODUCT',
  'START_FLASH_SALE',
  'STOP_FLASH_SALE',
  'REPLAY_DEAD_LETTER',
  'DISCARD_DEAD_LETTER',
  'CANCEL_AUCTION',
  'ADMIN_CREATE_ORDER',
  'CANCEL_ORDER',
  'REFUND_ORDER',
  'REFUND_PAYMENT',
] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** An admin action: who (`actorId`), what, on what (a job's name, a user's, product's or auction's id), when. Never updated. */
@Entity({ tableName: 'audit_log' })
export class AuditEntry {
  [OptionalProps]?: 'details' | 'createdAt';

  @PrimaryKey({ type: 'bigint', autoincrement: true })
  id!: string;

  @Property({ type: 'text' })
  actorId!: string;

  @Enum({ items: [...AUDIT_ACTIONS], type: 'text' })
  action!: AuditAction;

  @Property({ type: 'text' })
  target!: string;

  /** The action's arguments and result (`{ args, result }`). */
  @Property({ type: 'jsonb', default: '{}' })
  details!: Record<string, unknown>;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  createdAt!: Date;
}

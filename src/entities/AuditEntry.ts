import { OptionalProps } from '@mikro-orm/core';
import { Entity, Enum, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';

export const AUDIT_ACTIONS = ['RUN_JOB', 'PAUSE_JOB', 'RESUME_JOB', 'CREDIT_WALLET'] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

/** An admin action: who (`actorId`), what, on what (a job's name, a user's id), when. Never updated. */
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

  /** What else the action took (a credit's amount). */
  @Property({ type: 'jsonb', default: '{}' })
  details!: Record<string, unknown>;

  @Property({ type: 'timestamptz', length: 3, defaultRaw: 'now()' })
  createdAt!: Date;
}

import { Field, ID, ObjectType, registerEnumType } from 'type-graphql';
import { AUDIT_ACTIONS } from '../entities/AuditEntry.js';
import { PageInfo } from './types.js';

export enum AuditAction {
  RUN_JOB = 'RUN_JOB',
  PAUSE_JOB = 'PAUSE_JOB',
  RESUME_JOB = 'RESUME_JOB',
  CREDIT_WALLET = 'CREDIT_WALLET',
}
registerEnumType(AuditAction, { name: 'AuditAction', description: 'An admin action the audit log records' });
if (Object.values(AuditAction).join() !== AUDIT_ACTIONS.join()) throw new Error('AuditAction out of sync');

@ObjectType({ description: 'An admin action: who, what, on what, when' })
export class AuditEntry {
  @Field(() => ID) id!: string;
  @Field({ description: 'The admin who acted' }) actorId!: string;
  @Field(() => AuditAction) action!: AuditAction;
  @Field({ description: "A job's name, or the credited user's id" }) target!: string;
  @Field({ description: 'JSON: what else the action took (a credit\'s amount in cents)' }) details!: string;
  @Field() createdAt!: Date;
}

@ObjectType()
export class AuditEntryEdge {
  @Field() cursor!: string;
  @Field(() => AuditEntry) node!: AuditEntry;
}

@ObjectType()
export class AuditEntryConnection {
  @Field(() => [AuditEntryEdge]) edges!: AuditEntryEdge[];
  @Field(() => PageInfo) pageInfo!: PageInfo;
}

import { Field, ID, ObjectType, registerEnumType } from 'type-graphql';
import { AUDIT_ACTIONS } from '../entities/AuditEntry.js';
import { PageInfo } from './types.js';

/** Named after the admin mutation it records (runJob: RUN_JOB). */
export enum AuditAction {
  RUN_JOB = 'RUN_JOB',
  PAUSE_JOB = 'PAUSE_JOB',
  RESUME_JOB = 'RESUME_JOB',
  CREDIT_WALLET = 'CREDIT_WALLET',
  ADJUST_WALLET = 'ADJUST_WALLET',
  CREATE_PRODUCT = 'CREATE_PRODUCT',
  UPDATE_PRODUCT = 'UPDATE_PRODUCT',
  START_FLASH_SALE = 'START_FLASH_SALE',
  STOP_FLASH_SALE = 'STOP_FLASH_SALE',
  REPLAY_DEAD_LETTER = 'REPLAY_DEAD_LETTER',
  DISCARD_DEAD_LETTER = 'DISCARD_DEAD_LETTER',
  CANCEL_AUCTION = 'CANCEL_AUCTION',
  ADMIN_CREATE_ORDER = 'ADMIN_CREATE_ORDER',
  CANCEL_ORDER = 'CANCEL_ORDER',
  REFUND_ORDER = 'REFUND_ORDER',
  REFUND_PAYMENT = 'REFUND_PAYMENT',
}
registerEnumType(AuditAction, { name: 'AuditAction', description: 'An admin action the audit log records' });
if (Object.values(AuditAction).join() !== AUDIT_ACTIONS.join()) throw new Error('AuditAction out of sync');

@ObjectType({ description: 'An admin action: who, what, on what, when' })
export class AuditEntry {
  @Field(() => ID) id!: string;
  @Field({ description: 'The admin who acted' }) actorId!: string;
  @Field(() => AuditAction) action!: AuditAction;
  @Field({ description: "What it acted on: a job's name, or a user's, product's, auction's, order's, payment's or dead letter's id" }) target!: string;
  @Field({ description: 'JSON: the arguments and, under `result`, what the mutation answered' }) details!: string;
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

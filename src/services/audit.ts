import type { EntityManager } from '@mikro-orm/postgresql';
import type { UnitOfWork } from '../db/transactions.js';
import { AuditEntry, type AuditAction } from '../entities/AuditEntry.js';
import { keysetPage, type Page } from '../pagination.js';
import type { Identity } from './users.js';

/** The audit log of admin actions; the only writer of `audit_log`. */
export class AuditLog {
  /** In the action's transaction: the entry commits with the action, or neither does. */
  async record(uow: UnitOfWork, actor: Identity, action: AuditAction, target: string, details: Record<string, unknown> = {}): Promise<void> {
    uow.em.create(AuditEntry, { actorId: actor.id, action, target, details, createdAt: uow.now });
    await uow.em.flush();
  }

  /**
   * For an action with no transaction of ours (a job's run, pause or resume goes through the job
   * store; a dead letter's replay or discard is a Redis step): written right after it succeeded. A
   * crash between the two loses the entry, not the action.
   */
  async recordDone(em: EntityManager, actor: Identity, action: AuditAction, target: string, now: Date, details: Record<string, unknown> = {}): Promise<void> {
    const fork = em.fork();
    fork.create(AuditEntry, { actorId: actor.id, action, target, details, createdAt: now });
    await fork.flush();
  }

  /** Newest first. */
  list(em: EntityManager, first: number, after?: string | null): Promise<Page<AuditEntry>> {
    return keysetPage(em, AuditEntry, {}, first, after);
  }
}

import { LockMode, type FilterObject } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/postgresql';
import type { UnitOfWork } from '../db/transactions.js';
import type { Order } from '../entities/Order.js';
import type { Product } from '../entities/Product.js';
import { VipMembership } from '../entities/VipMembership.js';
import { forbidden } from '../errors.js';
import { membershipWire, type MembershipData } from '../events/types.js';
import { daysBetween, localDay } from './calendar.js';
import type { ArmDeadline, SettleOutcome } from './deadline-handle.js';
import type { PaidEffect, RefundedEffect } from './orders/effects.js';
import type { Identity } from './users.js';
import { lapseDueMemberships } from './vip/sql.js';

const DAY_MS = 86_400_000;

/** What `vipStatus` answers. A user who never bought a plan: level 0, inactive. */
export interface VipStatusView {
  userId: string;
  level: number;
  expiresAt: Date | null;
  isLifetime: boolean;
  /** Calendar days (APP_TIMEZONE) until the expiry day, 0 on that day; null for lifetime or no membership. */
  daysRemaining: number | null;
  active: boolean;
}

/** Memberships still to lapse: active, not lifetime (`vip_memberships_expires_at_active_idx`). */
const pendingMemberships = (skip: readonly string[] = []): FilterObject<VipMembership> =>
  skip.length > 0 ? { active: true, expiresAt: { $ne: null }, userId: { $nin: [...skip] } } : { active: true, expiresAt: { $ne: null } };

/**
 * VIP memberships: a PAID VIP_PLAN order extends its buyer's membership once (the effect runs in the
 * transaction that makes the order PAID, whichever way it was paid); a membership's lapse is a
 * deadline; `vipStatus` reads it with days counted in APP_TIMEZONE.
 */
export class VipService {
  constructor(
    private readonly armExpiry: ArmDeadline,
    private readonly timeZone: string,
  ) {}

  /** The PaidEffect for VIP_PLAN products. */
  readonly onPaid: PaidEffect = (uow: UnitOfWork, order: Order, plan: Product) => this.extend(uow, order.userId, plan).then(() => undefined);

  /** The RefundedEffect for VIP_PLAN products. */
  readonly onRefunded: RefundedEffect = (uow: UnitOfWork, order: Order, plan: Product) => this.shorten(uow, order.userId, plan).then(() => undefined);

  /**
   * expiresAt = max(now, current expiry) + vipDays; level = max(current, plan's); a lifetime plan (or
   * member) never lapses. A lapsed membership starts afresh. The row is locked (or created) first, so
   * two payments of one user extend it one after the other.
   */
  async extend(uow: UnitOfWork, userId: string, plan: Product): Promise<VipMembership> {
    const lifetime = plan.vipLifetime || plan.vipDays === null;
    const level = plan.vipLevel ?? 1;
    const fresh = {
      userId,
      level,
      isLifetime: lifetime,
      expiresAt: lifetime ? null : new Date(uow.now.getTime() + plan.vipDays! * DAY_MS),
      active: true,
      updatedAt: uow.now,
    };
    const created = await uow.em.createQueryBuilder(VipMembership).insert(fresh).onConflict('userId').ignore().returning(['userId']).execute<unknown[]>('all');
    const membership = await uow.em.findOneOrFail(VipMembership, { userId }, { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true });
    if (created.length === 0) {
      const current = membership.active;
      membership.level = current ? Math.max(membership.level, level) : level;
      if (membership.isLifetime && current) {
        // A lifetime member stays one; only the level can rise.
      } else if (lifetime) {
        membership.isLifetime = true;
        membership.expiresAt = null;
      } else {
        const base = current && membership.expiresAt && membership.expiresAt > uow.now ? membership.expiresAt : uow.now;
        membership.isLifetime = false;
        membership.expiresAt = new Date(base.getTime() + plan.vipDays! * DAY_MS);
      }
      membership.active = true;
      membership.updatedAt = uow.now;
      await uow.em.flush();
    }
    await uow.events.add('VIP_STATUS_CHANGED', { membership: membershipWire(membership) });
    const expiresAt = membership.expiresAt;
    if (expiresAt) uow.afterCommit(() => this.armExpiry(expiresAt));
    return membership;
  }

  /**
   * A refunded plan's days taken back: expiresAt - vipDays. The lapse that may follow is the expiry
   * deadline's, as any other: armed at the new expiry (at once when that has passed), it makes the
   * membership inactive and announces it. A refunded lifetime plan takes the lifetime back (it lapses
   * now: what came before it is not known); a lifetime member refunded a days plan stays one. The
   * level is left as it is, for the same reason. A membership already lapsed has nothing to take back.
   */
  async shorten(uow: UnitOfWork, userId: string, plan: Product): Promise<VipMembership | null> {
    const membership = await uow.em.findOne(VipMembership, { userId }, { lockMode: LockMode.PESSIMISTIC_WRITE, refresh: true });
    if (!membership?.active) return membership;
    if (plan.vipLifetime || plan.vipDays === null) {
      membership.isLifetime = false;
      membership.expiresAt = uow.now;
    } else if (membership.isLifetime || !membership.expiresAt) {
      return membership;
    } else {
      membership.expiresAt = new Date(membership.expiresAt.getTime() - plan.vipDays * DAY_MS);
    }
    membership.updatedAt = uow.now;
    await uow.em.flush();
    await uow.events.add('VIP_STATUS_CHANGED', { membership: membershipWire(membership) });
    const expiresAt = membership.expiresAt;
    uow.afterCommit(() => this.armExpiry(expiresAt));
    return membership;
  }

  async status(em: EntityManager, user: Identity, userId: string | null | undefined, now: Date): Promise<VipStatusView> {
    const who = userId ?? user.id;
    if (who !== user.id && user.role !== 'admin') throw forbidden("Only admins can read another user's VIP status");
    const m = await em.findOne(VipMembership, { userId: who });
    return this.view(m ?? { userId: who, level: 0, expiresAt: null, isLifetime: false, active: false }, now);
  }

  view(m: MembershipData, now: Date): VipStatusView {
    const active = m.active && (m.isLifetime || (m.expiresAt !== null && m.expiresAt > now));
    const daysRemaining =
      active && !m.isLifetime && m.expiresAt ? Math.max(0, daysBetween(localDay(now, this.timeZone), localDay(m.expiresAt, this.timeZone))) : null;
    return { userId: m.userId, level: m.level, expiresAt: m.expiresAt, isLifetime: m.isLifetime, daysRemaining, active };
  }

  /** The lapse deadline: at most `limit` active memberships whose `expiresAt` has come become inactive. */
  async expireDue(uow: UnitOfWork, limit: number, skip: readonly string[]): Promise<SettleOutcome> {
    const lapsed = await lapseDueMemberships(uow.em, uow.now, limit, skip);
    if (lapsed.length === 0) return { settled: [], failed: [] };
    await uow.events.addMany(lapsed.map((m) => ({ topic: 'VIP_STATUS_CHANGED' as const, payload: { membership: membershipWire(m) } })));
    return { settled: lapsed.map((m) => m.userId), failed: [], dueAt: lapsed.map((m) => m.expiresAt) };
  }

  async nextExpiry(em: EntityManager, skip: readonly string[]): Promise<Date | null> {
    const row = await em
      .createQueryBuilder(VipMembership)
      .select('expiresAt')
      .where(pendingMemberships(skip))
      .orderBy({ expiresAt: 'asc' })
      .limit(1)
      .execute<{ expiresAt: Date | string } | undefined>('get');
    return row ? new Date(row.expiresAt) : null;
  }

  countActive(em: EntityManager): Promise<number> {
    return em.count(VipMembership, pendingMemberships());
  }
}

import type { MikroORM } from '@mikro-orm/postgresql';
import { DeadlineWakeup } from '../../entities/DeadlineWakeup.js';
import type { DeadlineKind } from './kind.js';

/** What the metrics and the jobs API read of the deadline engine: nothing here changes anything. */

/** How many deadlines each kind has pending. */
export function pendingByKind(orm: MikroORM, kinds: readonly DeadlineKind[]): Promise<Array<{ kind: string; count: number }>> {
  return Promise.all(kinds.map(async (kind) => ({ kind: kind.name, count: await kind.countPending(orm.em.fork()) })));
}

/**
 * How long each kind's oldest pending deadline is past due at `now`, in seconds (0 when none is due):
 * a deadline nothing settles shows as a number that keeps growing. The same read as the re-arm's (the
 * first entry of the kind's index), with no deadline skipped: one that keeps failing is overdue too.
 */
export function oldestOverdue(orm: MikroORM, kinds: readonly DeadlineKind[], now: Date): Promise<Array<{ kind: string; seconds: number }>> {
  return Promise.all(
    kinds.map(async (kind) => {
      const next = await kind.nextDeadline(orm.em.fork(), []);
      return { kind: kind.name, seconds: next ? Math.max(0, (now.getTime() - next.getTime()) / 1000) : 0 };
    }),
  );
}

/** Each kind's armed time (null when none is armed). */
export async function armedTimes(orm: MikroORM, kinds: readonly string[]): Promise<Array<{ kind: string; wakeAt: Date | null }>> {
  const rows = await orm.em.fork().find(DeadlineWakeup, { kind: { $in: [...kinds] } });
  const byKind = new Map(rows.map((r) => [r.kind, r.wakeAt]));
  return kinds.map((kind) => ({ kind, wakeAt: byKind.get(kind) ?? null }));
}

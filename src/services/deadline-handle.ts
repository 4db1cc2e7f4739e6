/**
 * What a service that owns deadlines sees of the scheduling engine: a handle to arm its kind's
 * wake-up (injected at the composition root), and the outcome shape of settling a batch. The engine
 * (src/scheduling/deadlines.ts) takes these shapes as they are; services never import it.
 */

/** "A deadline of mine is now at `at`": arms the kind's wake-up no later than that. Call after commit. */
export type ArmDeadline = (at: Date) => Promise<void>;

/** A deadline whose change was rolled back, and why (retried later). */
export interface SettleFailure {
  id: string;
  reason: string;
}

/** What one batch settled, and what it had to leave as it was. Together they are the batch. */
export interface SettleOutcome {
  settled: string[];
  failed: SettleFailure[];
  /** When each settled deadline was due (same order as `settled`), for the lateness metric. */
  dueAt?: Array<Date | null>;
}

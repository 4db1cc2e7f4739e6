/**
 * The deadline engine (src/scheduling/deadlines/): `engine.ts` arms, re-arms and holds the one entry
 * point, `settleDue`; `timers.ts` is the mechanism (every instance's timer per kind, and the LISTEN
 * connection that keeps it at the armed time); `settle.ts` settles due deadlines in batches, with
 * lanes and retries; `reads.ts` answers the metrics and the jobs API; `kind.ts` is what a kind of
 * deadline (src/jobs/) implements.
 */
export { Deadlines, type DeadlinesOptions } from './deadlines/engine.js';
export {
  UnsettledDeadlines,
  WAKEUPS_CHANNEL,
  wakeJobName,
  type ArmDeadline,
  type DeadlineKind,
  type SettleFailure,
  type Settled,
  type Via,
  type WakeResult,
  type WakeupPayload,
} from './deadlines/kind.js';

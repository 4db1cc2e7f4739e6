import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ReconcileSummary } from '../services/reconciliation.js';

/** Operation names one instance labels its GraphQL operation counts with (a deployment's clients send a few dozen). */
const MAX_OPERATION_NAMES = 100;

/**
 * Prometheus metrics of one instance, `deadline_` prefixed, named after job-system exporters'
 * conventions (runs by job and outcome, a duration histogram, backlog gauges read on scrape).
 * One registry per app: tests start several apps in one process.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly jobRuns: Counter<'job' | 'outcome'>;
  readonly jobDuration: Histogram<'job'>;
  readonly lateness: Histogram<'kind'>;
  readonly reconciliation: Counter<'result'>;
  readonly reconciliationRuns: Counter<'outcome'>;
  readonly graphqlOperations: Counter<'operation' | 'outcome'>;
  readonly websocketSlowCloses: Counter;

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'deadline_' });
    this.jobRuns = new Counter({ name: 'deadline_job_runs_total', help: 'Job runs finished, by job and outcome (succeeded, failed, skipped when paused)', labelNames: ['job', 'outcome'], registers });
    this.jobDuration = new Histogram({
      name: 'deadline_job_run_duration_seconds',
      help: 'Duration of job runs, by job',
      labelNames: ['job'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.lateness = new Histogram({
      name: 'deadline_deadline_lateness_seconds',
      help: 'How late deadlines were settled (settled - due), by kind',
      labelNames: ['kind'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 3600],
      registers,
    });
    this.reconciliation = new Counter({ name: 'deadline_reconciliation_orders_total', help: 'Orders looked at by payment reconciliation, by result (checked, synced, closed, error)', labelNames: ['result'], registers });
    this.reconciliationRuns = new Counter({ name: 'deadline_reconciliation_runs_total', help: 'Payment reconciliation runs, by outcome', labelNames: ['outcome'], registers });
    this.graphqlOperations = new Counter({ name: 'deadline_graphql_operations_total', help: 'GraphQL operations over HTTP, by operation name and outcome (success, error)', labelNames: ['operation', 'outcome'], registers });
    this.websocketSlowCloses = new Counter({ name: 'deadline_websocket_slow_closes_total', help: 'WebSockets closed (1013) because their client stopped reading: over WS_MAX_BUFFERED_BYTES unsent', registers });
  }

  /** A gauge whose values are read when Prometheus scrapes. */
  gauge<L extends string>(name: string, help: string, labelNames: L[], read: (g: Gauge<L>) => Promise<void> | void): void {
    const registry = this.registry;
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        this.reset();
        await read(this);
      },
    });
  }

  jobFinished(job: string, outcome: 'succeeded' | 'failed' | 'skipped', seconds?: number): void {
    this.jobRuns.inc({ job, outcome });
    if (seconds !== undefined) this.jobDuration.observe({ job }, seconds);
  }

  deadlinesSettled(kind: string, latenessMs: number[]): void {
    for (const ms of latenessMs) this.lateness.observe({ kind }, ms / 1000);
  }

  reconciled(summary: ReconcileSummary, failed: boolean): void {
    this.reconciliationRuns.inc({ outcome: failed ? 'failed' : 'succeeded' });
    this.reconciliation.inc({ result: 'checked' }, summary.totalChecked);
    this.reconciliation.inc({ result: 'synced' }, summary.synced);
    this.reconciliation.inc({ result: 'closed' }, summary.closed);
    this.reconciliation.inc({ result: 'error' }, summary.errors);
  }

  /**
   * Operation names with a label of their own. Any client names its operations as it likes, and every
   * new name was a new series kept for the process's life: the first MAX_OPERATION_NAMES seen keep
   * theirs ('anonymous' among them), later ones count as 'other'.
   */
  private readonly operationNames = new Set<string>();

  graphqlOperation(operation: string | null | undefined, failed: boolean): void {
    let name = operation ? operation.slice(0, 100) : 'anonymous';
    if (!this.operationNames.has(name)) {
      if (this.operationNames.size < MAX_OPERATION_NAMES) this.operationNames.add(name);
      else name = 'other';
    }
    this.graphqlOperations.inc({ operation: name, outcome: failed ? 'error' : 'success' });
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

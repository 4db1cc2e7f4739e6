/**
 * Where bench:peers' time goes: every part of a run counted under what it was spent on (starting and
 * stopping processes, warm-ups, scheduling, the lead left before the due time, waiting for the ends,
 * the settle after a round, purging after a capped one), by system, and each phase's duration; so that
 * a one-round run tells how long the whole matrix would take, and where to look when it takes too long.
 */

const seconds = (ms: number) => (ms / 1000).toFixed(1);

export class TimeSpent {
  private readonly bySystem = new Map<string, Map<string, number>>();
  private readonly phases: Array<{ name: string; ms: number }> = [];

  add(system: string, what: string, ms: number): void {
    const parts = this.bySystem.get(system) ?? new Map<string, number>();
    parts.set(what, (parts.get(what) ?? 0) + Math.max(0, ms));
    this.bySystem.set(system, parts);
  }

  async time<T>(system: string, what: string, fn: () => Promise<T>): Promise<T> {
    const t = Date.now();
    try {
      return await fn();
    } finally {
      this.add(system, what, Date.now() - t);
    }
  }

  phase(name: string, ms: number): void {
    this.phases.push({ name, ms });
  }

  /** The summary printed at the end of a run (the console's, not the tables'). */
  lines(): string[] {
    const out = ['Where the time went (s):', ...this.phases.map((p) => `  ${p.name}: ${seconds(p.ms)}`)];
    const systems = [...this.bySystem].map(([system, parts]) => ({ system, parts, total: [...parts.values()].reduce((a, b) => a + b, 0) })).sort((a, b) => b.total - a.total);
    const whole = new Map<string, number>();
    for (const { system, parts, total } of systems) {
      const detail = [...parts].sort((a, b) => b[1] - a[1]).map(([what, ms]) => `${what} ${seconds(ms)}`);
      out.push(`  ${system}: ${seconds(total)} (${detail.join(', ')})`);
      for (const [what, ms] of parts) whole.set(what, (whole.get(what) ?? 0) + ms);
    }
    out.push(`  all systems: ${[...whole].sort((a, b) => b[1] - a[1]).map(([what, ms]) => `${what} ${seconds(ms)}`).join(', ')}`);
    return out;
  }
}

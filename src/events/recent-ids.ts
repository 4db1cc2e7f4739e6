/**
 * The event ids one instance has delivered, remembered for a time rather than a count, so a
 * republished copy is dropped however many events came in between. Two generations: an id is kept for
 * at least `windowMs` and at most twice that. While the subscriber is cut off (`pause`) the clock of
 * the window stops, so the events heard just before an outage are still remembered when the catch-up
 * after it delivers them again.
 *
 * Bounded by count as well, far above the rates the window is made for: a generation that reaches
 * `maxPerGeneration` (500,000) ids is rotated early, so at most 1,000,000 ids (~90 MB) are held however
 * long an outage lasts (the window is stopped then, and this instance's own events still come in) or
 * however fast events come (500,000 in a 10-minute window is 830 a second, sustained). The cost of an
 * early rotation is a copy delivered twice: every event carries its `eventId` for clients to drop it.
 */
export class RecentIds {
  private current = new Set<string>();
  private previous = new Set<string>();
  private startedAt: number;
  private pausedAt: number | undefined;

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxPerGeneration = 500_000,
  ) {
    this.startedAt = now();
  }

  /** True the first time an id is seen within the window; false for a copy. */
  firstTime(id: string): boolean {
    this.rotate();
    if (this.current.has(id) || this.previous.has(id)) return false;
    if (this.current.size >= this.maxPerGeneration) {
      this.previous = this.current;
      this.current = new Set();
      // While paused the window's clock stays where the outage stopped it.
      if (this.pausedAt === undefined) this.startedAt = this.now();
    }
    this.current.add(id);
    return true;
  }

  /** Whether an id was seen within the window, without recording it. */
  has(id: string): boolean {
    this.rotate();
    return this.current.has(id) || this.previous.has(id);
  }

  pause(): void {
    this.pausedAt ??= this.now();
  }

  resume(): void {
    if (this.pausedAt === undefined) return;
    this.startedAt += this.now() - this.pausedAt;
    this.pausedAt = undefined;
  }

  get size(): number {
    return this.current.size + this.previous.size;
  }

  private rotate(): void {
    if (this.pausedAt !== undefined) return;
    const age = this.now() - this.startedAt;
    if (age < this.windowMs) return;
    this.previous = age < 2 * this.windowMs ? this.current : new Set();
    this.current = new Set();
    this.startedAt = this.now();
  }
}

/** One item waiting for its group, and how to settle it. */
export interface Waiting<I, O> {
  item: I;
  resolve: (out: O) => void;
  reject: (err: unknown) => void;
}

export interface GroupOptions {
  /** Items in one group at most. */
  maxGroup: number;
  /** Groups running at once (each usually holds a connection of the pool). */
  inFlight: number;
}

/**
 * Runs items in groups, as a database commits in groups: an item that arrives while `inFlight`
 * groups are running waits, and the next group takes every item waiting by then (up to `maxGroup`).
 * Alone, an item goes at once in a group of one, so nothing waits for a timer. `run` settles each
 * item of its group; whatever it leaves unsettled when it throws is rejected with that error.
 */
export class GroupQueue<I, O> {
  private readonly waiting: Array<Waiting<I, O>> = [];
  private running = 0;

  constructor(
    private readonly run: (group: Array<Waiting<I, O>>) => Promise<void>,
    private readonly opts: GroupOptions,
  ) {}

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.waiting.push({ item, resolve, reject });
      this.next();
    });
  }

  private next(): void {
    while (this.running < this.opts.inFlight && this.waiting.length > 0) {
      const group = this.waiting.splice(0, this.opts.maxGroup);
      this.running++;
      void this.run(group)
        .catch((err) => {
          for (const w of group) w.reject(err); // a settled promise ignores the second call
        })
        .finally(() => {
          this.running--;
          this.next();
        });
    }
  }
}

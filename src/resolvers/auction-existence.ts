import type { AppServices } from '../app-services.js';

/** Ids remembered at most, and for how long: see `AuctionExistence`. */
const KNOWN_MAX = 10_000;
const KNOWN_MS = 10_000;

/**
 * Whether an auction exists, for the subscriptions that name one (NOT_FOUND or BAD_USER_INPUT before
 * anything listens). Asked once per subscribe, it was one query each, on an entity manager forked for
 * it: 10,000 subscribers of one auction were 10,000 identical queries while they connected. Here:
 *
 * - checks of one id that arrive while its query runs wait for that query instead of making their own;
 * - an id found is remembered for KNOWN_MS, at most KNOWN_MAX of them (the oldest dropped first), so
 *   the ids a client makes up cannot grow it: only ids of auctions that exist get in, and no more than
 *   KNOWN_MAX. Auctions are never deleted, so an id found stays true; the time limit only bounds how
 *   long a restored or truncated database could be believed;
 * - an id not found (or a failed query) is not remembered: each subscribe to it asks again and is
 *   refused with the service's own error, as before.
 */
export class AuctionExistence {
  /** Id → when it stops being believed (ms on `now`), oldest first. */
  private readonly known = new Map<string, number>();
  /** The query running for an id: one per id at a time, so no larger than the subscribes waiting. */
  private readonly checking = new Map<string, Promise<void>>();

  constructor(
    /** Resolves when the auction exists; rejects with the error a subscriber gets otherwise. */
    private readonly check: (auctionId: string) => Promise<void>,
    private readonly limits: { max: number; ms: number } = { max: KNOWN_MAX, ms: KNOWN_MS },
    private readonly now: () => number = () => performance.now(),
  ) {}

  assert(auctionId: string): Promise<void> {
    const until = this.known.get(auctionId);
    if (until !== undefined) {
      if (until > this.now()) return Promise.resolve();
      this.known.delete(auctionId);
    }
    let running = this.checking.get(auctionId);
    if (!running) {
      running = this.check(auctionId)
        .then(() => this.remember(auctionId))
        .finally(() => this.checking.delete(auctionId));
      this.checking.set(auctionId, running);
    }
    return running;
  }

  /** Ids remembered now (tests). */
  get size(): number {
    return this.known.size;
  }

  private remember(auctionId: string): void {
    this.known.delete(auctionId);
    if (this.known.size >= this.limits.max) this.known.delete(this.known.keys().next().value!);
    this.known.set(auctionId, this.now() + this.limits.ms);
  }
}

/** One per server (several run in one test process, each on its own database). */
const byServices = new WeakMap<AppServices, AuctionExistence>();

/** The server's `AuctionExistence`, asking its auction service on an entity manager let go at once. */
export function auctionExistence(services: AppServices): AuctionExistence {
  let existence = byServices.get(services);
  if (!existence) {
    existence = new AuctionExistence(async (auctionId) => {
      await services.auctions.get(services.orm.em.fork(), auctionId);
    });
    byServices.set(services, existence);
  }
  return existence;
}

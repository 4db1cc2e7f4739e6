import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { identityFromHeader } from './auth.js';
import type { AppServices } from './app-services.js';
import type { Bid } from './entities/Bid.js';
import type { PaymentIntent } from './entities/PaymentIntent.js';
import type { Identity } from './services/users.js';
import { unauthenticated, forbidden } from './errors.js';
import type { BidPageRequest } from './services/auctions.js';
import { BatchLoader } from './services/batch-loader.js';
import type { Page } from './pagination.js';

/** A graphql-ws subscription's socket and id, for results sent without graphql-ws (see sendDirect in http/subscriptions.ts). */
export interface DirectSubscriber {
  id: string;
  /** The socket's `send` (ws-writes.ts guards it: coalesced writes, a bounded backlog). */
  send(text: string): void;
}

/** Per request (or per subscription): a forked entity manager, the caller, a request id, loaders. */
export interface Context {
  requestId: string;
  user: Identity | null;
  em: EntityManager;
  services: AppServices;
  /** `Auction.bids` pages, batched: one query for the bids of a whole page of auctions. */
  bids: BatchLoader<BidPageRequest, Page<Bid>>;
  intents: BatchLoader<string, PaymentIntent | null>;
  /** HTTP only: the caller's address (H5 payments send it to the provider). */
  clientIp?: string;
  /**
   * "Now" for rules that depend on it (`Order.isExpired`): one instant for a whole HTTP response, so
   * a field and a filter agree; the clock's current time for each event of a subscription.
   */
  now(): Date;
  /** Subscriptions only: the operation, its variables and the caller's role (see sharedSubscribe). */
  operationKey?: string;
  /** Subscriptions only: the operation and its name, whose compiled form serves every subscriber of it. */
  operationText?: string;
  /** graphql-ws subscriptions: where their results are written (see sendDirect in http/subscriptions.ts). */
  subscriber?: DirectSubscriber;
}

export async function createContext(services: AppServices, authorization: unknown, requestId?: string): Promise<Context> {
  // Forked on first use: a request answered from Redis alone (a flash sale's seckill) needs none, and
  // the fork was 4% of the server's thread per request there (CPU profile of `bench:seckill`).
  let em: EntityManager | undefined;
  const emOf = () => (em ??= services.orm.em.fork());
  const user = identityFromHeader(services.tokens, authorization);
  if (user) await services.users.ensure(emOf, user);
  let instant: Date | undefined;
  return {
    requestId: requestId ?? randomUUID(),
    user,
    get em() {
      return emOf();
    },
    services,
    bids: new BatchLoader((requests) => services.auctions.bidPages(emOf(), requests)),
    intents: new BatchLoader((ids) => services.payments.intentsOf(emOf(), ids)),
    now: () => (instant ??= services.clock.now()),
  };
}

export function requireUser(ctx: Context): Identity {
  if (!ctx.user) throw unauthenticated();
  return ctx.user;
}

export function requireAdmin(ctx: Context): Identity {
  const user = requireUser(ctx);
  if (user.role !== 'admin') throw forbidden('Admins only');
  return user;
}

/**
 * The auctions' statements that are not one entity's find or flush: the set-based end of a batch and
 * the bid pages of many auctions at once. Columns come from the entities' metadata (`wireSelect`,
 * `rowsAs`), states from the state machine (`AUCTION_TRANSITIONS`), inlined as literals so the
 * planner can match `auctions_active_end_time_idx` (`where status = 'ACTIVE'`) with a generic plan.
 */
import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { sql } from 'kysely';
import { wireSelect } from '../../db/columns.js';
import { rowsAs } from '../../db/rows.js';
import { pgArray } from '../../db/sql.js';
import { Auction, AUCTION_TRANSITIONS, type AuctionStatus } from '../../entities/Auction.js';
import { Bid } from '../../entities/Bid.js';
import type { AuctionData, Wire } from '../../events/types.js';

/** The end is the transition ACTIVE -> ENDED of the state machine; refused at load if it ever is not. */
const ACTIVE: AuctionStatus = 'ACTIVE';
const ENDED: AuctionStatus = 'ENDED';
if (!AUCTION_TRANSITIONS[ACTIVE].includes(ENDED)) throw new Error('AUCTION_TRANSITIONS no longer lets an ACTIVE auction end');

/** An ended auction, as its events carry it, with the ids of its two events. */
export type EndedRow = Wire<AuctionData> & { endedEvent: string; updatedEvent: string };

/** Auctions by id, in their wire form (an outbox batch's auctions, read back to rebuild its events). */
export async function auctionsByIds(em: EntityManager, ids: readonly string[]): Promise<Array<Wire<AuctionData>>> {
  const { rows } = await sql<Wire<AuctionData>>`
    select ${wireSelect(em, Auction)} from auctions where id = any(${pgArray(ids)}::bigint[])`.execute(em.getKysely());
  return rows;
}

/**
 * At most `limit` ACTIVE auctions whose end has come, earliest first and SKIP LOCKED (an auction a bid
 * is holding is left to the next round, which then sees its moved end), ended with their winner each
 * once (`status = 'ACTIVE'` in the update), and one outbox row `topic` for the batch, whose entries are
 * `[auctionId, endedEventId, updatedEventId]`, instead of two rows per auction. For 1,000 auctions the
 * 2,000 rows, their payloads built in SQL and sent back as text took ~25 of the statement's ~40 ms and
 * 8 ms more to read (docs/benchmarks.md, "Same-instant ends").
 */
export async function endDueAuctions(
  em: EntityManager,
  topic: string,
  now: Date,
  limit: number,
  skip: readonly string[],
): Promise<Array<EndedRow & { outboxId: string }>> {
  const at = now.toISOString();
  // Event ids: a random version-4 prefix of the batch's own and, after it, the auction's id and which
  // of its two events (an auction ends once, so they never repeat). Two `gen_random_uuid()` per auction
  // were 17 of the statement's ~36 ms for 1,000 auctions (EXPLAIN ANALYZE; each call reads the kernel's
  // random source); these are string functions (~2 ms). Ids are unique below 2^59 auctions.
  const prefix = randomUUID().slice(0, 19);
  const eventId = (k: 0 | 1) => sql`${prefix}::text || '8' || overlay(lpad(to_hex(id * 2 + ${sql.lit(k)}), 15, '0') placing '-' from 4 for 0)`;
  const { rows } = await sql<EndedRow & { outboxId: string }>`
    with due as (
      select id from auctions
       where status = ${sql.lit(ACTIVE)} and end_time <= ${at}::timestamptz
             ${skip.length > 0 ? sql`and id <> all(${pgArray(skip)}::bigint[])` : sql``}
       order by end_time
       limit ${limit}
       for update skip locked),
    ended as (
      update auctions set status = ${sql.lit(ENDED)}, winner_id = highest_bidder_id, ended_at = ${at}::timestamptz
       where id = any(array(select id from due)) and status = ${sql.lit(ACTIVE)}
      returning *, ${eventId(0)} as ended_event, ${eventId(1)} as updated_event),
    batch as (
      insert into outbox_events (id, topic, payload)
      select gen_random_uuid(), ${topic}, jsonb_build_object('entries', jsonb_agg(jsonb_build_array(id::text, ended_event, updated_event) order by end_time, id))
        from ended having count(*) > 0
      returning id)
    select ${wireSelect(em, Auction)}, ended_event as "endedEvent", updated_event as "updatedEvent", (select id::text from batch) as "outboxId"
      from ended order by end_time, ended.id`.execute(em.getKysely());
  return rows;
}

/** A bid's place in the order bids are listed (highest amount, then earliest). */
export interface BidPosition {
  amount: number;
  id: string;
}

/**
 * For each auction, its bids past `cursor` (highest first, then earliest), at most `limit`, and
 * whether any lies before the cursor: one statement for a page of auctions, each auction's page its
 * own `limit` (a lateral join walking `bids_auction_id_idx`), so a page costs its size, not the
 * auction's bids.
 */
export async function bidsOfAuctions(
  em: EntityManager,
  auctionIds: readonly string[],
  cursor: BidPosition | null,
  limit: number,
): Promise<{ bids: Bid[]; previous: Set<string> }> {
  // Past the cursor: a lower amount, or the same amount placed later. Before it (hasPreviousPage): the rest.
  const beyond = cursor ? sql`and b.amount <= ${cursor.amount} and (b.amount < ${cursor.amount} or b.id > ${cursor.id}::bigint)` : sql``;
  const before = cursor
    ? sql`exists (select 1 from bids p where p.auction_id = a.id and p.amount >= ${cursor.amount} and (p.amount > ${cursor.amount} or p.id <= ${cursor.id}::bigint))`
    : sql`false`;
  const { rows } = await sql<Record<string, unknown>>`
    select a.id::text as page_of, ${before} as has_previous, b.*
      from unnest(${pgArray(auctionIds)}::bigint[]) as a(id)
      left join lateral (
        select * from bids b where b.auction_id = a.id ${beyond} order by b.amount desc, b.id limit ${limit}) b on true
     order by a.id, b.amount desc, b.id`.execute(em.getKysely());
  const previous = new Set(rows.filter((row) => row.has_previous === true).map((row) => String(row.page_of)));
  return { bids: rowsAs(em, Bid, rows.filter((row) => row.id != null)), previous };
}

import { auctionEnds } from '../src/services/auctions.js';
import { orderCloses } from '../src/services/orders/settle-close.js';

/**
 * The AUCTION_ENDED events in the outbox as a table `(auction_id, event_id)`, one row per event, whether
 * in a batch (`auctionEnds`: entries `[auctionId, endedEventId, updatedEventId]`) or a row of its own:
 * for checks that every auction ended once (bench:failover, bench:chaos and the tests that count ends).
 */
export const AUCTION_ENDED_EVENTS_SQL = `(select e ->> 0 as auction_id, e ->> 1 as event_id
   from outbox_events o cross join jsonb_array_elements(o.payload -> 'entries') e where o.topic = '${auctionEnds.topic}'
  union all
  select payload -> 'auction' ->> 'id', id::text from outbox_events where topic = 'AUCTION_ENDED')`;

/**
 * The ORDER_EXPIRED events in the outbox as a table `(order_id, event_id)`, one row per event, whether
 * in a batch (`orderCloses`: entries `[orderId, expiredEventId | null, updatedEventId]`) or a row of its
 * own: for checks that every order expired once (bench:orders, bench:chaos and the tests that count them).
 */
export const ORDER_EXPIRED_EVENTS_SQL = `(select e ->> 0 as order_id, e ->> 1 as event_id
   from outbox_events o cross join jsonb_array_elements(o.payload -> 'entries') e where o.topic = '${orderCloses.topic}' and e ->> 1 is not null
  union all
  select payload -> 'order' ->> 'id', id::text from outbox_events where topic = 'ORDER_EXPIRED')`;

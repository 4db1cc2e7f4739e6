/**
 * The fan-out peer, a process of its own: the stack the graphql-ws and Apollo documentation lead to.
 * graphql-ws's `useServer` on a `ws` server, a schema from @graphql-tools/schema, and
 * graphql-redis-subscriptions' RedisPubSub with `withFilter` on the auction's id. Serves the same
 * `auctionEnded(auctionId)` document Deadline's fan-out subscribers send (bench/fanout-clients.ts).
 * argv[2]: { redisUrl, trigger } as JSON. Says { type: 'ready', port }.
 */
import { makeExecutableSchema } from '@graphql-tools/schema';
import { RedisPubSub } from 'graphql-redis-subscriptions';
import { withFilter } from 'graphql-subscriptions';
import { useServer } from 'graphql-ws/use/ws';
import { Redis } from 'ioredis';
import { WebSocketServer } from 'ws';

const { redisUrl, trigger } = JSON.parse(process.argv[2]) as { redisUrl: string; trigger: string };
process.on('disconnect', () => process.exit(0));

const pubsub = new RedisPubSub({ publisher: new Redis(redisUrl), subscriber: new Redis(redisUrl) });

interface Ended {
  auctionEnded: { auction: { id: string; endTime: string } };
}

const schema = makeExecutableSchema({
  typeDefs: /* GraphQL */ `
    type Query { serverTime: String! }
    type Auction { id: ID! endTime: String! status: String! }
    type AuctionEnded { auction: Auction! }
    type Subscription { auctionEnded(auctionId: ID!): AuctionEnded! }
  `,
  resolvers: {
    Query: { serverTime: () => new Date().toISOString() },
    Subscription: {
      auctionEnded: {
        subscribe: withFilter(
          () => pubsub.asyncIterableIterator<Ended>(trigger),
          (payload?: Ended, variables?: { auctionId: string }) => payload?.auctionEnded.auction.id === variables?.auctionId,
        ),
      },
    },
  },
});

const server = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/graphql' });
await new Promise((resolve) => server.once('listening', resolve));
useServer({ schema }, server);
process.send!({ type: 'ready', port: (server.address() as { port: number }).port });

import { readFileSync } from 'node:fs';
import { printedSchema } from '../../src/http/emit-schema.js';

test('the committed src/schema/schema.graphql matches the code (run `npm run schema:emit` after changing the API)', async () => {
  const committed = readFileSync(new URL('../../src/schema/schema.graphql', import.meta.url), 'utf8');
  expect(await printedSchema()).toBe(committed);
});

test('the public names of PRODUCT.md are in the schema', async () => {
  const sdl = await printedSchema();
  for (const name of [
    'createAuction(input: CreateAuctionInput!): Auction!',
    'placeBid(input: PlaceBidInput!): Auction!',
    'cancelAuction(id: ID!): Auction!',
    'auctionEnded(auctionId: ID): AuctionEnded!',
    'auctionUpdated(auctionId: ID!): Auction!',
    'auctionCountdown(auctionId: ID!): AuctionCountdown!',
    'serverTime: DateTime!',
    'me: Me!',
  ]) {
    expect(sdl).toContain(name);
  }
});

import { Redis } from 'ioredis';
import type { App } from '../../src/app.js';
import { createAuction, createTestDatabase, gql, inSeconds, LogCapture, setUp, start, testConfig, type TestDatabase, token, waitUntil } from '../support/harness.js';
import { ADMIN, CANCEL, createOrder, createProduct, credit, invariants, ok, PAY, wallet, withDb } from '../support/orders.js';
import { createSale, flashSale, seckill, seckillResult } from '../support/seckill.js';

/**
 * Repairs an operator makes (issue 28, parts 3-6), end to end on a real server: a flash sale's dead
 * letters listed, replayed under the sale's rules and discarded; its stream trimmed without losing
 * what is pending; products updated and withdrawn; sales stopped; wallets adjusted; and one audit row
 * per admin mutation. Consumer timings are short so dead letters come within a second or two.
 */
let db: TestDatabase;
let app: App;
let redis: Redis;
const log = new LogCapture();
const GROUP = 'g1';

const stream = (productId: string) => `${app.services.config.seckill.keyPrefix}stream:seckill:${productId}`;
const codeOf = (res: { errors?: Array<{ extensions?: { code?: string } }> }) => res.errors?.[0]?.extensions?.code;

const DEAD_LETTERS = 'query($p: ID!, $first: Int, $after: String) { flashSaleDeadLetters(productId: $p, first: $first, after: $after) { edges { cursor node { id streamId userId reason attempts at } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } } }';
const REPLAY = 'mutation($id: ID!) { replayDeadLetter(id: $id) { requestId productId status } }';
const DISCARD = 'mutation($id: ID!) { discardDeadLetter(id: $id) }';
const STOP = 'mutation($p: ID!) { stopFlashSale(productId: $p) { productId total left sold queued deadLetters } }';
const UPDATE = 'mutation($id: ID!, $input: UpdateProductInput!) { updateProduct(id: $id, input: $input) { id name price stock active kind } }';
const ADJUST = 'mutation($u: ID!, $a: Int!, $r: String!) { adjustWallet(userId: $u, amount: $a, reason: $r) { userId balance frozen } }';
const CREDIT = 'mutation($u: ID!, $a: Int!) { creditWallet(userId: $u, amount: $a) { balance } }';
const SECKILL = 'mutation($p: ID!) { seckill(productId: $p) { status } }';

interface DeadLetterNode {
  id: string;
  streamId: string;
  userId: string | null;
  reason: string;
  attempts: number;
  at: string;
}

beforeAll(async () => {
  ({ db, app } = await setUp('repairs', { SECKILL_BLOCK_MS: '100', SECKILL_CLAIM_IDLE_MS: '400', SECKILL_MAX_DELIVERIES: '2', SECKILL_DISCOVER_SECONDS: '0.5' }, { log }));
  redis = new Redis(app.services.config.redisUrl);
});

afterAll(async () => {
  if (redis) {
    const keys = await redis.keys(`${app.services.config.seckill.keyPrefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  }
});

async function deadLetters(productId: string, first = 20, after?: string) {
  return (await ok(app, DEAD_LETTERS, { p: productId, first, after }, ADMIN)).flashSaleDeadLetters as {
    edges: Array<{ cursor: string; node: DeadLetterNode }>;
    pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  };
}

/** Live orders of a sale, by user. */
const liveBuyers = (productId: string) =>
  withDb(db.url, async (c) =>
    (await c.query(`select user_id from orders where product_id = $1 and status in ('PENDING', 'PAID') order by user_id`, [productId])).rows.map((r) => r.user_id as string),
  );

test('dead letters: listed with their reason, replayed under the sale rules (no oversell, no second unit), discarded; counted in the gauge', async () => {
  const sale = await createSale(app, 3);
  await withDb(db.url, (c) =>
    c.query(`create function poison() returns trigger language plpgsql as $$ begin raise exception 'poisoned order'; end $$;
             create trigger poison before insert on orders for each row when (new.user_id like 'poison-%') execute function poison()`),
  );
  try {
    for (const user of ['poison-a', 'poison-b', 'healthy']) expect(await seckill(app, user, sale.id)).toBe('QUEUED');
    await waitUntil(async () => (await flashSale(app, sale.id)).deadLetters === 2, 15_000, 'two dead letters');
  } finally {
    await withDb(db.url, (c) => c.query('drop trigger poison on orders; drop function poison()'));
  }
  // Oldest first, a page at a time.
  const page1 = await deadLetters(sale.id, 1);
  expect(page1.edges).toHaveLength(1);
  expect(page1.pageInfo).toMatchObject({ hasNextPage: true, hasPreviousPage: false, startCursor: page1.edges[0].cursor });
  const page2 = await deadLetters(sale.id, 1, page1.pageInfo.endCursor!);
  expect(page2.pageInfo).toMatchObject({ hasNextPage: false, hasPreviousPage: true, startCursor: page2.edges[0].cursor });
  const letters = [...page1.edges, ...page2.edges].map((e) => e.node);
  expect(letters.map((l) => l.userId).sort()).toEqual(['poison-a', 'poison-b']);
  for (const l of letters) {
    expect(l.id).toMatch(new RegExp(`^${sale.id}:\\d+-\\d+$`));
    expect(l.streamId).toMatch(/^\d+-\d+$/);
    expect(l.attempts).toBe(2);
    expect(l.reason).toContain('poisoned order');
    expect(Date.now() - Date.parse(l.at)).toBeLessThan(60_000);
  }
  const letterOf = (uid: string) => letters.find((l) => l.userId === uid)!.id;
  // Their units went back: one sold, two left.
  expect(await flashSale(app, sale.id)).toMatchObject({ total: 3, sold: 1, left: 2, deadLetters: 2 });
  const metrics = await (await fetch(new URL('/metrics', app.url))).text();
  expect(metrics).toMatch(/^deadline_seckill_dead_letters 2$/m);

  // poison-a buys again by themselves, and 'late' takes the last unit: the sale is sold out.
  expect(await seckill(app, 'poison-a', sale.id)).toBe('QUEUED');
  expect(await seckill(app, 'late', sale.id)).toBe('QUEUED');
  await waitUntil(async () => (await liveBuyers(sale.id)).length === 3, 10_000, 'three orders');

  // A replay is a request under the sale's rules: poison-a holds a unit (DUPLICATE), none is left for poison-b (SOLD_OUT).
  const dup = (await ok(app, REPLAY, { id: letterOf('poison-a') }, ADMIN)).replayDeadLetter;
  expect(dup).toMatchObject({ productId: sale.id, status: 'DUPLICATE' });
  const soldOut = (await ok(app, REPLAY, { id: letterOf('poison-b') }, ADMIN)).replayDeadLetter;
  expect(soldOut.status).toBe('SOLD_OUT');
  expect((await deadLetters(sale.id)).edges).toHaveLength(2); // refused replays keep their dead letter

  // A unit comes back ('late' cancels): the replay queues poison-b's request, which is ordered, and the dead letter goes.
  const lateOrder = (await seckillResult(app, 'late', sale.id)).orderId;
  await ok(app, CANCEL, { id: lateOrder }, token('late'));
  await waitUntil(async () => (await flashSale(app, sale.id)).left === 1, 5_000, 'the cancelled unit back');
  const queued = (await ok(app, REPLAY, { id: letterOf('poison-b') }, ADMIN)).replayDeadLetter;
  expect(queued.status).toBe('QUEUED');
  await waitUntil(async () => (await seckillResult(app, 'poison-b', sale.id)).status === 'ORDERED', 10_000, "poison-b's order");
  expect(await liveBuyers(sale.id)).toEqual(['healthy', 'poison-a', 'poison-b']);
  expect(await flashSale(app, sale.id)).toMatchObject({ total: 3, sold: 3, left: 0, deadLetters: 1 });
  expect(codeOf(await gql(app, REPLAY, { id: letterOf('poison-b') }, ADMIN))).toBe('NOT_FOUND');

  // Discarded: true once, false after.
  expect((await ok(app, DISCARD, { id: letterOf('poison-a') }, ADMIN)).discardDeadLetter).toBe(true);
  expect((await ok(app, DISCARD, { id: letterOf('poison-a') }, ADMIN)).discardDeadLetter).toBe(false);
  expect((await deadLetters(sale.id)).edges).toEqual([]);
  expect(await flashSale(app, sale.id)).toMatchObject({ sold: 3, left: 0, deadLetters: 0 });
  expect(await (await fetch(new URL('/metrics', app.url))).text()).toMatch(/^deadline_seckill_dead_letters 0$/m);

  // Ids that name no dead letter.
  expect(codeOf(await gql(app, DISCARD, { id: 'nonsense' }, ADMIN))).toBe('BAD_USER_INPUT');
  expect(codeOf(await gql(app, REPLAY, { id: '999999:1-1' }, ADMIN))).toBe('NOT_FOUND');
  expect(codeOf(await gql(app, DEAD_LETTERS, { p: sale.id, after: 'bogus' }, ADMIN))).toBe('BAD_USER_INPUT');
});

test('two replays of one dead letter at once queue it once', async () => {
  const sale = await createSale(app, 5);
  // A dead letter as the consumer's dead-letter step writes one (its unit already given back).
  const deadId = await redis.xadd(`${stream(sale.id)}:dead`, '*', 'id', '1-1', 'deliveries', '2', 'reason', 'test', 'uid', 'racer', 'ts', '1');
  const id = `${sale.id}:${deadId}`;
  const answers = await Promise.all([gql(app, REPLAY, { id }, ADMIN), gql(app, REPLAY, { id }, ADMIN)]);
  // One queued it; the other found it gone (the take and the removal are one script).
  expect(answers.map((a) => a.data?.replayDeadLetter?.status ?? codeOf(a)).sort()).toEqual(['NOT_FOUND', 'QUEUED']);
  await waitUntil(async () => (await seckillResult(app, 'racer', sale.id)).status === 'ORDERED', 10_000, "racer's order");
  expect(await liveBuyers(sale.id)).toEqual(['racer']);
  expect(await flashSale(app, sale.id)).toMatchObject({ total: 5, sold: 1, left: 4, deadLetters: 0 });
});

test('stopFlashSale closes the window at once, in PostgreSQL and in Redis; a sale not yet open closes too', async () => {
  const sale = await createSale(app, 10);
  expect(await seckill(app, 'before-stop', sale.id)).toBe('QUEUED');
  const before = Date.now();
  const stopped = (await ok(app, STOP, { p: sale.id }, ADMIN)).stopFlashSale;
  expect(stopped).toMatchObject({ productId: sale.id, total: 10 });
  // The very next request is refused, with no wait for any periodic step.
  expect(await seckill(app, 'after-stop', sale.id)).toBe('CLOSED');
  const product = (await ok(app, 'query($id: ID!) { product(id: $id) { saleStartsAt saleEndsAt } }', { id: sale.id }, ADMIN)).product;
  expect(Date.parse(product.saleEndsAt)).toBeGreaterThanOrEqual(before - 5);
  expect(Date.parse(product.saleEndsAt)).toBeLessThanOrEqual(Date.now());
  // What was queued before the stop is still ordered.
  await waitUntil(async () => (await seckillResult(app, 'before-stop', sale.id)).status === 'ORDERED', 10_000, 'the queued order');
  // Stopping again changes nothing.
  await ok(app, STOP, { p: sale.id }, ADMIN);
  const again = (await ok(app, 'query($id: ID!) { product(id: $id) { saleEndsAt } }', { id: sale.id }, ADMIN)).product;
  expect(again.saleEndsAt).toBe(product.saleEndsAt);

  const future = await createSale(app, 10, { from: 3600, to: 7200 });
  await ok(app, STOP, { p: future.id }, ADMIN);
  const closed = (await ok(app, 'query($id: ID!) { product(id: $id) { saleStartsAt saleEndsAt } }', { id: future.id }, ADMIN)).product;
  expect(Date.parse(closed.saleStartsAt)).toBeLessThan(Date.parse(closed.saleEndsAt));
  expect(Date.parse(closed.saleEndsAt)).toBeLessThanOrEqual(Date.now());
  expect(await seckill(app, 'early-bird', future.id)).toBe('CLOSED');

  const goods = await createProduct(app, { name: 'Not a sale' });
  expect(codeOf(await gql(app, STOP, { p: goods.id }, ADMIN))).toBe('BAD_USER_INPUT');
  expect(codeOf(await gql(app, STOP, { p: '999999' }, ADMIN))).toBe('NOT_FOUND');
});

test('updateProduct changes name, price and stock; a withdrawn product refuses new orders (CONFLICT) and keeps those made', async () => {
  const product = await createProduct(app, { name: 'Kettle', price: 500, stock: 10 });
  const buyer = token('kettle-buyer');
  await credit(app, 'kettle-buyer', 10_000);
  const kept = await createOrder(app, buyer, { productId: product.id, paymentMethod: 'WALLET' });

  const updated = (await ok(app, UPDATE, { id: product.id, input: { name: 'Kettle 2', price: 700, stock: 4 } }, ADMIN)).updateProduct;
  expect(updated).toEqual({ id: product.id, name: 'Kettle 2', price: 700, stock: 4, active: true, kind: 'GOODS' });
  expect((await createOrder(app, buyer, { productId: product.id, paymentMethod: 'WALLET' })).amount).toBe(700);

  const withdrawn = (await ok(app, UPDATE, { id: product.id, input: { active: false } }, ADMIN)).updateProduct;
  expect(withdrawn).toMatchObject({ name: 'Kettle 2', price: 700, stock: 3, active: false });
  const order = await gql(app, 'mutation($p: ID!) { createOrder(input: { productId: $p, quantity: 1, paymentMethod: WALLET }) { id } }', { p: product.id }, buyer);
  expect(codeOf(order)).toBe('CONFLICT');
  const adminOrder = await gql(
    app,
    'mutation($p: ID!) { adminCreateOrder(input: { userId: "kettle-buyer", productId: $p, quantity: 1, paymentMethod: OFFLINE }) { id } }',
    { p: product.id },
    ADMIN,
  );
  expect(codeOf(adminOrder)).toBe('CONFLICT');
  // The order made before is kept, and can still be paid.
  expect((await ok(app, PAY, { id: kept.id }, buyer)).payOrderWithWallet.status).toBe('PAID');
  expect((await ok(app, 'query($id: ID!) { product(id: $id) { stock active } }', { id: product.id }, buyer)).product).toEqual({ stock: 3, active: false });

  await ok(app, UPDATE, { id: product.id, input: { active: true, stock: null } }, ADMIN);
  expect((await createOrder(app, buyer, { productId: product.id, paymentMethod: 'WALLET' })).status).toBe('PENDING');

  expect(codeOf(await gql(app, UPDATE, { id: product.id, input: { name: null } }, ADMIN))).toBe('BAD_USER_INPUT');
  expect(codeOf(await gql(app, UPDATE, { id: product.id, input: { price: 0 } }, ADMIN))).toBe('BAD_USER_INPUT');
  expect(codeOf(await gql(app, UPDATE, { id: '999999', input: { name: 'x' } }, ADMIN))).toBe('NOT_FOUND');
  expect((await invariants(db.url)).violations).toEqual([]);
});

test('a withdrawn flash sale: seckill and startFlashSale answer CONFLICT, queued entries are refused; restocked and brought back, it sells again', async () => {
  const sale = await createSale(app, 5);
  const input = (i: Record<string, unknown>) => ({ id: sale.id, input: i });
  expect(codeOf(await gql(app, UPDATE, input({ stock: null }), ADMIN))).toBe('BAD_USER_INPUT');

  await ok(app, UPDATE, input({ stock: 8 }), ADMIN);
  expect(await flashSale(app, sale.id)).toMatchObject({ total: 8, left: 8, sold: 0 });

  await ok(app, UPDATE, input({ active: false }), ADMIN);
  expect(codeOf(await gql(app, SECKILL, { p: sale.id }, token('too-late')))).toBe('CONFLICT');
  expect(codeOf(await gql(app, 'mutation($p: ID!) { startFlashSale(productId: $p) { total } }', { p: sale.id }, ADMIN))).toBe('CONFLICT');
  // A BFF's entry queued meanwhile makes no order.
  await redis.xadd(stream(sale.id), '*', 'uid', 'via-bff', 'ts', '1');
  await waitUntil(async () => (await seckillResult(app, 'via-bff', sale.id)).status === 'FAILED', 10_000, "the BFF entry's outcome");
  expect((await seckillResult(app, 'via-bff', sale.id)).reason).toBe('INACTIVE');

  await ok(app, UPDATE, input({ active: true }), ADMIN);
  expect(await seckill(app, 'back-again', sale.id)).toBe('QUEUED');
  await waitUntil(async () => (await seckillResult(app, 'back-again', sale.id)).status === 'ORDERED', 10_000, 'the order after');
  expect(await flashSale(app, sale.id)).toMatchObject({ total: 8, left: 7, sold: 1 });
});

test('adjustWallet moves the balance both ways, never below zero (CONFLICT); creditWallet of an unknown user is NOT_FOUND', async () => {
  const user = 'adjusted';
  const bearer = token(user);
  await credit(app, user, 1_000);
  expect((await ok(app, ADJUST, { u: user, a: -300, r: 'double credit' }, ADMIN)).adjustWallet).toEqual({ userId: user, balance: 700, frozen: 0 });
  expect((await ok(app, ADJUST, { u: user, a: 50, r: 'goodwill' }, ADMIN)).adjustWallet.balance).toBe(750);
  expect(codeOf(await gql(app, ADJUST, { u: user, a: -751, r: 'too much' }, ADMIN))).toBe('CONFLICT');
  // Frozen money belongs to an unpaid order: only the available balance can be taken.
  const product = await createProduct(app, { name: 'Frozen part', price: 500 });
  await createOrder(app, bearer, { productId: product.id, paymentMethod: 'WALLET' });
  expect(await wallet(app, bearer)).toEqual({ balance: 250, frozen: 500 });
  expect(codeOf(await gql(app, ADJUST, { u: user, a: -251, r: 'too much' }, ADMIN))).toBe('CONFLICT');
  expect((await ok(app, ADJUST, { u: user, a: -250, r: 'all of it' }, ADMIN)).adjustWallet).toEqual({ userId: user, balance: 0, frozen: 500 });

  expect(codeOf(await gql(app, ADJUST, { u: user, a: 0, r: 'nothing' }, ADMIN))).toBe('BAD_USER_INPUT');
  expect(codeOf(await gql(app, ADJUST, { u: user, a: 10, r: ' ' }, ADMIN))).toBe('BAD_USER_INPUT');
  expect(codeOf(await gql(app, ADJUST, { u: 'never-seen', a: 10, r: 'typo' }, ADMIN))).toBe('NOT_FOUND');
  expect(codeOf(await gql(app, CREDIT, { u: 'never-seen', a: 10 }, ADMIN))).toBe('NOT_FOUND');
  const created = await withDb(db.url, async (c) => (await c.query(`select count(*)::int as n from users where id = 'never-seen'`)).rows[0].n);
  expect(created).toBe(0);

  // The ledger says the same: three ADJUST lines, signed, and the money adds up.
  const lines = await withDb(db.url, async (c) => (await c.query(`select amount from wallet_ledger where user_id = $1 and entry = 'ADJUST' order by id`, [user])).rows.map((r) => r.amount));
  expect(lines).toEqual([-300, 50, -250]);
  expect((await invariants(db.url)).violations).toEqual([]);
});

test('every admin mutation writes one audit row with its arguments and result; a refused one writes none', async () => {
  const newest = async () => (await ok(app, '{ auditLog(first: 1) { edges { node { id } } } }', {}, ADMIN)).auditLog.edges[0]?.node.id ?? '0';
  const since = async (id: string) =>
    (await ok(app, '{ auditLog(first: 100) { edges { node { id actorId action target details } } } }', {}, ADMIN)).auditLog.edges
      .map((e: { node: { id: string; actorId: string; action: string; target: string; details: string } }) => e.node)
      .filter((n: { id: string }) => BigInt(n.id) > BigInt(id))
      .reverse();
  const mark = await newest();

  await ok(app, '{ me { id } }', {}, token('audit-user'));
  const product = await createProduct(app, { name: 'Audited', price: 100 });
  await ok(app, UPDATE, { id: product.id, input: { price: 120 } }, ADMIN);
  const sale = await createSale(app, 2); // createProduct, then startFlashSale
  await ok(app, STOP, { p: sale.id }, ADMIN);
  await ok(app, CREDIT, { u: 'audit-user', a: 500 }, ADMIN);
  await ok(app, ADJUST, { u: 'audit-user', a: -100, r: 'typo' }, ADMIN);
  const auction = await createAuction(app, token('audit-user'), inSeconds(3600));
  await ok(app, 'mutation($id: ID!) { cancelAuction(id: $id) { status } }', { id: auction.id }, ADMIN);
  await ok(app, 'mutation { runJob(name: "outbox-sweep") { name } }', {}, ADMIN);
  await ok(app, 'mutation { pauseJob(name: "vip-reminders") { name } }', {}, ADMIN);
  await ok(app, 'mutation { resumeJob(name: "vip-reminders") { name } }', {}, ADMIN);
  const open = await createSale(app, 2);
  const deadA = `${open.id}:${await redis.xadd(`${stream(open.id)}:dead`, '*', 'id', '1-1', 'deliveries', '2', 'uid', 'audit-user', 'ts', '1')}`;
  const deadB = `${open.id}:${await redis.xadd(`${stream(open.id)}:dead`, '*', 'id', '1-2', 'deliveries', '2', 'uid', 'other', 'ts', '1')}`;
  await ok(app, REPLAY, { id: deadA }, ADMIN);
  await ok(app, DISCARD, { id: deadB }, ADMIN);
  // Refused: nothing changed, nothing audited.
  expect(codeOf(await gql(app, ADJUST, { u: 'audit-user', a: -1_000_000, r: 'too much' }, ADMIN))).toBe('CONFLICT');
  expect(codeOf(await gql(app, UPDATE, { id: product.id, input: { price: 1 } }, token('audit-user')))).toBe('FORBIDDEN');
  // A seller cancelling their own auction is not an admin action.
  const own = await createAuction(app, token('audit-user'), inSeconds(3600));
  await ok(app, 'mutation($id: ID!) { cancelAuction(id: $id) { status } }', { id: own.id }, token('audit-user'));

  const rows = await since(mark);
  expect(rows.map((r: { action: string; target: string }) => [r.action, r.target])).toEqual([
    ['CREATE_PRODUCT', product.id],
    ['UPDATE_PRODUCT', product.id],
    ['CREATE_PRODUCT', sale.id],
    ['START_FLASH_SALE', sale.id],
    ['STOP_FLASH_SALE', sale.id],
    ['CREDIT_WALLET', 'audit-user'],
    ['ADJUST_WALLET', 'audit-user'],
    ['CANCEL_AUCTION', auction.id],
    ['RUN_JOB', 'outbox-sweep'],
    ['PAUSE_JOB', 'vip-reminders'],
    ['RESUME_JOB', 'vip-reminders'],
    ['CREATE_PRODUCT', open.id],
    ['START_FLASH_SALE', open.id],
    ['REPLAY_DEAD_LETTER', deadA],
    ['DISCARD_DEAD_LETTER', deadB],
  ]);
  expect(rows.every((r: { actorId: string }) => r.actorId === 'admin-1')).toBe(true);
  const details = (action: string) => JSON.parse(rows.find((r: { action: string }) => r.action === action).details);
  expect(details('UPDATE_PRODUCT')).toMatchObject({ id: product.id, input: { price: 120 }, result: { id: product.id, price: 120, active: true } });
  expect(details('ADJUST_WALLET')).toEqual({ userId: 'audit-user', amount: -100, reason: 'typo', result: { userId: 'audit-user', balance: 400, frozen: 0 } });
  expect(details('CANCEL_AUCTION')).toMatchObject({ id: auction.id, result: { id: auction.id, status: 'CANCELLED' } });
  expect(details('REPLAY_DEAD_LETTER')).toMatchObject({ id: deadA, result: { productId: open.id, status: 'QUEUED' } });
  expect(details('DISCARD_DEAD_LETTER')).toEqual({ id: deadB, result: true });
  expect(details('STOP_FLASH_SALE')).toMatchObject({ productId: sale.id, result: { productId: sale.id, total: 2 } });
});

test('non-admins get FORBIDDEN on every repair', async () => {
  const sale = await createSale(app, 1);
  await ok(app, '{ me { id } }', {}, token('not-admin'));
  const attempts: Array<[string, string, Record<string, unknown>]> = [
    ['flashSaleDeadLetters', DEAD_LETTERS, { p: sale.id }],
    ['replayDeadLetter', REPLAY, { id: `${sale.id}:1-1` }],
    ['discardDeadLetter', DISCARD, { id: `${sale.id}:1-1` }],
    ['stopFlashSale', STOP, { p: sale.id }],
    ['updateProduct', UPDATE, { id: sale.id, input: { active: false } }],
    ['adjustWallet', ADJUST, { u: 'not-admin', a: 100, r: 'self-service' }],
  ];
  for (const [name, document, variables] of attempts) {
    expect([name, codeOf(await gql(app, document, variables, token('not-admin')))]).toEqual([name, 'FORBIDDEN']);
    expect([name, codeOf(await gql(app, document, variables))]).toEqual([name, 'UNAUTHENTICATED']);
  }
  expect(await seckill(app, 'not-admin', sale.id)).toBe('QUEUED'); // the sale was neither stopped nor withdrawn
});

describe('trimming a sale stream', () => {
  let trimDb: Awaited<ReturnType<typeof createTestDatabase>>;
  let trimApp: App;
  const trimStream = (productId: string) => `${trimApp.services.config.seckill.keyPrefix}stream:seckill:${productId}`;

  // A server of its own: entries must stay pending as long as the test says, so nothing is taken
  // over (SECKILL_CLAIM_IDLE_MS a minute), and the stream keeps its newest 5 entries.
  beforeAll(async () => {
    trimDb = await createTestDatabase('repairs_trim');
    trimApp = await start(testConfig(trimDb.url, { SECKILL_BLOCK_MS: '100', SECKILL_CLAIM_IDLE_MS: '60000', SECKILL_STREAM_KEEP: '5' }));
  });
  afterAll(async () => {
    await trimApp?.stop();
    const keys = await redis.keys(`${trimApp.services.config.seckill.keyPrefix}*`);
    if (keys.length) await redis.del(...keys);
    await trimDb?.drop();
  });

  const logged = (productId: string) =>
    withDb(trimDb.url, async (c) => Number((await c.query('select count(*) from seckill_logs where product_id = $1', [productId])).rows[0].count));
  const ids = async (key: string) => (await redis.xrange(key, '-', '+')).map(([id]) => id);

  test('acknowledged entries beyond SECKILL_STREAM_KEEP go; pending ones stay, and so does everything after them', async () => {
    const sale = await createSale(trimApp, 100);
    const key = trimStream(sale.id);
    const bff = async (from: number, n: number) => {
      const added: string[] = [];
      for (let i = from; i < from + n; i++) added.push((await redis.xadd(key, '*', 'uid', `trim-${i}`, 'ts', '1'))!);
      return added;
    };
    // Ten entries consumed and acknowledged: trimmed to the newest five.
    const first = await bff(0, 10);
    await waitUntil(async () => (await logged(sale.id)) === 10, 10_000, 'ten entries recorded');
    await waitUntil(async () => (await redis.xlen(key)) === 5, 10_000, 'the stream trimmed to 5');
    expect(await ids(key)).toEqual(first.slice(5));

    // Two entries a consumer read and never acknowledged (XADD and the read in one MULTI, so this
    // server's consumer cannot read them first), then ten more that are acknowledged.
    const multi = redis.multi();
    multi.xadd(key, '*', 'uid', 'held-1', 'ts', '1');
    multi.xadd(key, '*', 'uid', 'held-2', 'ts', '1');
    multi.xreadgroup('GROUP', GROUP, 'consumer-that-hangs', 'COUNT', 10, 'STREAMS', key, '>');
    const held = ((await multi.exec())!.slice(0, 2) as Array<[Error | null, string]>).map(([, id]) => id);
    expect(((await redis.xpending(key, GROUP)))[0]).toBe(2);
    const after = await bff(10, 10);
    await waitUntil(async () => (await logged(sale.id)) === 20, 10_000, 'ten more recorded');
    // 17 entries, 5 to keep: the 12 oldest would go, but the bound is the oldest pending entry. The
    // acknowledged entries before it go; the pending ones and all after them stay.
    await waitUntil(async () => (await ids(key))[0] === held[0], 10_000, 'the entries before the pending ones trimmed');
    expect(await ids(key)).toEqual([...held, ...after]);
    expect(((await redis.xpending(key, GROUP)))[0]).toBe(2);

    // Once acknowledged, they go too, with the next trim (after the next acknowledgement).
    await redis.xack(key, GROUP, ...held);
    const last = await bff(20, 1);
    await waitUntil(async () => (await redis.xlen(key)) === 5, 10_000, 'the stream trimmed to 5 again');
    expect(await ids(key)).toEqual([...after, ...last].slice(-5));
  });
});

import { readFileSync } from 'node:fs';
import { buildSchema } from 'graphql';
import type { Client } from 'graphql-ws';
import { Redis } from 'ioredis';
import type { App } from '../../src/app.js';
import { createAuction, gql, inSeconds, paymentSandbox, setUp, sleep, Subscription, token, waitUntil, wsClient } from '../support/harness.js';
import { ADMIN, createProduct, credit, ok } from '../support/orders.js';
import { createSale } from '../support/seckill.js';

/**
 * The authorization matrix: every query, mutation and subscription of schema.graphql, tried as an
 * anonymous caller, as the user who owns the objects involved ("owner"), as another user who owns
 * none of them ("stranger") and as an admin, over HTTP (queries, mutations) and over graphql-ws
 * (subscriptions). The tables below say what each of them must get; an operation of the schema
 * without an entry fails the first test.
 *
 * Outcomes:
 * - UNAUTHENTICATED / FORBIDDEN / NOT_FOUND: refused with that `extensions.code`, no data, and for a
 *   mutation nothing changed (its `state` reads the same before and after).
 * - allowed: answered without errors (public data, or an action anyone signed in may take).
 * - own: answered, showing only the caller's own objects; the owner sees theirs. A mutation changes
 *   the owner's state only when the owner calls it.
 * - all: answered, showing the owner's objects to a caller who is not the owner (admins).
 * Subscriptions:
 * - SOCKET_4403: the socket is closed with graphql-ws's 4403 Forbidden at connection time (no token).
 * - FORBIDDEN: the subscription is refused with that code and hears nothing.
 * - own: the caller hears an event about the owner's object only when the caller is the owner.
 * - all: the caller hears the event about the owner's object.
 */

type Role = 'anonymous' | 'owner' | 'stranger' | 'admin';
const ROLES: Role[] = ['anonymous', 'owner', 'stranger', 'admin'];
type Refusal = 'UNAUTHENTICATED' | 'FORBIDDEN' | 'NOT_FOUND';
type Outcome = Refusal | 'allowed' | 'own' | 'all';
type SubOutcome = 'SOCKET_4403' | 'FORBIDDEN' | 'own' | 'all';
type Expect<O> = Record<Role, O>;
type Vars = Record<string, any>;

const OWNER = 'authz-owner';
const STRANGER = 'authz-stranger';
const ADMIN_ID = 'admin-1'; // ADMIN's subject
const idOf: Record<Role, string | null> = { anonymous: null, owner: OWNER, stranger: STRANGER, admin: ADMIN_ID };
const bearer: Record<Role, string | undefined> = { anonymous: undefined, owner: token(OWNER), stranger: token(STRANGER), admin: ADMIN };

/** Objects made before the tables run; the owner owns every one of them. */
interface Fixtures {
  goods: string;
  vipPlan: string;
  auction: string;
  order: string;
  paidOrder: string;
  sale: string;
  /** Which user each order made here belongs to (payments show their order's id, not the buyer's). */
  orderOwner: Map<string, string>;
}
let fx: Fixtures;

interface Case {
  document: string;
  /** Called once per role (a mutation gets fresh objects for each attempt). */
  variables?: (role: Role) => Vars | Promise<Vars>;
  expect: Expect<Outcome>;
  /** Whose objects the answer shows (user ids), for `own` and `all`. */
  shows?: (answer: any, vars: Vars) => string[];
  /** Mutations: what the attempt may change, read as a user would. */
  state?: (vars: Vars) => Promise<unknown>;
  cleanup?: () => Promise<void>;
}

interface SubCase {
  document: string;
  variables?: () => Vars | Promise<Vars>;
  expect: Expect<SubOutcome>;
  /** The bus channel a caller's subscription listens on once it runs; null: it answers at once instead. */
  channel: ((vars: Vars, userId: string) => string) | null;
  /** Makes an event about the owner's object; returns what identifies it. */
  trigger: (vars: Vars) => Promise<unknown>;
  about: (event: any, vars: Vars, mark: unknown) => boolean;
}

const U: Refusal = 'UNAUTHENTICATED';
const F: Refusal = 'FORBIDDEN';
const adminOnly: Expect<Outcome> = { anonymous: U, owner: F, stranger: F, admin: 'allowed' };
const anyUser: Expect<Outcome> = { anonymous: U, owner: 'allowed', stranger: 'allowed', admin: 'allowed' };
const ownOnly: Expect<Outcome> = { anonymous: U, owner: 'own', stranger: 'own', admin: 'own' };
const ownOrAdmin: Expect<Outcome> = { anonymous: U, owner: 'own', stranger: 'own', admin: 'all' };
const ownerOrAdmin: Expect<Outcome> = { anonymous: U, owner: 'own', stranger: F, admin: 'all' };

const ORDER = 'id userId status';
const nodes = (connection: { edges: Array<{ node: any }> }) => connection.edges.map((e) => e.node);
const userIds = (connection: { edges: Array<{ node: { userId: string } }> }) => nodes(connection).map((n) => n.userId);

// ---- helpers that act as a user would, used to make fresh objects and read state ----

let app: App;
let redis: Redis;
const clients: Client[] = [];

async function ownerOrder(paymentMethod = 'WALLET'): Promise<{ id: string; orderNo: string }> {
  const data = await ok(app, `mutation($p: ID!, $m: PaymentMethod!) { createOrder(input: { productId: $p, quantity: 1, paymentMethod: $m }) { id orderNo } }`, { p: fx.goods, m: paymentMethod }, bearer.owner!);
  fx.orderOwner.set(data.createOrder.id, OWNER);
  return data.createOrder;
}
const ownerAuction = async () => (await createAuction(app, bearer.owner!, inSeconds(3600))).id;
const orderStatus = async (v: Vars) => (await ok(app, 'query($id: ID!) { order(id: $id) { status } }', { id: v.orderId }, ADMIN)).order.status;
const auctionState = async (v: Vars) => (await ok(app, 'query($id: ID!) { auction(id: $id) { status highestBid } }', { id: v.id ?? v.input.auctionId }, ADMIN)).auction;
const unread = async () => (await ok(app, '{ unreadMessageCount }', {}, bearer.owner!)).unreadMessageCount;
const balance = async () => (await ok(app, '{ wallet { balance } }', {}, bearer.owner!)).wallet.balance;
const jobDisabled = async (name: string) => (await app.services.jobs.list()).find((j) => j.name === name)!.disabled;
async function messageToOwner(title = 'hello'): Promise<string> {
  const m = await app.services.tx.run((uow) => app.services.messages.send(uow, { userId: OWNER, kind: 'NOTICE', title, body: title }));
  return m.id;
}
/** A dead letter of the owner's sale for `uid`, written as the consumer's dead-letter step writes one. */
async function deadLetter(uid: string): Promise<string> {
  const deadId = await redis.xadd(`${app.services.config.seckill.keyPrefix}stream:seckill:${fx.sale}:dead`, '*', 'id', '1-1', 'deliveries', '5', 'reason', 'authz', 'uid', uid, 'ts', '1');
  return `${fx.sale}:${deadId}`;
}
const deadLetterThere = async (id: string) =>
  (await redis.xrange(`${app.services.config.seckill.keyPrefix}stream:seckill:${id.split(':')[0]}:dead`, id.split(':')[1], id.split(':')[1])).length;
/** A WALLET order of the owner's, paid: what refundOrder takes. */
async function ownerPaidOrder(): Promise<string> {
  const { id } = await ownerOrder();
  await ok(app, 'mutation($id: ID!) { payOrderWithWallet(orderId: $id) { id } }', { id }, bearer.owner!);
  return id;
}
/** A payment of the owner's kept for a refund (the provider took 1 cent for a 500-cent order): what refundPayment takes. */
async function ownerPaymentNeedingRefund(): Promise<string> {
  const order = await ownerOrder('WECHAT');
  await sandboxPay(order.orderNo, { amount: 1 });
  const query = 'query($o: ID) { payments(filter: { orderId: $o }) { edges { node { id } } } }';
  let id: string | undefined;
  await waitUntil(async () => (id = (await ok(app, query, { o: order.id }, ADMIN)).payments.edges[0]?.node.id) !== undefined, 10_000, 'the payment kept for a refund');
  return id!;
}
const refundsOfPayment = async (v: Vars) =>
  (await ok(app, '{ refunds(first: 100) { edges { node { payment { id } } } } }', {}, ADMIN)).refunds.edges.filter((e: any) => e.node.payment?.id === v.paymentId).length;
async function sandboxPay(orderNo: string, body: Record<string, unknown>): Promise<void> {
  const sandbox = await paymentSandbox();
  const res = await fetch(`${sandbox.url}/sandbox/trades/${orderNo}/pay`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`sandbox pay answered ${res.status}`);
}

// ---- the tables ----

const QUERIES: Record<string, Case> = {
  auction: { document: 'query($id: ID!) { auction(id: $id) { id sellerId } }', variables: () => ({ id: fx.auction }), expect: anyUser },
  auctions: { document: '{ auctions(first: 5) { edges { node { id } } } }', expect: anyUser },
  auditLog: { document: '{ auditLog(first: 5) { edges { node { id action } } } }', expect: adminOnly },
  flashSale: { document: 'query($p: ID!) { flashSale(productId: $p) { productId total } }', variables: () => ({ p: fx.sale }), expect: adminOnly },
  flashSaleDeadLetters: {
    document: 'query($p: ID!) { flashSaleDeadLetters(productId: $p, first: 5) { edges { node { id userId } } } }',
    variables: () => ({ p: fx.sale }),
    expect: adminOnly,
  },
  jobRuns: { document: '{ jobRuns(name: "deadline-sweep", first: 5) { edges { node { name } } } }', expect: adminOnly },
  jobs: { document: '{ jobs { name } }', expect: adminOnly },
  me: { document: '{ me { id role } }', expect: ownOnly, shows: (me) => [me.id] },
  // Only the owner ever has messages in this file.
  messages: { document: '{ messages(first: 50) { edges { node { id userId } } } }', expect: ownOnly, shows: userIds },
  order: { document: `query($id: ID!) { order(id: $id) { ${ORDER} } }`, variables: () => ({ id: fx.order }), expect: ownerOrAdmin, shows: (o) => [o.userId] },
  orders: { document: `{ orders(first: 50) { edges { node { ${ORDER} } } } }`, expect: ownOrAdmin, shows: userIds },
  'orders#userId': {
    document: `query($u: ID) { orders(filter: { userId: $u }, first: 50) { edges { node { ${ORDER} } } } }`,
    variables: () => ({ u: OWNER }),
    expect: ownerOrAdmin,
    shows: userIds,
  },
  payments: {
    document: '{ payments(first: 50) { edges { node { id orderId } } } }',
    expect: ownOrAdmin,
    shows: (c) => nodes(c).map((p) => fx.orderOwner.get(p.orderId) ?? `the owner of order ${p.orderId}`),
  },
  'payments#orderId': {
    document: 'query($o: ID) { payments(filter: { orderId: $o }, first: 50) { edges { node { id orderId } } } }',
    variables: () => ({ o: fx.paidOrder }),
    expect: ownerOrAdmin,
    shows: (c) => nodes(c).map((p) => fx.orderOwner.get(p.orderId) ?? `the owner of order ${p.orderId}`),
  },
  product: { document: 'query($id: ID!) { product(id: $id) { id price } }', variables: () => ({ id: fx.goods }), expect: anyUser },
  refunds: { document: '{ refunds(first: 5) { edges { node { id status } } } }', expect: adminOnly },
  products: { document: '{ products { id } }', expect: anyUser },
  // Only the owner took part in this sale: an outcome other than NONE is the owner's.
  seckillResult: {
    document: 'query($p: ID!) { seckillResult(productId: $p) { status orderId } }',
    variables: () => ({ p: fx.sale }),
    expect: ownOnly,
    shows: (r) => (r.status === 'NONE' ? [] : [OWNER]),
  },
  serverTime: { document: '{ serverTime }', expect: { anonymous: 'allowed', owner: 'allowed', stranger: 'allowed', admin: 'allowed' } },
  unreadMessageCount: { document: '{ unreadMessageCount }', expect: ownOnly, shows: (n) => (n > 0 ? [OWNER] : []) },
  vipStatus: { document: '{ vipStatus { userId active } }', expect: ownOnly, shows: (s) => [s.userId] },
  'vipStatus#userId': {
    document: 'query($u: ID) { vipStatus(userId: $u) { userId active } }',
    variables: () => ({ u: OWNER }),
    expect: ownerOrAdmin,
    shows: (s) => [s.userId],
  },
  wallet: { document: '{ wallet { userId balance } }', expect: ownOnly, shows: (w) => [w.userId] },
};

const MUTATIONS: Record<string, Case> = {
  adjustWallet: {
    document: 'mutation($u: ID!, $a: Int!, $r: String!) { adjustWallet(userId: $u, amount: $a, reason: $r) { userId balance } }',
    variables: () => ({ u: OWNER, a: 100, r: 'authz matrix' }),
    expect: adminOnly,
    state: balance,
  },
  adminCreateOrder: {
    document: `mutation($input: AdminCreateOrderInput!) { adminCreateOrder(input: $input) { ${ORDER} } }`,
    variables: () => ({ input: { userId: OWNER, productId: fx.goods, quantity: 1, paymentMethod: 'OFFLINE' } }),
    expect: adminOnly,
    state: async () => nodes((await ok(app, '{ orders(filter: { userId: "authz-owner" }, first: 100) { edges { node { id } } } }', {}, ADMIN)).orders).length,
  },
  cancelAuction: {
    document: 'mutation($id: ID!) { cancelAuction(id: $id) { id status } }',
    variables: async () => ({ id: await ownerAuction() }),
    expect: { anonymous: U, owner: 'allowed', stranger: F, admin: 'allowed' },
    state: auctionState,
  },
  cancelOrder: {
    document: `mutation($orderId: ID!) { cancelOrder(orderId: $orderId) { ${ORDER} } }`,
    variables: async () => ({ orderId: (await ownerOrder()).id }),
    expect: ownerOrAdmin,
    shows: (o) => [o.userId],
    state: orderStatus,
  },
  discardDeadLetter: {
    document: 'mutation($id: ID!) { discardDeadLetter(id: $id) }',
    variables: async (role) => ({ id: await deadLetter(`authz-discard-${role}`) }),
    expect: adminOnly,
    state: (v) => deadLetterThere(v.id),
  },
  createAuction: {
    document: 'mutation($input: CreateAuctionInput!) { createAuction(input: $input) { id sellerId } }',
    variables: () => ({ input: { nftId: 'nft-authz', title: 'Lot', startingPrice: 100, minIncrement: 10, endTime: inSeconds(3600), softCloseSeconds: 0 } }),
    expect: ownOnly,
    shows: (a) => [a.sellerId],
  },
  createOrder: {
    document: `mutation($input: CreateOrderInput!) { createOrder(input: $input) { ${ORDER} } }`,
    variables: () => ({ input: { productId: fx.goods, quantity: 1, paymentMethod: 'WECHAT' } }),
    expect: ownOnly,
    shows: (o) => [o.userId],
  },
  createProduct: {
    document: 'mutation($input: CreateProductInput!) { createProduct(input: $input) { id } }',
    variables: () => ({ input: { name: 'Authz', price: 100, kind: 'GOODS' } }),
    expect: adminOnly,
    state: async () => (await ok(app, '{ products { id } }', {}, ADMIN)).products.length,
  },
  creditWallet: {
    document: 'mutation($u: ID!, $a: Int!) { creditWallet(userId: $u, amount: $a) { userId balance } }',
    variables: () => ({ u: OWNER, a: 100 }),
    expect: adminOnly,
    state: balance,
  },
  markAllMessagesRead: {
    document: 'mutation { markAllMessagesRead }',
    variables: async () => (await messageToOwner(), {}),
    expect: ownOnly,
    state: unread,
  },
  markMessageRead: {
    document: 'mutation($id: ID!) { markMessageRead(id: $id) { id userId readAt } }',
    variables: async () => ({ id: await messageToOwner() }),
    // Messages are private to their owner, admins included: another's id is NOT_FOUND, not FORBIDDEN.
    expect: { anonymous: U, owner: 'own', stranger: 'NOT_FOUND', admin: 'NOT_FOUND' },
    shows: (m) => [m.userId],
    state: unread,
  },
  pauseJob: {
    document: 'mutation { pauseJob(name: "vip-reminders") { name disabled } }',
    expect: adminOnly,
    state: () => jobDisabled('vip-reminders'),
    cleanup: async () => void (await app.services.jobs.resume('vip-reminders')),
  },
  payOrderWithWallet: {
    document: `mutation($orderId: ID!) { payOrderWithWallet(orderId: $orderId) { ${ORDER} } }`,
    variables: async () => ({ orderId: (await ownerOrder()).id }),
    expect: ownerOrAdmin,
    shows: (o) => [o.userId],
    state: orderStatus,
  },
  placeBid: {
    document: 'mutation($input: PlaceBidInput!) { placeBid(input: $input) { id highestBid } }',
    variables: async () => ({ input: { auctionId: await ownerAuction(), amount: 100 } }),
    // The owner is the seller: sellers cannot bid on their own auction.
    expect: { anonymous: U, owner: F, stranger: 'allowed', admin: 'allowed' },
    state: auctionState,
  },
  refundOrder: {
    document: `mutation($orderId: ID!) { refundOrder(orderId: $orderId, reason: "authz matrix") { id status order { ${ORDER} } } }`,
    variables: async () => ({ orderId: await ownerPaidOrder() }),
    expect: adminOnly,
    state: orderStatus,
  },
  refundPayment: {
    document: 'mutation($paymentId: ID!) { refundPayment(paymentId: $paymentId, reason: "authz matrix") { id status } }',
    variables: async () => ({ paymentId: await ownerPaymentNeedingRefund() }),
    expect: adminOnly,
    state: refundsOfPayment,
  },
  replayDeadLetter: {
    document: 'mutation($id: ID!) { replayDeadLetter(id: $id) { productId status } }',
    variables: async (role) => ({ id: await deadLetter(`authz-replay-${role}`) }),
    expect: adminOnly,
    state: (v) => deadLetterThere(v.id),
  },
  resumeJob: {
    document: 'mutation { resumeJob(name: "vip-reminders") { name disabled } }',
    variables: async () => (await app.services.jobs.pause('vip-reminders'), {}),
    expect: adminOnly,
    state: () => jobDisabled('vip-reminders'),
    cleanup: async () => void (await app.services.jobs.resume('vip-reminders')),
  },
  runJob: {
    document: 'mutation { runJob(name: "outbox-sweep") { name } }',
    expect: adminOnly,
  },
  seckill: {
    document: 'mutation($p: ID!) { seckill(productId: $p) { productId status } }',
    variables: async () => ({ p: (await createSale(app, 10)).id }),
    expect: anyUser,
  },
  stopFlashSale: {
    document: 'mutation($p: ID!) { stopFlashSale(productId: $p) { productId total } }',
    variables: async () => ({ p: (await createSale(app, 10)).id }),
    expect: adminOnly,
    state: async (v) => (await ok(app, 'query($id: ID!) { product(id: $id) { saleEndsAt } }', { id: v.p }, ADMIN)).product.saleEndsAt,
  },
  startFlashSale: {
    document: 'mutation($p: ID!) { startFlashSale(productId: $p) { productId total } }',
    variables: async () => ({ p: (await createSale(app, 10, { start: false })).id }),
    expect: adminOnly,
  },
  updateProduct: {
    document: 'mutation($id: ID!, $input: UpdateProductInput!) { updateProduct(id: $id, input: $input) { id name } }',
    variables: async (role) => ({ id: (await createProduct(app, { name: 'Before' })).id, input: { name: `After ${role}` } }),
    expect: adminOnly,
    state: async (v) => (await ok(app, 'query($id: ID!) { product(id: $id) { name } }', { id: v.id }, ADMIN)).product.name,
  },
};

const subOnlyAdmin: Expect<SubOutcome> = { anonymous: 'SOCKET_4403', owner: 'FORBIDDEN', stranger: 'FORBIDDEN', admin: 'all' };
const subAnyUser: Expect<SubOutcome> = { anonymous: 'SOCKET_4403', owner: 'all', stranger: 'all', admin: 'all' };
const subOwnOnly: Expect<SubOutcome> = { anonymous: 'SOCKET_4403', owner: 'own', stranger: 'own', admin: 'own' };
const subOwnOrAdmin: Expect<SubOutcome> = { anonymous: 'SOCKET_4403', owner: 'own', stranger: 'own', admin: 'all' };

const SUBSCRIPTIONS: Record<string, SubCase> = {
  auctionCountdown: {
    document: 'subscription($id: ID!) { auctionCountdown(auctionId: $id) { auctionId status } }',
    variables: async () => ({ id: await ownerAuction() }),
    expect: subAnyUser,
    channel: null,
    trigger: () => Promise.resolve(undefined),
    about: (e, v) => e.auctionCountdown.auctionId === v.id,
  },
  auctionEnded: {
    document: 'subscription { auctionEnded { auction { id } winnerId } }',
    expect: subAnyUser,
    channel: () => 'AUCTION_ENDED',
    trigger: async () => (await createAuction(app, bearer.owner!, inSeconds(1.5))).id,
    about: (e, _v, id) => e.auctionEnded.auction.id === id,
  },
  auctionUpdated: {
    document: 'subscription($id: ID!) { auctionUpdated(auctionId: $id) { id highestBid } }',
    variables: async () => ({ id: await ownerAuction() }),
    expect: subAnyUser,
    channel: (v) => `AUCTION_UPDATED:${v.id}`,
    trigger: (v) => ok(app, 'mutation($a: ID!) { placeBid(input: { auctionId: $a, amount: 100 }) { id } }', { a: v.id }, bearer.stranger!),
    about: (e, v) => e.auctionUpdated.id === v.id,
  },
  jobEvents: {
    document: 'subscription { jobEvents { name event } }',
    expect: subOnlyAdmin,
    channel: () => 'JOB_EVENTS',
    trigger: () => app.services.jobs.run('outbox-sweep'),
    about: (e) => e.jobEvents.name === 'outbox-sweep',
  },
  messageReceived: {
    document: 'subscription { messageReceived { id userId } }',
    expect: subOwnOnly,
    channel: (_v, userId) => `MESSAGE_RECEIVED:${userId}`,
    trigger: () => messageToOwner('live'),
    about: (e, _v, id) => e.messageReceived.id === id,
  },
  orderExpired: {
    document: 'subscription { orderExpired { order { id userId } } }',
    variables: async () => ({ orderId: (await ownerOrder()).id }),
    expect: subOwnOrAdmin,
    channel: () => 'ORDER_EXPIRED',
    trigger: (v) => app.services.tx.run((uow) => app.services.orderSettlement.expireNow(uow, v.orderId, 'authz matrix')),
    about: (e, v) => e.orderExpired.order.id === v.orderId,
  },
  orderUpdated: {
    document: 'subscription($orderId: ID!) { orderUpdated(orderId: $orderId) { id status } }',
    variables: async () => ({ orderId: (await ownerOrder()).id }),
    expect: { anonymous: 'SOCKET_4403', owner: 'own', stranger: 'FORBIDDEN', admin: 'all' },
    channel: (v) => `ORDER_UPDATED:${v.orderId}`,
    trigger: (v) => ok(app, 'mutation($id: ID!) { cancelOrder(orderId: $id) { id } }', { id: v.orderId }, bearer.owner!),
    about: (e, v) => e.orderUpdated.id === v.orderId,
  },
  paymentNeedsRefund: {
    document: 'subscription { paymentNeedsRefund { orderId orderNo needsRefund } }',
    expect: subOnlyAdmin,
    channel: () => 'PAYMENT_NEEDS_REFUND',
    trigger: async () => {
      const order = await ownerOrder('WECHAT');
      await sandboxPay(order.orderNo, { amount: 1 });
      return order.id;
    },
    about: (e, _v, id) => e.paymentNeedsRefund.orderId === id,
  },
  refundUpdated: {
    document: 'subscription { refundUpdated { id status order { id } } }',
    expect: subOnlyAdmin,
    channel: () => 'REFUND_UPDATED',
    trigger: async () => {
      const orderId = await ownerPaidOrder();
      await ok(app, 'mutation($id: ID!) { refundOrder(orderId: $id, reason: "authz matrix") { id } }', { id: orderId }, ADMIN);
      return orderId;
    },
    about: (e, _v, id) => e.refundUpdated.order?.id === id,
  },
  seckillResultReady: {
    document: 'subscription($p: ID!) { seckillResultReady(productId: $p) { status orderId } }',
    variables: async () => ({ p: (await createSale(app, 10)).id }),
    expect: subOwnOnly,
    channel: (v, userId) => `SECKILL_RESULT:${v.p}:${userId}`,
    trigger: (v) => ok(app, 'mutation($p: ID!) { seckill(productId: $p) { status } }', { p: v.p }, bearer.owner!),
    // Only the owner asked for a unit of this sale: any outcome heard is the owner's.
    about: () => true,
  },
  vipStatusChanged: {
    document: 'subscription { vipStatusChanged { userId level } }',
    expect: subOwnOrAdmin,
    channel: () => 'VIP_STATUS_CHANGED',
    trigger: async () => {
      const order = await ok(app, 'mutation($p: ID!) { createOrder(input: { productId: $p, quantity: 1, paymentMethod: WALLET }) { id } }', { p: fx.vipPlan }, bearer.owner!);
      await ok(app, 'mutation($id: ID!) { payOrderWithWallet(orderId: $id) { status } }', { id: order.createOrder.id }, bearer.owner!);
    },
    about: (e) => e.vipStatusChanged.userId === OWNER,
  },
};

// ---- set-up ----

beforeAll(async () => {
  ({ app } = await setUp('authz_matrix'));
  redis = new Redis(app.services.config.redisUrl);
  for (const role of ['owner', 'stranger', 'admin'] as const) await ok(app, '{ me { id } }', {}, bearer[role]!);
  const goods = await createProduct(app, { name: 'Tea', price: 500 });
  const vipPlan = await createProduct(app, { name: 'VIP', price: 100, kind: 'VIP_PLAN', vipDays: 30, vipLevel: 1 });
  fx = { goods: goods.id, vipPlan: vipPlan.id, auction: '', order: '', paidOrder: '', sale: '', orderOwner: new Map() };
  await credit(app, OWNER, 1_000_000);
  fx.auction = await ownerAuction();
  fx.order = (await ownerOrder()).id;
  await messageToOwner();
  // A payment of the owner's: the provider took 1 cent for a 500-cent order (kept for a refund).
  const paid = await ownerOrder('WECHAT');
  fx.paidOrder = paid.id;
  await sandboxPay(paid.orderNo, { amount: 1 });
  const payments = 'query($o: ID) { payments(filter: { orderId: $o }) { edges { node { id } } } }';
  await waitUntil(async () => (await ok(app, payments, { o: paid.id }, ADMIN)).payments.edges.length === 1, 10_000, "the owner's payment");
  // The owner's outcome in a flash sale.
  fx.sale = (await createSale(app, 10)).id;
  await ok(app, 'mutation($p: ID!) { seckill(productId: $p) { status } }', { p: fx.sale }, bearer.owner!);
});

afterAll(async () => {
  for (const c of clients) await c.dispose();
  redis?.disconnect();
});

// ---- the checks ----

const base = (key: string) => key.split('#')[0];
const isRefusal = (o: string): o is Refusal => o === 'UNAUTHENTICATED' || o === 'FORBIDDEN' || o === 'NOT_FOUND';

test('every operation of schema.graphql and of the running server has an entry, and every entry an operation', async () => {
  const file = buildSchema(readFileSync(new URL('../../src/schema/schema.graphql', import.meta.url), 'utf8'));
  const names = (fields: Record<string, unknown> | undefined) => Object.keys(fields ?? {}).sort();
  const tables = {
    query: [...new Set(Object.keys(QUERIES).map(base))].sort(),
    mutation: [...new Set(Object.keys(MUTATIONS).map(base))].sort(),
    subscription: Object.keys(SUBSCRIPTIONS).sort(),
  };
  expect({
    query: names(file.getQueryType()?.getFields()),
    mutation: names(file.getMutationType()?.getFields()),
    subscription: names(file.getSubscriptionType()?.getFields()),
  }).toEqual(tables);
  const live = await ok(app, '{ __schema { queryType { fields { name } } mutationType { fields { name } } subscriptionType { fields { name } } } }', {}, ADMIN);
  const liveNames = (t: { fields: Array<{ name: string }> }) => t.fields.map((f) => f.name).sort();
  expect({
    query: liveNames(live.__schema.queryType),
    mutation: liveNames(live.__schema.mutationType),
    subscription: liveNames(live.__schema.subscriptionType),
  }).toEqual(tables);
});

async function attempt(key: string, c: Case, role: Role): Promise<void> {
  const field = base(key);
  const expected = c.expect[role];
  const vars = (await c.variables?.(role)) ?? {};
  const before = c.state ? await c.state(vars) : undefined;
  try {
    const res = await gql(app, c.document, vars, bearer[role]);
    const answer = res.data?.[field] ?? null;
    // The label makes a failure say which cell of the table broke.
    const cell = `${key} as ${role}`;
    if (isRefusal(expected)) {
      expect({ cell, code: res.errors?.[0]?.extensions?.code, answer }).toEqual({ cell, code: expected, answer: null });
      if (c.state) expect({ cell, state: await c.state(vars) }).toEqual({ cell, state: before });
      return;
    }
    expect({ cell, errors: res.errors }).toEqual({ cell, errors: undefined });
    expect(answer).not.toBeNull();
    if (c.shows && expected !== 'allowed') {
      const shown = c.shows(answer, vars);
      if (expected === 'own') {
        expect({ cell, shown: shown.filter((id) => id !== idOf[role]) }).toEqual({ cell, shown: [] });
        if (role === 'owner') expect({ cell, seesOwn: shown.length > 0 }).toEqual({ cell, seesOwn: true });
      } else {
        expect({ cell, seesOwners: shown.includes(OWNER) }).toEqual({ cell, seesOwners: true });
      }
    }
    if (c.state) {
      const changes = expected !== 'own' || role === 'owner';
      const after = await c.state(vars);
      expect({ cell, changed: JSON.stringify(after) !== JSON.stringify(before) }).toEqual({ cell, changed: changes });
    }
  } finally {
    await c.cleanup?.();
  }
}

const rows = (table: Record<string, Case>) => Object.entries(table).flatMap(([key, c]) => ROLES.map((role) => [key, role, c.expect[role]] as const));

describe('queries over HTTP', () => {
  test.each(rows(QUERIES))('%s as %s: %s', (key, role) => attempt(key, QUERIES[key], role));
});

describe('mutations over HTTP', () => {
  test.each(rows(MUTATIONS))('%s as %s: %s', (key, role) => attempt(key, MUTATIONS[key], role));
});

describe('subscriptions over graphql-ws', () => {
  test.each(Object.entries(SUBSCRIPTIONS))('%s', async (name, c) => {
    const vars = (await c.variables?.()) ?? {};
    const subs = {} as Record<Role, Subscription>;
    for (const role of ROLES) {
      const client = wsClient(app, bearer[role]);
      clients.push(client);
      subs[role] = new Subscription(client, c.document, vars);
    }
    const hears = (role: Role) => c.expect[role] === 'all' || (c.expect[role] === 'own' && role === 'owner');
    const running = ROLES.filter((r) => c.expect[r] === 'own' || c.expect[r] === 'all');

    // Refusals arrive on their own; the others are running once they listen (or answered at once).
    for (const role of ROLES.filter((r) => !running.includes(r))) {
      await subs[role].waitFor((s) => s.errors.length > 0, 5_000, `${name} as ${role} refused`);
    }
    if (c.channel) {
      const listeners = new Map<string, number>();
      for (const role of running) {
        const ch = c.channel(vars, idOf[role]!);
        listeners.set(ch, (listeners.get(ch) ?? 0) + 1);
      }
      for (const [ch, n] of listeners) {
        await waitUntil(() => app.services.bus.listenerCount(ch) >= n, 5_000, `${n} listener(s) on ${ch}`);
      }
    }
    const mark = await c.trigger(vars);
    for (const role of running.filter(hears)) {
      await subs[role].waitFor((s) => s.events.some((e) => c.about(e, vars, mark)), 10_000, `${name} as ${role} to hear the owner's event`);
    }
    // Room for what the other roles must not hear: had they been sent it, it would arrive with the
    // events the hearing roles were waited for above.
    await sleep(300);
    for (const role of ROLES) {
      const s = subs[role];
      const cell = `${name} as ${role}`;
      const expected = c.expect[role];
      const heard = s.events.some((e) => c.about(e, vars, mark));
      if (expected === 'SOCKET_4403') {
        expect({ cell, close: (s.errors[0] as { code?: number })?.code, events: s.events }).toEqual({ cell, close: 4403, events: [] });
      } else if (expected === 'FORBIDDEN') {
        const errors = s.errors[0] as Array<{ extensions?: { code?: string } }>;
        expect({ cell, code: errors?.[0]?.extensions?.code, events: s.events }).toEqual({ cell, code: 'FORBIDDEN', events: [] });
      } else {
        expect({ cell, errors: s.errors, heard }).toEqual({ cell, errors: [], heard: hears(role) });
      }
      s.dispose();
    }
  });
});

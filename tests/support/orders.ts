import pg from 'pg';
import type { App } from '../../src/app.js';
import { gql, token } from './harness.js';

export const ORDER_FIELDS =
  'id orderNo userId productId quantity amount walletAmount paymentMethod channel status expiresAt isExpired cancelReason paidAt createdAt';

export const ADMIN = token('admin-1', true);

/** Runs a GraphQL operation that must succeed and returns its data. */
export async function ok<T = Record<string, any>>(app: App, query: string, variables: Record<string, unknown>, bearer: string): Promise<T> {
  const res = await gql<T>(app, query, variables, bearer);
  if (res.errors) throw new Error(JSON.stringify(res.errors));
  return res.data as T;
}

export async function createProduct(app: App, input: Record<string, unknown> = {}) {
  const data = await ok(
    app,
    'mutation($input: CreateProductInput!) { createProduct(input: $input) { id name price kind stock vipDays vipLevel } }',
    { input: { name: 'Tea', price: 500, kind: 'GOODS', ...input } },
    ADMIN,
  );
  return data.createProduct as { id: string; price: number; stock: number | null };
}

/** Credits a user's wallet as an admin would: after the user was seen (a request with their token), as creditWallet requires. */
export async function credit(app: App, userId: string, amount: number) {
  await ok(app, '{ me { id } }', {}, token(userId));
  const data = await ok(app, 'mutation($u: ID!, $a: Int!) { creditWallet(userId: $u, amount: $a) { userId balance frozen } }', { u: userId, a: amount }, ADMIN);
  return data.creditWallet as { balance: number; frozen: number };
}

export async function wallet(app: App, bearer: string) {
  return (await ok(app, '{ wallet { balance frozen } }', {}, bearer)).wallet as { balance: number; frozen: number };
}

export interface OrderResult {
  id: string;
  status: string;
  expiresAt: string | null;
  isExpired: boolean;
  walletAmount: number;
  amount: number;
  cancelReason: string | null;
  paidAt: string | null;
  userId: string;
  [k: string]: unknown;
}

export const CREATE_ORDER = `mutation($input: CreateOrderInput!) { createOrder(input: $input) { ${ORDER_FIELDS} } }`;

export async function createOrder(app: App, bearer: string, input: Record<string, unknown>): Promise<OrderResult> {
  return (await ok(app, CREATE_ORDER, { input: { quantity: 1, ...input } }, bearer)).createOrder as OrderResult;
}

export const PAY = `mutation($id: ID!) { payOrderWithWallet(orderId: $id) { ${ORDER_FIELDS} } }`;
export const CANCEL = `mutation($id: ID!, $reason: String) { cancelOrder(orderId: $id, reason: $reason) { ${ORDER_FIELDS} } }`;

/** Direct SQL on a test database, for what a user cannot do: read the ledger, damage a wallet. */
export async function withDb<T>(url: string, work: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

export interface MoneyTotals {
  held: number;
  credits: number;
  debits: number;
}

/**
 * The invariants, read straight from the database:
 * - balance + frozen over all wallets equals credits (and signed adjustments, and refunds) minus debits (money moves only by those);
 * - every wallet's frozen money is exactly the wallet part of its PENDING orders;
 * - an order's money is frozen at most once, released (unfrozen or debited) at most once and refunded
 *   at most once, and how matches its status: PAID debited, never unfrozen; REFUNDED debited and its
 *   wallet part refunded; CANCELLED/EXPIRED unfrozen; PENDING neither;
 * - refunds add up: a REFUNDED order has exactly one SUCCEEDED refund of it (and an order with one is
 *   REFUNDED), giving back its whole payment and its wallet part; a payment has at most one live
 *   refund and is never refunded more than it took; every REFUND line is such a refund's wallet part;
 * - settled orders have no deadline; while a server runs (`running`), no PENDING order is more than
 *   a second past its expiresAt (`exempt` names orders a test deliberately left unsettleable).
 * Returns the violations (none is good) and the totals.
 */
export async function invariants(url: string, opts: { running?: boolean; exempt?: string[] } = {}) {
  return withDb(url, async (c) => {
    const violations: string[] = [];
    const q = async (label: string, sql: string, params: unknown[] = []) => {
      const { rows } = await c.query(sql, params);
      if (rows.length > 0) violations.push(`${label}: ${JSON.stringify(rows.slice(0, 5))}`);
    };
    const [totals] = (
      await c.query(`select
        (select coalesce(sum(balance + frozen), 0)::bigint from wallets) as held,
        (select coalesce(sum(amount), 0)::bigint from wallet_ledger where entry in ('CREDIT', 'ADJUST', 'REFUND')) as credits,
        (select coalesce(sum(amount), 0)::bigint from wallet_ledger where entry = 'DEBIT') as debits`)
    ).rows.map((r) => ({ held: Number(r.held), credits: Number(r.credits), debits: Number(r.debits) }));
    if (totals.held !== totals.credits - totals.debits) violations.push(`money: ${JSON.stringify(totals)}`);
    await q(
      'wallet balance + frozen differs from its ledger',
      `select w.user_id, w.balance, w.frozen, coalesce(sum(case l.entry when 'CREDIT' then l.amount when 'ADJUST' then l.amount when 'REFUND' then l.amount when 'DEBIT' then -l.amount else 0 end), 0) as ledger
         from wallets w left join wallet_ledger l on l.user_id = w.user_id
        group by w.user_id having w.balance + w.frozen <> coalesce(sum(case l.entry when 'CREDIT' then l.amount when 'ADJUST' then l.amount when 'REFUND' then l.amount when 'DEBIT' then -l.amount else 0 end), 0)`,
    );
    await q(
      'frozen differs from the pending orders',
      `select w.user_id, w.frozen, coalesce(p.held, 0) as pending from wallets w
         left join (select user_id, sum(wallet_amount) as held from orders
                     where status = 'PENDING' and payment_method in ('WALLET', 'MIXED') group by user_id) p on p.user_id = w.user_id
        where w.frozen <> coalesce(p.held, 0)`,
    );
    await q(
      'order money moved more than once',
      `select order_id, case when entry in ('UNFREEZE', 'DEBIT') then 'RELEASE' else entry end as movement, count(*)
         from wallet_ledger where order_id is not null
        group by 1, 2 having count(*) > 1`,
    );
    await q(
      'ledger does not match the order status',
      `select o.id, o.status, o.channel, o.payment_method, o.wallet_amount,
              count(*) filter (where l.entry = 'FREEZE') as freezes,
              count(*) filter (where l.entry = 'UNFREEZE') as unfreezes,
              count(*) filter (where l.entry = 'DEBIT') as debits,
              count(*) filter (where l.entry = 'REFUND') as refunds,
              coalesce(sum(l.amount) filter (where l.entry in ('UNFREEZE', 'DEBIT')), 0) as released
         from orders o left join wallet_ledger l on l.order_id = o.id
        group by o.id
       having case
         when o.wallet_amount = 0 then count(l.id) = 0
         when o.channel = 'ADMIN' then count(*) filter (where l.entry = 'DEBIT') = 1 and count(l.id) filter (where l.entry <> 'REFUND') = 1
         when o.status = 'PENDING' then count(*) filter (where l.entry = 'FREEZE') = 1 and count(l.id) = 1
         when o.status in ('PAID', 'REFUNDED') then count(*) filter (where l.entry = 'DEBIT') = 1 and count(*) filter (where l.entry = 'UNFREEZE') = 0
         else count(*) filter (where l.entry = 'UNFREEZE') = 1 and count(*) filter (where l.entry = 'DEBIT') = 0
       end = false
       or count(*) filter (where l.entry = 'REFUND') <> case when o.status = 'REFUNDED' and o.wallet_amount > 0 then 1 else 0 end
       or coalesce(sum(l.amount) filter (where l.entry = 'REFUND'), 0) not in (0, o.wallet_amount)
       or (o.wallet_amount > 0 and coalesce(sum(l.amount) filter (where l.entry in ('UNFREEZE', 'DEBIT')), 0) not in (0, o.wallet_amount))`,
    );
    await q(
      'a REFUNDED order without exactly one SUCCEEDED refund of it, or one with it not REFUNDED',
      `select o.id, o.status, count(r.id) as succeeded from orders o
         left join refunds r on r.order_id = o.id and r.kind = 'ORDER' and r.status = 'SUCCEEDED'
        group by o.id having (o.status = 'REFUNDED') <> (count(r.id) = 1) or count(r.id) > 1`,
    );
    await q(
      'a SUCCEEDED order refund that did not give back its whole payment and wallet part',
      `select r.id, r.amount, r.wallet_amount, o.wallet_amount as order_wallet, p.amount as paid from refunds r
         join orders o on o.id = r.order_id left join payments p on p.id = r.payment_id
        where r.kind = 'ORDER' and r.status = 'SUCCEEDED' and (r.wallet_amount <> o.wallet_amount or r.amount <> coalesce(p.amount, 0))`,
    );
    await q(
      'a payment refunded more than it took, or with two live refunds',
      `select p.id, p.amount, sum(r.amount) as refunded, count(*) as live from payments p join refunds r on r.payment_id = p.id
        where r.status in ('PENDING', 'SUCCEEDED') group by p.id having sum(r.amount) > p.amount or count(*) > 1`,
    );
    await q(
      'a REFUND line that is no SUCCEEDED refund\'s wallet part',
      `select l.id, l.order_id, l.amount from wallet_ledger l
        where l.entry = 'REFUND' and not exists (select 1 from refunds r
          where r.order_id = l.order_id and r.kind = 'ORDER' and r.status = 'SUCCEEDED' and r.wallet_amount = l.amount)`,
    );
    await q('a settled order keeps a deadline', `select id, status from orders where status <> 'PENDING' and expires_at is not null`);
    if (opts.running) {
      await q(
        'pending more than a second past expiresAt',
        `select id, expires_at from orders where status = 'PENDING' and expires_at < now() - interval '1 second' and not (id = any($1::bigint[]))`,
        [opts.exempt ?? []],
      );
    }
    return { violations, totals };
  });
}

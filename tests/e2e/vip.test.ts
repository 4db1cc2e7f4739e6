import type { App } from '../../src/app.js';
import { localDay } from '../../src/services/calendar.js';
import { reminderText, VipReminders } from '../../src/services/vip-reminders.js';
import { gql, LogCapture, MovableClock, paymentSandbox, setUp, sleep, start, subscribed, testConfig, type TestDatabase, token, waitUntil, wsClient } from '../support/harness.js';
import { ADMIN, createProduct, credit, invariants, ok, withDb } from '../support/orders.js';

/**
 * VIP memberships: extended by a PAID VIP_PLAN order however it was paid, lapsing as a deadline, and
 * the daily reminders with the seed's texts on their milestones, counted in APP_TIMEZONE days, once
 * per member and milestone. Days move on a clock the test controls; reminder days are given to the
 * reminder run as calendar days, and the 09:00 schedule is checked against Agenda's own computation
 * across DST changes.
 */
let db: TestDatabase;
let app: App;
const clock = new MovableClock();
const log = new LogCapture();
const DAY = 86_400_000;

const STATUS = 'userId level expiresAt isLifetime daysRemaining active';
const status = async (bearer: string, userId?: string) =>
  (await ok(app, `query($u: ID) { vipStatus(userId: $u) { ${STATUS} } }`, { u: userId ?? null }, bearer)).vipStatus;

beforeAll(async () => {
  // Reminders run by the tests only (no 09:00 run of their own): cron off on this instance.
  ({ db, app } = await setUp('vip', { ENABLE_CRON: 'false', DEADLINE_SWEEP_SECONDS: '1' }, { log, clock }));
});

afterEach(async () => {
  expect((await invariants(db.url)).violations).toEqual([]);
});

async function plan(input: Record<string, unknown>) {
  return createProduct(app, { name: 'VIP', price: 100, kind: 'VIP_PLAN', ...input });
}

/** Buys a plan with the wallet: createOrder, then payOrderWithWallet. */
async function buy(userId: string, productId: string) {
  const bearer = token(userId);
  await credit(app, userId, 100);
  const created = await ok(app, 'mutation($p: ID!) { createOrder(input: { productId: $p, quantity: 1, paymentMethod: WALLET }) { id } }', { p: productId }, bearer);
  await ok(app, 'mutation($id: ID!) { payOrderWithWallet(orderId: $id) { status } }', { id: created.createOrder.id }, bearer);
}

const expiresIn = (s: { expiresAt: string }) => new Date(s.expiresAt).getTime() - clock.now().getTime();

test('a VIP plan paid with the wallet extends the membership: renewals add up, the higher level wins, lifetime never lapses', async () => {
  const month = await plan({ vipDays: 30, vipLevel: 2 });
  const higher = await plan({ vipDays: 10, vipLevel: 3 });
  const lower = await plan({ vipDays: 5, vipLevel: 1 });
  const lifetime = await plan({ vipLifetime: true, vipLevel: 4 });

  expect(await status(token('vip-ann'))).toEqual({ userId: 'vip-ann', level: 0, expiresAt: null, isLifetime: false, daysRemaining: null, active: false });
  await buy('vip-ann', month.id);
  let s = await status(token('vip-ann'));
  expect(s).toMatchObject({ level: 2, isLifetime: false, active: true, daysRemaining: 30 });
  expect(Math.abs(expiresIn(s) - 30 * DAY)).toBeLessThan(5_000);

  await buy('vip-ann', month.id); // renewal: from the current expiry, not from now
  s = await status(token('vip-ann'));
  expect(Math.abs(expiresIn(s) - 60 * DAY)).toBeLessThan(5_000);
  await buy('vip-ann', higher.id);
  s = await status(token('vip-ann'));
  expect(s.level).toBe(3);
  expect(Math.abs(expiresIn(s) - 70 * DAY)).toBeLessThan(5_000);
  await buy('vip-ann', lower.id);
  s = await status(token('vip-ann'));
  expect(s.level).toBe(3);
  expect(Math.abs(expiresIn(s) - 75 * DAY)).toBeLessThan(5_000);

  await buy('vip-ann', lifetime.id);
  expect(await status(token('vip-ann'))).toMatchObject({ level: 4, isLifetime: true, expiresAt: null, daysRemaining: null, active: true });
  await buy('vip-ann', month.id); // a lifetime member stays one
  expect(await status(token('vip-ann'))).toMatchObject({ level: 4, isLifetime: true, expiresAt: null });

  // Admins read anyone's status; a user only their own.
  expect((await status(ADMIN, 'vip-ann')).level).toBe(4);
  const denied = await gql(app, `query { vipStatus(userId: "vip-ann") { level } }`, {}, token('vip-bob'));
  expect(denied.errors?.[0].extensions?.code).toBe('FORBIDDEN');
});

test('a membership lapses at its expiresAt (a deadline) and its owner hears it live; an expired one starts afresh', async () => {
  const week = await plan({ vipDays: 7, vipLevel: 2 });
  await buy('vip-cat', week.id);
  const client = wsClient(app, token('vip-cat'));
  const changes = await subscribed(app, client, `subscription { vipStatusChanged { ${STATUS} } }`, {}, 'VIP_STATUS_CHANGED');
  const stranger = wsClient(app, token('vip-dan'));
  const others = await subscribed(app, stranger, `subscription { vipStatusChanged { userId } }`, {}, 'VIP_STATUS_CHANGED', 2);
  // Its week is made to end two seconds from now (a week of waiting otherwise), and armed as a payment would.
  const end = new Date(Date.now() + 2_000);
  await withDb(db.url, (c) => c.query(`update vip_memberships set expires_at = $1 where user_id = 'vip-cat'`, [end]));
  await app.deadlines.arm('vip-expiry', end);
  await changes.waitFor((s) => s.events.length >= 1, 8_000, 'the lapse');
  expect(changes.events[0].vipStatusChanged).toMatchObject({ userId: 'vip-cat', active: false, level: 2 });
  const lapsedAt = await withDb(db.url, async (c) => (await c.query(`select updated_at from vip_memberships where user_id = 'vip-cat'`)).rows[0].updated_at as Date);
  expect(lapsedAt.getTime()).toBeGreaterThanOrEqual(end.getTime());
  expect(await status(token('vip-cat'))).toMatchObject({ active: false, daysRemaining: null });
  expect(others.events).toEqual([]);

  // Bought again after lapsing: a week from now, not from the old expiry.
  await buy('vip-cat', week.id);
  const s = await status(token('vip-cat'));
  expect(s).toMatchObject({ active: true, level: 2 });
  expect(Math.abs(expiresIn(s) - 7 * DAY)).toBeLessThan(5_000);
  await changes.waitFor((x) => x.events.length >= 2, 5_000, 'the renewal');
  await client.dispose();
  await stranger.dispose();
});

test('paid by a callback delivered twice, or by an admin, a plan extends the membership exactly once', async () => {
  const sandbox = await paymentSandbox();
  const month = await plan({ vipDays: 30, vipLevel: 1 });
  const bearer = token('vip-eve');
  const created = await ok(app, 'mutation($p: ID!) { createOrder(input: { productId: $p, quantity: 1, paymentMethod: WECHAT }) { id orderNo } }', { p: month.id }, bearer);
  const post = (path: string, body: unknown = {}) =>
    fetch(`${sandbox.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then((r) => r.json());
  await post(`/sandbox/trades/${created.createOrder.orderNo}/pay`);
  await post(`/sandbox/trades/${created.createOrder.orderNo}/callbacks/duplicate`);
  const s = await status(bearer);
  expect(Math.abs(expiresIn(s) - 30 * DAY)).toBeLessThan(5_000); // once, not twice

  await ok(app, 'mutation($p: ID!) { adminCreateOrder(input: { userId: "vip-fay", productId: $p, quantity: 1, paymentMethod: OFFLINE }) { id } }', { p: month.id }, ADMIN);
  expect(await status(ADMIN, 'vip-fay')).toMatchObject({ active: true, level: 1, daysRemaining: 30 });
});

/** Members with expiries at given local times, straight into the table (a million would not be bought one by one). */
async function members(rows: Array<[string, Date | null]>) {
  await withDb(db.url, async (c) => {
    for (const [id, at] of rows) {
      await c.query(`insert into users (id, role) values ($1, 'user') on conflict do nothing`, [id]);
      await c.query(
        `insert into vip_memberships (user_id, level, expires_at, is_lifetime, active) values ($1, 1, $2, $3, $4)
         on conflict (user_id) do update set expires_at = excluded.expires_at, is_lifetime = excluded.is_lifetime, active = excluded.active`,
        [id, at, at === null, at === null || at.getTime() > Date.now()],
      );
    }
  });
}

const messagesOf = (userId: string) =>
  withDb(db.url, async (c) => (await c.query(`select body from messages where user_id = $1 and kind = 'VIP_REMINDER' order by id`, [userId])).rows.map((r) => r.body as string));

function reminders(timeZone: string) {
  return new VipReminders(app.services.tx, app.services.messages, app.services.log, timeZone, 2, () => clock.now());
}

/** The instant a wall clock in `timeZone` shows `local` ('2026-11-23T23:30'). */
function at(local: string, timeZone: string): Date {
  const guess = new Date(`${local}:00Z`);
  const shown = new Date(guess.toLocaleString('en-US', { timeZone }));
  const utc = new Date(guess.toLocaleString('en-US', { timeZone: 'UTC' }));
  return new Date(guess.getTime() - (shown.getTime() - utc.getTime()));
}

test('reminders in Asia/Shanghai: each milestone on its day with the seed text, a 23:30 expiry is "today" there, once per member and milestone', async () => {
  const tz = 'Asia/Shanghai';
  const day = '2026-12-10';
  await members([
    ['sh-3', at('2026-12-13T12:00', tz)],
    ['sh-1', at('2026-12-11T08:00', tz)],
    ['sh-0', at('2026-12-10T23:30', tz)], // 15:30 UTC: still the 10th in Shanghai
    ['sh-2', at('2026-12-12T10:00', tz)], // 2 days: no milestone
    ['sh-m1', at('2026-12-09T09:00', tz)],
    ['sh-m7', at('2026-12-03T00:10', tz)],
    ['sh-m8', at('2026-12-02T23:59', tz)], // 8 days ago: done
    ['sh-life', null],
  ]);
  const first = await reminders(tz).run(day);
  expect(await messagesOf('sh-3')).toEqual(['您的VIP会员将在3天后到期，请及时续费']);
  expect(await messagesOf('sh-1')).toEqual(['您的VIP会员将在明天到期，请及时续费']);
  expect(await messagesOf('sh-0')).toEqual(['您的VIP会员今日到期，续费可继续享受VIP权益']);
  expect(await messagesOf('sh-2')).toEqual([]);
  expect(await messagesOf('sh-m1')).toEqual(['您的VIP会员已到期1天，VIP图标即将隐藏']);
  expect(await messagesOf('sh-m7')).toEqual(['您的VIP会员已到期7天，VIP图标即将隐藏']);
  expect(await messagesOf('sh-m8')).toEqual([]);
  expect(await messagesOf('sh-life')).toEqual([]);
  expect(first.written).toBe(5);

  // The same day again, and by two "instances" at once: nothing more.
  const again = await Promise.all([reminders(tz).run(day), reminders(tz).run(day)]);
  expect(again.map((r) => r.written)).toEqual([0, 0]);
  expect(await messagesOf('sh-3')).toHaveLength(1);

  // The next day each member moves to its next milestone.
  await reminders(tz).run('2026-12-11');
  expect(await messagesOf('sh-1')).toEqual(['您的VIP会员将在明天到期，请及时续费', '您的VIP会员今日到期，续费可继续享受VIP权益']);
  expect(await messagesOf('sh-0')).toEqual(['您的VIP会员今日到期，续费可继续享受VIP权益', '您的VIP会员已到期1天，VIP图标即将隐藏']);
  expect(await messagesOf('sh-2')).toEqual(['您的VIP会员将在明天到期，请及时续费']);
  expect(await messagesOf('sh-m7')).toHaveLength(1); // 8 days now
});

test('every reminder written is heard live by its owner through the outbox, as the inbox lists it, and a second run is silent', async () => {
  const tz = 'Asia/Shanghai';
  const day = '2027-01-20';
  const owners = ['live-3', 'live-1', 'live-0', 'live-m4', 'live-m7'];
  await members([
    ['live-3', at('2027-01-23T10:00', tz)],
    ['live-1', at('2027-01-21T23:59', tz)],
    ['live-0', at('2027-01-20T00:00', tz)],
    ['live-m4', at('2027-01-16T18:00', tz)],
    ['live-m7', at('2027-01-13T12:00', tz)],
    ['live-2', at('2027-01-22T12:00', tz)], // no milestone today
    ['live-life', null],
  ]);
  const RECEIVED = 'subscription { messageReceived { id userId kind title body createdAt readAt } }';
  const clients = [...owners, 'live-2', 'live-life'].map((u) => wsClient(app, token(u)));
  const subs = await Promise.all(clients.map((c, i) => subscribed(app, c, RECEIVED, {}, `MESSAGE_RECEIVED:${[...owners, 'live-2', 'live-life'][i]}`)));

  // Pages of 2 (the test's batch size): the five messages come from three pages' statements.
  const run = await reminders(tz).run(day);
  expect(run).toMatchObject({ members: 6, written: 5 });
  for (const [i, owner] of owners.entries()) {
    await subs[i].waitFor((s) => s.events.length >= 1, 5_000, `${owner}'s reminder`);
    const inbox = (await ok(app, '{ messages(first: 5) { edges { node { id userId kind title body createdAt readAt } } } }', {}, token(owner))).messages.edges;
    expect(inbox).toHaveLength(1);
    expect(subs[i].events.map((e) => e.messageReceived)).toEqual([inbox[0].node]);
    expect(inbox[0].node).toMatchObject({ userId: owner, kind: 'VIP_REMINDER', title: 'VIP会员到期提醒', readAt: null });
  }
  expect(subs.slice(0, 5).map((s) => s.events[0].messageReceived.body)).toEqual([3, 1, 0, -4, -7].map((d) => reminderText(d)));

  // A second run writes nothing, so nobody hears anything more.
  expect((await reminders(tz).run(day)).written).toBe(0);
  await sleep(300); // room for a reminder that must not come
  expect(subs.map((s) => s.events.length)).toEqual([1, 1, 1, 1, 1, 0, 0]);
  for (const s of subs) expect(s.errors).toEqual([]);

  // One outbox row per message, its id the payload's eventId (what subscribers dedupe by), all published.
  await waitUntil(
    async () => (await withDb(db.url, (c) => c.query(`select 1 from outbox_events where topic like 'MESSAGE_RECEIVED:live-%' and published_at is null`))).rowCount === 0,
    5_000,
    'the events marked published',
  );
  const outbox = await withDb(db.url, async (c) =>
    (
      await c.query(
        `select o.topic, o.payload->>'eventId' = o.id::text as same_id
           from outbox_events o where o.topic like 'MESSAGE_RECEIVED:live-%' order by o.topic`,
      )
    ).rows,
  );
  expect(outbox.map((r) => r.topic)).toEqual(owners.map((u) => `MESSAGE_RECEIVED:${u}`).sort());
  expect(outbox.every((r) => r.same_id)).toBe(true);
  for (const s of subs) s.dispose();
  for (const c of clients) await c.dispose();
});

test('reminders in America/New_York across the March and November DST changes count local days', async () => {
  const tz = 'America/New_York';
  // 2027-03-14 02:00 EST → 03:00 EDT; 2027-11-07 02:00 EDT → 01:00 EST.
  await members([
    ['ny-spring-0', at('2027-03-14T23:30', tz)],
    ['ny-spring-1', at('2027-03-15T00:30', tz)],
    ['ny-fall-3', at('2027-11-10T00:15', tz)],
    ['ny-fall-m1', at('2027-11-06T23:45', tz)],
  ]);
  await reminders(tz).run('2027-03-14');
  expect(await messagesOf('ny-spring-0')).toEqual(['您的VIP会员今日到期，续费可继续享受VIP权益']);
  expect(await messagesOf('ny-spring-1')).toEqual(['您的VIP会员将在明天到期，请及时续费']);
  await reminders(tz).run('2027-11-07');
  expect(await messagesOf('ny-fall-3')).toEqual(['您的VIP会员将在3天后到期，请及时续费']);
  expect(await messagesOf('ny-fall-m1')).toEqual(['您的VIP会员已到期1天，VIP图标即将隐藏']);

  // The 09:00 schedule as Agenda computes it from the cron and the zone: 09:00 local every day,
  // 14:00Z before the spring change and 13:00Z after; 13:00Z before the fall change and 14:00Z after.
  const runs = (from: Date, n: number) => {
    const job = app.scheduler.create('vip-reminders', {}); // never saved: only its schedule is computed
    job.repeatEvery('0 9 * * *', { timezone: tz });
    const out: string[] = [];
    job.attrs.lastRunAt = from;
    for (let i = 0; i < n; i++) {
      // Job.computeNextRunAt is what Agenda runs after each run; it is private in the typings.
      (job as unknown as { computeNextRunAt(): void }).computeNextRunAt();
      out.push(job.attrs.nextRunAt!.toISOString());
      job.attrs.lastRunAt = job.attrs.nextRunAt!;
    }
    return out;
  };
  expect(runs(new Date('2027-03-12T15:00:00Z'), 3)).toEqual(['2027-03-13T14:00:00.000Z', '2027-03-14T13:00:00.000Z', '2027-03-15T13:00:00.000Z']);
  expect(runs(new Date('2027-11-05T14:00:00Z'), 3)).toEqual(['2027-11-06T13:00:00.000Z', '2027-11-07T14:00:00.000Z', '2027-11-08T14:00:00.000Z']);
  expect(localDay(new Date('2027-11-07T14:00:00.000Z'), tz)).toBe('2027-11-07');
  expect(reminderText(2)).toBeNull();
});

test('a day missed while no server ran is caught up at the next start, once', async () => {
  const tz = 'Asia/Shanghai';
  const today = localDay(new Date(), tz);
  await members([['catch-up', new Date(Date.now() + 3 * DAY)]]);
  const config = testConfig(db.url, { APP_TIMEZONE: tz, VIP_REMINDER_TIME: '00:00' }); // its time today has passed
  const first = await start(config);
  await waitUntil(async () => (await messagesOf('catch-up')).length > 0, 10_000, 'the caught-up reminder');
  await first.stop();
  const second = await start(config);
  // Its start-up catch-up has run when start() returns; room for anything it might still send.
  await sleep(1_000);
  await second.stop();
  expect(await messagesOf('catch-up')).toEqual(['您的VIP会员将在3天后到期，请及时续费']);
  const sent = await withDb(db.url, async (c) => (await c.query(`select sent_on::text from vip_reminders where user_id = 'catch-up'`)).rows);
  expect(sent).toEqual([{ sent_on: today }]);
});

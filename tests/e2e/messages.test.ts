import type { Client } from 'graphql-ws';
import type { App } from '../../src/app.js';
import { User } from '../../src/entities/User.js';
import type { NewMessage } from '../../src/services/messages.js';
import { gql, setUp, sleep, subscribed, type Subscription, type TestDatabase, token, wsClient } from '../support/harness.js';
import { ADMIN, ok, withDb } from '../support/orders.js';

let db: TestDatabase;
let app: App;
const clients: Client[] = [];

beforeAll(async () => {
  ({ db, app } = await setUp('messages'));
});

afterAll(async () => {
  for (const c of clients) await c.dispose();
});

const FIELDS = 'id userId kind title body createdAt readAt';
const LIST = `query($unread: Boolean, $n: Int!, $a: String) {
  messages(unreadOnly: $unread, first: $n, after: $a) { edges { cursor node { ${FIELDS} } } pageInfo { hasNextPage hasPreviousPage startCursor endCursor } }
}`;
const COUNT = '{ unreadMessageCount }';
const MARK = `mutation($id: ID!) { markMessageRead(id: $id) { ${FIELDS} } }`;
const MARK_ALL = 'mutation { markAllMessagesRead }';
const RECEIVED = `subscription { messageReceived { ${FIELDS} } }`;

type Node = { id: string; userId: string; kind: string; title: string; body: string; createdAt: string; readAt: string | null };
const codeOf = (res: { errors?: Array<{ extensions?: { code?: string } }> }) => res.errors?.[0]?.extensions?.code;

/** Users exist once a token of theirs is seen; these are made directly, as the reminder job's users would be. */
async function ensureUsers(ids: string[]): Promise<void> {
  await app.services.tx.run((uow) =>
    uow.em.createQueryBuilder(User).insert(ids.map((id) => ({ id, role: 'user' as const }))).onConflict('id').ignore().execute(),
  );
}

const sendMany = (rows: NewMessage[]) => app.services.tx.run((uow) => app.services.messages.sendMany(uow, rows));
const note = (userId: string, title: string): NewMessage => ({ userId, kind: 'NOTICE', title, body: `${title} for ${userId}` });

async function list(bearer: string, first = 20, after?: string | null, unread?: boolean) {
  return (await ok(app, LIST, { unread, n: first, a: after }, bearer)).messages as {
    edges: Array<{ cursor: string; node: Node }>;
    pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null };
  };
}
const titles = (page: { edges: Array<{ node: Node }> }) => page.edges.map((e) => e.node.title);
const unreadCount = async (bearer: string) => (await ok(app, COUNT, {}, bearer)).unreadMessageCount as number;

function client(bearer?: string): Client {
  const c = wsClient(app, bearer);
  clients.push(c);
  return c;
}

function listen(userId: string, bearer: string): Promise<Subscription<{ messageReceived: Node }>> {
  return subscribed(app, client(bearer), RECEIVED, {}, `MESSAGE_RECEIVED:${userId}`);
}

describe('an inbox', () => {
  test('newest first with cursor paging and unreadOnly; counted; marked read one (idempotently) and all', async () => {
    await ensureUsers(['ann', 'ben']);
    const ann = token('ann');
    const batch = await sendMany([1, 2, 3, 4, 5].map((i) => note('ann', `m${i}`)).concat(note('ben', 'not yours')));
    expect(batch.map((m) => m.title)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'not yours']);
    expect(batch.every((m, i) => i === 0 || BigInt(m.id) > BigInt(batch[i - 1].id))).toBe(true);
    expect(batch[0]).toMatchObject({ userId: 'ann', kind: 'NOTICE', body: 'm1 for ann', readAt: null });
    expect(batch[0].createdAt).toBeInstanceOf(Date);
    const single = await app.services.tx.run((uow) => app.services.messages.send(uow, note('ann', 'm6')));
    expect(single).toMatchObject({ userId: 'ann', title: 'm6', readAt: null });

    const p1 = await list(ann, 2);
    expect(titles(p1)).toEqual(['m6', 'm5']);
    expect(p1.pageInfo.hasNextPage).toBe(true);
    expect(p1.pageInfo).toMatchObject({ hasPreviousPage: false, startCursor: p1.edges[0].cursor });
    const p2 = await list(ann, 2, p1.pageInfo.endCursor);
    expect(titles(p2)).toEqual(['m4', 'm3']);
    expect(p2.pageInfo).toEqual({ hasNextPage: true, hasPreviousPage: true, startCursor: p2.edges[0].cursor, endCursor: p2.edges[1].cursor });
    const p3 = await list(ann, 2, p2.pageInfo.endCursor);
    expect(titles(p3)).toEqual(['m2', 'm1']);
    expect(p3.pageInfo.hasNextPage).toBe(false);
    expect(p1.edges[0].node).toEqual({
      id: single.id,
      userId: 'ann',
      kind: 'NOTICE',
      title: 'm6',
      body: 'm6 for ann',
      createdAt: single.createdAt.toISOString(),
      readAt: null,
    });
    expect(await unreadCount(ann)).toBe(6);

    const m3 = p2.edges[1].node;
    const read = (await ok(app, MARK, { id: m3.id }, ann)).markMessageRead as Node;
    expect(read).toMatchObject({ id: m3.id, title: 'm3' });
    expect(read.readAt).not.toBeNull();
    await sleep(20); // a second mark made later would stamp a later readAt
    const again = (await ok(app, MARK, { id: m3.id }, ann)).markMessageRead as Node;
    expect(again.readAt).toBe(read.readAt); // the first read stands
    expect(await unreadCount(ann)).toBe(5);

    const u1 = await list(ann, 3, null, true);
    expect(titles(u1)).toEqual(['m6', 'm5', 'm4']);
    expect(u1.pageInfo.hasNextPage).toBe(true);
    const u2 = await list(ann, 3, u1.pageInfo.endCursor, true);
    expect(titles(u2)).toEqual(['m2', 'm1']);
    expect(u2.pageInfo.hasNextPage).toBe(false);
    expect(titles(await list(ann, 20, null, false))).toHaveLength(6);

    expect((await ok(app, MARK_ALL, {}, ann)).markAllMessagesRead).toBe(5);
    expect(await unreadCount(ann)).toBe(0);
    expect((await ok(app, MARK_ALL, {}, ann)).markAllMessagesRead).toBe(0);
    expect((await list(ann, 20, null, true)).edges).toEqual([]);
    const all = await list(ann);
    expect(all.edges.every((e) => e.node.readAt !== null && e.node.userId === 'ann')).toBe(true);
    expect(all.edges.find((e) => e.node.id === m3.id)!.node.readAt).toBe(read.readAt);
    // Ben's message was not touched by Ann's "all".
    expect(await unreadCount(token('ben'))).toBe(1);
  });

  test('each message is heard live by its owner once; never by another user; admins hear only their own', async () => {
    await ensureUsers(['cat', 'dan', 'eve', 'admin-1']);
    const cat = await listen('cat', token('cat'));
    const dan = await listen('dan', token('dan'));
    const admin = await listen('admin-1', ADMIN);

    const sent = await sendMany([note('cat', 'c1'), note('dan', 'd1'), note('eve', 'e1'), note('cat', 'c2'), note('admin-1', 'a1')]);
    await cat.waitFor((s) => s.events.length >= 2, 5_000, "cat's messages");
    await dan.waitFor((s) => s.events.length >= 1, 5_000, "dan's message");
    await admin.waitFor((s) => s.events.length >= 1, 5_000, "the admin's message");

    // A batch that rolls back was never sent: nothing is stored and nobody hears it.
    await expect(
      app.services.tx.run(async (uow) => {
        await app.services.messages.sendMany(uow, [note('cat', 'rolled back'), note('dan', 'rolled back')]);
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');

    await sleep(300); // room for a rolled-back message or a copy that must not come
    const byTitle = new Map(sent.map((m) => [m.title, m]));
    expect(cat.events.map((e) => e.messageReceived)).toEqual(
      ['c1', 'c2'].map((t) => {
        const m = byTitle.get(t)!;
        return { id: m.id, userId: 'cat', kind: 'NOTICE', title: t, body: `${t} for cat`, createdAt: m.createdAt.toISOString(), readAt: null };
      }),
    );
    expect(dan.events.map((e) => e.messageReceived.id)).toEqual([byTitle.get('d1')!.id]);
    expect(admin.events.map((e) => e.messageReceived.id)).toEqual([byTitle.get('a1')!.id]);
    for (const sub of [cat, dan, admin]) expect(sub.errors).toEqual([]);
    expect(await unreadCount(token('cat'))).toBe(2);
    for (const sub of [cat, dan, admin]) sub.dispose();
  });
});

describe('only the owner', () => {
  test("a stranger (or an admin) cannot read, mark or subscribe to another's messages", async () => {
    await ensureUsers(['fay', 'gus']);
    const [secret] = await sendMany([note('fay', 'secret')]);
    const fay = token('fay');
    const gus = token('gus');

    expect((await list(gus)).edges).toEqual([]);
    expect((await list(ADMIN)).edges.some((e) => e.node.userId === 'fay')).toBe(false);
    expect(codeOf(await gql(app, MARK, { id: secret.id }, gus))).toBe('NOT_FOUND');
    expect(codeOf(await gql(app, MARK, { id: secret.id }, ADMIN))).toBe('NOT_FOUND');
    expect((await ok(app, MARK_ALL, {}, gus)).markAllMessagesRead).toBe(0);
    expect(await unreadCount(gus)).toBe(0);
    expect(await unreadCount(fay)).toBe(1);
    expect((await list(fay)).edges[0].node).toMatchObject({ id: secret.id, readAt: null });

    // There is no way to name another user's inbox: the subscription takes no argument.
    const named = await new Promise<unknown>((resolve) => {
      client(gus).subscribe(
        { query: 'subscription { messageReceived(userId: "fay") { id } }' },
        { next: (v) => resolve(v.errors), error: resolve, complete: () => resolve('complete') },
      );
    });
    expect(JSON.stringify(named)).toContain('Unknown argument');
    const gusHears = await listen('gus', gus);
    const fayHears = await listen('fay', fay);
    const [second] = await sendMany([note('fay', 'second secret')]);
    await fayHears.waitFor((s) => s.events.length >= 1, 5_000, "fay's message");
    await sleep(300); // room for what gus must not hear, and a copy for fay
    expect(fayHears.events.map((e) => e.messageReceived.id)).toEqual([second.id]);
    expect(gusHears.events).toEqual([]);
    gusHears.dispose();
    fayHears.dispose();
  });

  test('bad ids and cursors are BAD_USER_INPUT, a missing id NOT_FOUND; without a token everything is UNAUTHENTICATED', async () => {
    await ensureUsers(['hal']);
    const hal = token('hal');
    for (const id of ['abc', '0', '-1', '1e3', ' 1', '12345678901234567890']) {
      expect([id, codeOf(await gql(app, MARK, { id }, hal))]).toEqual([id, 'BAD_USER_INPUT']);
    }
    expect(codeOf(await gql(app, MARK, { id: '987654321' }, hal))).toBe('NOT_FOUND');
    expect(codeOf(await gql(app, '{ messages(after: "nonsense") { edges { cursor } } }', {}, hal))).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(app, '{ messages(first: 0) { edges { cursor } } }', {}, hal))).toBe('BAD_USER_INPUT');
    expect(codeOf(await gql(app, '{ messages(first: 500) { edges { cursor } } }', {}, hal))).toBe('BAD_USER_INPUT');

    for (const query of ['{ messages { edges { cursor } } }', COUNT, 'mutation { markMessageRead(id: "1") { id } }', MARK_ALL]) {
      const res = await gql(app, query);
      expect([query, codeOf(res)]).toEqual([query, 'UNAUTHENTICATED']);
    }
    // A socket without a token is refused at connection (graphql-ws close 4403), before any subscription.
    const refused = await new Promise<unknown>((resolve) => {
      client().subscribe({ query: RECEIVED }, { next: (v) => resolve(v), error: resolve, complete: () => resolve('complete') });
    });
    expect((refused as { code?: number }).code).toBe(4403);
  });
});

describe('the reminders path', () => {
  test('sendMany of 5,000 messages in one transaction: stored in order, one event each, heard by each owner', async () => {
    const users = Array.from({ length: 1_000 }, (_, i) => `bulk-${String(i).padStart(4, '0')}`);
    await ensureUsers(users);
    const watched = ['bulk-0000', 'bulk-0500', 'bulk-0999'];
    const subs = await Promise.all(watched.map((u) => listen(u, token(u))));

    // Five rounds over a thousand users, interleaved, as a reminder job's pages would be.
    const rows = [1, 2, 3, 4, 5].flatMap((round) => users.map((u) => ({ userId: u, kind: 'VIP_REMINDER', title: `round ${round}`, body: `您的VIP会员将在${round}天后到期` })));
    const started = Date.now();
    const sent = await sendMany(rows);
    const ms = Date.now() - started;
    expect(sent).toHaveLength(5_000);
    expect(sent.map((m) => `${m.userId}/${m.title}`)).toEqual(rows.map((r) => `${r.userId}/${r.title}`));
    expect(sent.every((m, i) => i === 0 || BigInt(m.id) > BigInt(sent[i - 1].id))).toBe(true);
    expect(sent.every((m) => m.readAt === null && m.createdAt instanceof Date && m.kind === 'VIP_REMINDER')).toBe(true);

    for (const [i, user] of watched.entries()) {
      await subs[i].waitFor((s) => s.events.length >= 5, 10_000, `${user}'s five messages`);
    }
    await sleep(300); // room for another user's message or a copy that must not come
    for (const [i, user] of watched.entries()) {
      const mine = sent.filter((m) => m.userId === user);
      expect(subs[i].events.map((e) => e.messageReceived.id)).toEqual(mine.map((m) => m.id));
      expect(subs[i].events.every((e) => e.messageReceived.userId === user)).toBe(true);
      subs[i].dispose();
    }

    const counts = await withDb(db.url, async (c) => {
      const messages = await c.query(`select count(*)::int as n from messages where user_id like 'bulk-%'`);
      const events = await c.query(`select count(*)::int as n, count(distinct topic)::int as topics from outbox_events where topic like 'MESSAGE_RECEIVED:bulk-%'`);
      return { messages: messages.rows[0].n, events: events.rows[0].n, topics: events.rows[0].topics };
    });
    expect(counts).toEqual({ messages: 5_000, events: 5_000, topics: 1_000 });

    const last = token('bulk-0999');
    expect(await unreadCount(last)).toBe(5);
    expect(titles(await list(last))).toEqual(['round 5', 'round 4', 'round 3', 'round 2', 'round 1']);
    console.log(`sendMany: 5,000 messages and their events in ${ms} ms`);
  });
});

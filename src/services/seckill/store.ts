import type { Redis } from 'ioredis';

/** What the Lua step answers a request: the public `SeckillTicket.status`. */
export type TicketStatus = 'QUEUED' | 'SOLD_OUT' | 'DUPLICATE' | 'CLOSED';

/** What the step answers inside the server: a withdrawn product (`active: false`) is a CONFLICT, not a ticket. */
export type TakeAnswer = TicketStatus | 'INACTIVE';

/**
 * The sale's rules, one text for a request (TAKE) and a dead letter's replay (REPLAY): sale open (by
 * the window) and not withdrawn, user not yet a buyer, a unit left -> take it, record the buyer,
 * XADD, then `after`. One script, so nothing runs between the stock step and the enqueue
 * (decrement-then-check and a gap before the XADD are where flash sales oversell).
 * KEYS: sale hash, buyers set, stream. ARGV: uid, rid, now (ms, the app's clock), ts (s, the seed's field).
 */
const takeRules = (after: string) => `
local sale = redis.call('HMGET', KEYS[1], 'left', 'start', 'end', 'active')
if not sale[1] then return 'CLOSED' end
if sale[4] == '0' then return 'INACTIVE' end
local now = tonumber(ARGV[3])
if now < tonumber(sale[2]) or now >= tonumber(sale[3]) then return 'CLOSED' end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 'DUPLICATE' end
if tonumber(sale[1]) <= 0 then return 'SOLD_OUT' end
redis.call('HINCRBY', KEYS[1], 'left', -1)
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], '*', 'uid', ARGV[1], 'ts', ARGV[4], 'rid', ARGV[2])
${after}
return 'QUEUED'
`;

const TAKE = takeRules('');

/**
 * A dead letter taken again: the dead-letter step gave its unit back, so it goes through the sale's
 * rules like a new request, and leaves the dead-letter stream only if it was queued. In one script
 * with the check that it is still there, so two replays of one dead letter queue it once.
 * KEYS: as TAKE, then the dead-letter stream. ARGV: as TAKE, then the dead letter's id there.
 */
const REPLAY = `
if #redis.call('XRANGE', KEYS[4], ARGV[5], ARGV[5]) == 0 then return 'GONE' end
${takeRules("redis.call('XDEL', KEYS[4], ARGV[5])")}`;

/**
 * Loads a sale from PostgreSQL's numbers. ARGV: mode ('replace' | 'missing'), left, start, end, then
 * the buyers. 'missing' leaves a sale Redis still has alone (so instances starting together, or a
 * periodic check, never reset a live sale), and loads it when Redis lost it.
 */
const LOAD = `
if ARGV[1] == 'missing' and redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'left', ARGV[2], 'start', ARGV[3], 'end', ARGV[4])
local i = 5
while i <= #ARGV do
  local j = math.min(i + 4999, #ARGV)
  redis.call('SADD', KEYS[2], unpack(ARGV, i, j))
  i = j + 1
end
return 1
`;

/**
 * A unit the Lua step took comes back: an order closed, or the consumer refused the entry.
 * ARGV: uid, removeBuyer ('1'|'0'), giveUnit ('1'|'0'). With removeBuyer, the unit comes back only if
 * the user was still a buyer, so a second release (or one after a rebuild) gives nothing twice.
 */
const RELEASE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[2] == '1' and redis.call('SREM', KEYS[2], ARGV[1]) == 0 then return 0 end
if ARGV[3] == '1' then redis.call('HINCRBY', KEYS[1], 'left', 1) end
return 1
`;

/**
 * An order PostgreSQL made for a user Redis does not count as a buyer (a BFF's entry, which skipped
 * the Lua step, or one queued before a rebuild): Redis takes the unit now, so both agree.
 */
const ADOPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'left', -1)
return 1
`;

/**
 * An entry delivered too often moves to the dead-letter stream, once: only the consumer whose XACK
 * removed it from the pending list copies it, with its original id, delivery count and the last
 * failure known. An entry the Lua step took a unit for (it has a `rid`) gives the unit back and its
 * user stops being a buyer (guarded like RELEASE), as no order came of it.
 * KEYS: stream, dead, sale hash, buyers set. ARGV: group, id, deliveries, reason.
 */
const DEAD = `
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
local found = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
local fields = {}
if found[1] then fields = found[1][2] end
redis.call('XADD', KEYS[2], '*', 'id', ARGV[2], 'deliveries', ARGV[3], 'reason', ARGV[4], unpack(fields))
local uid, rid
for i = 1, #fields, 2 do
  if fields[i] == 'uid' then uid = fields[i + 1] elseif fields[i] == 'rid' then rid = fields[i + 1] end
end
if uid and rid and redis.call('EXISTS', KEYS[3]) == 1 and redis.call('SREM', KEYS[4], uid) == 1 then
  redis.call('HINCRBY', KEYS[3], 'left', 1)
end
return 1
`;

/** Fields of a sale Redis holds, set only if it holds it (a stopped window, the withdrawn flag): never a half sale. */
const PATCH = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
`;

/** Units added to (or taken from) what Redis sells, if it holds the sale: a restock moves both copies alike. */
const ADD = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'left', ARGV[1])
return 1
`;

/**
 * Trims a sale's stream to its newest ARGV[1] entries, at most ARGV[2] entries per call, never past
 * an entry some group has not acknowledged: the oldest pending one (XPENDING's summary) or the first
 * not yet delivered (after the group's last-delivered-id). MINID removes the entries before a bound,
 * all of them acknowledged. One script, so no read or acknowledgement slips between the look and
 * the trim. A stream with no group has acknowledged nothing: left whole. Answers the entries removed.
 */
const TRIM = `
local function parse(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function less(a, b)
  local am, as = parse(a)
  local bm, bs = parse(b)
  return am < bm or (am == bm and as < bs)
end
local function after(id)
  local ms, seq = parse(id)
  return string.format('%.0f-%.0f', ms, seq + 1)
end
local len = redis.call('XLEN', KEYS[1])
local keep = tonumber(ARGV[1])
if len <= keep then return 0 end
local excess = math.min(len - keep, tonumber(ARGV[2]))
local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', excess + 1)
local bound
if #oldest > excess then bound = oldest[excess + 1][1] else bound = after(oldest[#oldest][1]) end
local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
if #groups == 0 then return 0 end
for _, g in ipairs(groups) do
  local name, last
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
  end
  local undelivered = after(last)
  if less(undelivered, bound) then bound = undelivered end
  local pending = redis.call('XPENDING', KEYS[1], name)
  if pending[1] > 0 and less(pending[2], bound) then bound = pending[2] end
end
return redis.call('XTRIM', KEYS[1], 'MINID', '=', bound)
`;

const SCRIPTS = { TAKE, REPLAY, LOAD, RELEASE, ADOPT, DEAD, PATCH, ADD, TRIM } as const;
type ScriptName = keyof typeof SCRIPTS;

export interface SaleWindow {
  startsAt: Date;
  endsAt: Date;
}

/** An entry of `stream:seckill:{productId}:dead`, as DEAD wrote it. */
export interface DeadEntry {
  /** Its id in the dead-letter stream (when it died: the id's time). */
  deadId: string;
  /** Its id in the sale's stream. */
  streamId: string;
  uid: string | null;
  deliveries: number;
  reason: string | null;
}

type RawEntry = [id: string, fields: string[]];

function deadEntry([deadId, fields]: RawEntry): DeadEntry {
  // The first of a name: DEAD writes its own fields before the entry's (which a BFF may have named alike).
  const get = (name: string) => {
    for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
    return null;
  };
  return { deadId, streamId: get('id') ?? '', uid: get('uid'), deliveries: Number(get('deliveries') ?? 0), reason: get('reason') };
}

/**
 * The flash-sale keys and scripts in Redis. Keys are `stream:seckill:{productId}` (the seed's, which
 * BFFs write to), its `:dead` stream, `seckill:{productId}` (left, start, end) and
 * `seckill:{productId}:buyers`, each behind SECKILL_KEY_PREFIX (empty in production).
 */
export class SaleStore {
  private readonly shas = new Map<ScriptName, string>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  stream = (productId: string) => `${this.prefix}stream:seckill:${productId}`;
  dead = (productId: string) => `${this.prefix}stream:seckill:${productId}:dead`;
  private sale = (productId: string) => `${this.prefix}seckill:${productId}`;
  private buyers = (productId: string) => `${this.prefix}seckill:${productId}:buyers`;

  /** The product id of a stream key, or null for keys that are not a sale's stream. */
  productOf(stream: string): string | null {
    const m = /stream:seckill:(\d+)$/.exec(stream);
    return m ? m[1] : null;
  }

  take(productId: string, uid: string, rid: string, now: Date): Promise<TakeAnswer> {
    const keys = [this.sale(productId), this.buyers(productId), this.stream(productId)];
    return this.run('TAKE', keys, [uid, rid, String(now.getTime()), String(Math.floor(now.getTime() / 1000))]) as Promise<TakeAnswer>;
  }

  /** TAKE for a dead letter's user, removing the dead letter if queued; GONE: no such dead letter (any more). */
  replay(productId: string, deadId: string, uid: string, rid: string, now: Date): Promise<TakeAnswer | 'GONE'> {
    const keys = [this.sale(productId), this.buyers(productId), this.stream(productId), this.dead(productId)];
    return this.run('REPLAY', keys, [uid, rid, String(now.getTime()), String(Math.floor(now.getTime() / 1000)), deadId]) as Promise<TakeAnswer | 'GONE'>;
  }

  /** Returns whether it loaded (false: 'missing' and Redis had the sale). */
  async load(productId: string, mode: 'replace' | 'missing', left: number, window: SaleWindow, buyers: string[]): Promise<boolean> {
    const args = [mode, String(left), String(window.startsAt.getTime()), String(window.endsAt.getTime()), ...buyers];
    return (await this.run('LOAD', [this.sale(productId), this.buyers(productId)], args)) === 1;
  }

  async release(productId: string, uid: string, removeBuyer: boolean, giveUnit: boolean): Promise<boolean> {
    return (await this.run('RELEASE', [this.sale(productId), this.buyers(productId)], [uid, removeBuyer ? '1' : '0', giveUnit ? '1' : '0'])) === 1;
  }

  async adopt(productId: string, uid: string): Promise<boolean> {
    return (await this.run('ADOPT', [this.sale(productId), this.buyers(productId)], [uid])) === 1;
  }

  async deadLetter(productId: string, group: string, id: string, deliveries: number, reason: string): Promise<boolean> {
    const keys = [this.stream(productId), this.dead(productId), this.sale(productId), this.buyers(productId)];
    return (await this.run('DEAD', keys, [group, id, String(deliveries), reason])) === 1;
  }

  /** Oldest first, after `afterId` (exclusive) when given. */
  async deadEntries(productId: string, afterId: string | null, count: number): Promise<DeadEntry[]> {
    const raw = (await this.redis.xrange(this.dead(productId), afterId ? `(${afterId}` : '-', '+', 'COUNT', count)) as RawEntry[];
    return raw.map(deadEntry);
  }

  /** Whether a dead letter lies at or before `deadId` (a page's `hasPreviousPage`). */
  async hasDeadUpTo(productId: string, deadId: string): Promise<boolean> {
    return ((await this.redis.xrevrange(this.dead(productId), deadId, '-', 'COUNT', 1)) as RawEntry[]).length > 0;
  }

  async deadEntryOf(productId: string, deadId: string): Promise<DeadEntry | null> {
    const [raw] = (await this.redis.xrange(this.dead(productId), deadId, deadId)) as RawEntry[];
    return raw ? deadEntry(raw) : null;
  }

  /** Removes a dead letter; false when there was none (already discarded or replayed). */
  async discardDead(productId: string, deadId: string): Promise<boolean> {
    return (await this.redis.xdel(this.dead(productId), deadId)) === 1;
  }

  /** The dead letters of many sales, in one round trip (the connection pipelines the commands of a turn). */
  deadCounts(productIds: readonly string[]): Promise<number[]> {
    return Promise.all(productIds.map((id) => this.redis.xlen(this.dead(id))));
  }

  /** A sale Redis holds takes this window (a stop); false when Redis does not hold it. */
  async setWindow(productId: string, window: SaleWindow): Promise<boolean> {
    return (await this.run('PATCH', [this.sale(productId)], ['start', String(window.startsAt.getTime()), 'end', String(window.endsAt.getTime())])) === 1;
  }

  /** Withdrawn: every request answers INACTIVE, the sale's numbers stay (brought back, it sells on). */
  async withdraw(productId: string): Promise<boolean> {
    return (await this.run('PATCH', [this.sale(productId)], ['active', '0'])) === 1;
  }

  async restore(productId: string): Promise<void> {
    await this.redis.hdel(this.sale(productId), 'active');
  }

  /** Units added to what Redis sells (negative: taken), if it holds the sale. */
  async addLeft(productId: string, units: number): Promise<boolean> {
    return (await this.run('ADD', [this.sale(productId)], [String(units)])) === 1;
  }

  /** Trims acknowledged entries beyond the newest `keep`, at most `most` per call; answers how many went. */
  async trim(productId: string, keep: number, most: number): Promise<number> {
    return Number(await this.run('TRIM', [this.stream(productId)], [String(keep), String(most)]));
  }

  async isBuyer(productId: string, uid: string): Promise<boolean> {
    return (await this.redis.sismember(this.buyers(productId), uid)) === 1;
  }

  /** Units Redis still sells, or null when Redis does not hold the sale. */
  async left(productId: string): Promise<number | null> {
    const left = await this.redis.hget(this.sale(productId), 'left');
    return left === null ? null : Number(left);
  }

  /** Entries in the stream the group has not finished: delivered and unacknowledged, plus not yet delivered. */
  async queued(productId: string, group: string): Promise<number> {
    let groups: unknown[][];
    try {
      groups = (await this.redis.xinfo('GROUPS', this.stream(productId))) as unknown[][];
    } catch {
      return 0; // no stream yet
    }
    for (const g of groups) {
      const info = new Map<string, unknown>();
      for (let i = 0; i < g.length; i += 2) info.set(String(g[i]), g[i + 1]);
      if (info.get('name') !== group) continue;
      return Number(info.get('pending') ?? 0) + Number(info.get('lag') ?? 0);
    }
    return Number(await this.redis.xlen(this.stream(productId)));
  }

  deadLetters(productId: string): Promise<number> {
    return this.redis.xlen(this.dead(productId));
  }

  /** SCRIPT LOAD once, EVALSHA after; a Redis that restarted has forgotten its scripts (NOSCRIPT): load again. */
  private async run(name: ScriptName, keys: string[], args: string[]): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      let sha = this.shas.get(name);
      if (!sha) {
        sha = (await this.redis.script('LOAD', SCRIPTS[name])) as string;
        this.shas.set(name, sha);
      }
      try {
        return await this.redis.evalsha(sha, keys.length, ...keys, ...args);
      } catch (err) {
        if (attempt > 0 || !String((err as Error).message).includes('NOSCRIPT')) throw err;
        this.shas.delete(name);
      }
    }
  }
}

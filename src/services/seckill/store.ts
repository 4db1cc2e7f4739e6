import type { Redis } from 'ioredis';

/** What the Lua step answers a request: the public `SeckillTicket.status`. */
export type TicketStatus = 'QUEUED' | 'SOLD_OUT' | 'DUPLICATE' | 'CLOSED';

/**
 * The one step a request takes: sale open (by the window), user not yet a buyer, a unit left ->
 * take it, record the buyer, XADD. One script, so nothing runs between the stock step and the
 * enqueue (decrement-then-check and a gap before the XADD are where flash sales oversell).
 * KEYS: sale hash, buyers set, stream. ARGV: uid, rid, now (ms, the app's clock), ts (s, the seed's field).
 */
const TAKE = `
local sale = redis.call('HMGET', KEYS[1], 'left', 'start', 'end')
if not sale[1] then return 'CLOSED' end
local now = tonumber(ARGV[3])
if now < tonumber(sale[2]) or now >= tonumber(sale[3]) then return 'CLOSED' end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 'DUPLICATE' end
if tonumber(sale[1]) <= 0 then return 'SOLD_OUT' end
redis.call('HINCRBY', KEYS[1], 'left', -1)
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('XADD', KEYS[3], '*', 'uid', ARGV[1], 'ts', ARGV[4], 'rid', ARGV[2])
return 'QUEUED'
`;

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
 * removed it from the pending list copies it. An entry the Lua step took a unit for (it has a `rid`)
 * gives the unit back and its user stops being a buyer (guarded like RELEASE), as no order came of it.
 * KEYS: stream, dead, sale hash, buyers set. ARGV: group, id, deliveries.
 */
const DEAD = `
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
local found = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
local fields = {}
if found[1] then fields = found[1][2] end
redis.call('XADD', KEYS[2], '*', 'id', ARGV[2], 'deliveries', ARGV[3], unpack(fields))
local uid, rid
for i = 1, #fields, 2 do
  if fields[i] == 'uid' then uid = fields[i + 1] elseif fields[i] == 'rid' then rid = fields[i + 1] end
end
if uid and rid and redis.call('EXISTS', KEYS[3]) == 1 and redis.call('SREM', KEYS[4], uid) == 1 then
  redis.call('HINCRBY', KEYS[3], 'left', 1)
end
return 1
`;

const SCRIPTS = { TAKE, LOAD, RELEASE, ADOPT, DEAD } as const;
type ScriptName = keyof typeof SCRIPTS;

export interface SaleWindow {
  startsAt: Date;
  endsAt: Date;
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

  take(productId: string, uid: string, rid: string, now: Date): Promise<TicketStatus> {
    const keys = [this.sale(productId), this.buyers(productId), this.stream(productId)];
    return this.run('TAKE', keys, [uid, rid, String(now.getTime()), String(Math.floor(now.getTime() / 1000))]) as Promise<TicketStatus>;
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

  async deadLetter(productId: string, group: string, id: string, deliveries: number): Promise<boolean> {
    const keys = [this.stream(productId), this.dead(productId), this.sale(productId), this.buyers(productId)];
    return (await this.run('DEAD', keys, [group, id, String(deliveries)])) === 1;
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

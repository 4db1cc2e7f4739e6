import type { MikroORM } from '@mikro-orm/postgresql';
import pg from 'pg';
import { sql } from 'kysely';
import type { Clock } from '../../clock.js';
import { pgArray } from '../../db/sql.js';
import { poolSafety } from '../../db/unavailable.js';
import type { Logger } from '../../logger.js';
import { WAKEUPS_CHANNEL, wakeJobName } from './kind.js';

/**
 * The longest a timer waits before it reads its kind's row again: setTimeout cannot wait longer than
 * 2^31 - 1 ms (24.8 days; a longer delay fires after 1 ms), a 30-day VIP membership is further out,
 * and an hour bounds how long a notification lost while the LISTEN connection was not yet broken (a
 * silent peer: TCP keep-alive takes minutes) leaves a timer at an old time, besides the sweep.
 */
const MAX_WAIT_MS = 3_600_000;
/**
 * The LISTEN connection is made again after 0.1, 0.2, 0.4 … s, at most 2 s apart: one connection
 * attempt per instance every 2 s while PostgreSQL is away costs nothing, and a timer without it reads
 * its row before it fires (`due`), so the gap costs a read, not a deadline.
 */
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 2_000;
/**
 * A deadline still due after a run here is held by a run on another instance: waiting a little for
 * it beats spinning two transactions a round until it is done (the armed time moves then, and this
 * instance hears it); looked at again in case that run died with its rows, or committed them without
 * moving the armed time (a stopping or killed instance's run: 10 ms, then 20, 40 … caps what that
 * costs; 50 at first was most of a SIGKILL's or SIGTERM's lateness in bench:failover).
 */
const IDLE_MIN_MS = 10;
const IDLE_MAX_MS = 5_000;

interface KindTimer {
  /** The kind's armed time as last read or set here (ms), null when none is armed. */
  at: number | null;
  /** Whether an admin paused the kind, as last read. */
  paused: boolean;
  /** When the row was last read (ms, real time). */
  readAt: number;
  /** Bumped by every change made here, so a read begun before it is not applied after it. */
  version: number;
  /** How long an overdue armed time waits before the next run (see `set`); 0: none. */
  idleMs: number;
  timer?: NodeJS.Timeout;
}

/**
 * The mechanism: this instance keeps one timer per deadline kind at the kind's armed time
 * (`deadline_wakeups.wake_at`), and at that time runs `fire(kind)`, the engine's `settleDue`.
 * Every instance does, so a deadline is settled on time while any instance lives: they split the
 * due rows (SKIP LOCKED) and each is settled once (conditional updates). A timer follows its row:
 * - at once after this instance commits a change of the armed time (`set`, from the engine);
 * - on the notification every such change sends inside its transaction, heard on one LISTEN
 *   connection of this instance's own (another instance armed earlier, or re-armed after settling);
 * - after every run of `settleDue` here, the backstop's included (`set`, from the engine);
 * - when the LISTEN connection is made again (a notification may have been lost): every kind is read.
 * Never early: a timer that fires before the armed time by `clock` waits out the rest. A paused kind's
 * timer does nothing (the pause comes with a notification too, and so does the resume).
 */
export class WakeupTimers {
  private readonly state = new Map<string, KindTimer>();
  private client: pg.Client | undefined;
  private listening = false;
  private lost = false;
  private retry: NodeJS.Timeout | undefined;
  private backoffMs = RECONNECT_MIN_MS;
  private stopping = false;
  /** Kinds to read again, and the read under way (one at a time; kinds asked for meanwhile go in the next). */
  private readonly wanted = new Set<string>();
  private reading: Promise<void> | undefined;
  private readFailing = false;

  constructor(
    private readonly orm: MikroORM,
    private readonly databaseUrl: string,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly kinds: () => string[],
    private readonly fire: (kind: string) => Promise<unknown>,
  ) {}

  /** Starts listening, then reads every kind's row (a first connection that fails is retried as any). */
  async start(): Promise<void> {
    await this.connect();
    await this.refresh(this.kinds());
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.retry);
    for (const s of this.state.values()) clearTimeout(s.timer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  /**
   * This instance committed `at` as the kind's armed time (null: none), or read it after a run.
   * `idle`: a run here found deadlines still due that it could not take (held by a run elsewhere):
   * looked at again after 50 ms, then 100, 200 … at most 5 s, until the armed time moves.
   */
  set(kind: string, at: Date | null, idle = false): void {
    if (this.stopping) return;
    const s = this.of(kind);
    s.version++;
    s.at = at?.getTime() ?? null;
    s.idleMs = idle ? Math.min((s.idleMs || IDLE_MIN_MS / 2) * 2, IDLE_MAX_MS) : 0;
    this.schedule(kind, s);
  }

  /** Whether an admin paused the kind, as last read (a run under way stops going on). */
  paused(kind: string): boolean {
    return this.state.get(kind)?.paused ?? false;
  }

  /** Reads the kinds' rows (armed time and pause) and sets their timers. */
  refresh(kinds: readonly string[]): Promise<void> {
    // Stopping: nothing is read any more. (The read loop below ends at once when stopping, leaving the
    // kinds wanted; asking again from its `finally` then looped in microtasks alone and starved the
    // process: a test file spun at full CPU for 15 min after an engine stopped with a read wanted.)
    if (this.stopping) return Promise.resolve();
    for (const kind of kinds) this.wanted.add(kind);
    this.reading ??= this.readWanted().finally(() => {
      this.reading = undefined;
      if (this.wanted.size > 0 && !this.stopping) void this.refresh([]);
    });
    return this.reading;
  }

  private of(kind: string): KindTimer {
    let s = this.state.get(kind);
    if (!s) this.state.set(kind, (s = { at: null, paused: false, readAt: 0, version: 0, idleMs: 0 }));
    return s;
  }

  private async readWanted(): Promise<void> {
    while (this.wanted.size > 0 && !this.stopping) {
      const kinds = [...this.wanted];
      this.wanted.clear();
      const versions = new Map(kinds.map((k) => [k, this.of(k).version]));
      try {
        const { rows } = await sql<{ kind: string; wake_at: Date | string | null; paused: boolean | null }>`
          select k.kind, w.wake_at, s.paused from unnest(${pgArray(kinds)}::text[]) as k(kind)
            left join deadline_wakeups w on w.kind = k.kind
            left join job_states s on s.name = ${wakeJobName('')} || k.kind`.execute(this.orm.em.fork().getKysely());
        if (this.readFailing) this.log.info('deadline timers: their rows are read again');
        this.readFailing = false;
        for (const row of rows) {
          const s = this.of(row.kind);
          if (this.stopping || s.version !== versions.get(row.kind)) continue;
          s.at = row.wake_at === null ? null : new Date(row.wake_at).getTime();
          s.paused = row.paused === true;
          s.readAt = Date.now();
          s.idleMs = 0;
          this.schedule(row.kind, s);
        }
      } catch (err) {
        // The kinds keep the timers they have; the next notification, reconnect or run reads again.
        if (!this.readFailing) this.log.warn({ err: (err as Error).message }, 'deadline timers: could not read the armed times; the sweep settles meanwhile');
        this.readFailing = true;
      }
    }
  }

  private schedule(kind: string, s: KindTimer): void {
    clearTimeout(s.timer);
    s.timer = undefined;
    if (s.at === null || this.stopping) return;
    const left = s.at - this.clock.now().getTime();
    if (left > MAX_WAIT_MS) {
      s.timer = setTimeout(() => void this.refresh([kind]), MAX_WAIT_MS).unref();
      return;
    }
    s.timer = setTimeout(() => this.due(kind, s), Math.max(s.idleMs, left, 0)).unref();
  }

  private due(kind: string, s: KindTimer): void {
    s.timer = undefined;
    if (this.stopping || s.at === null) return;
    // Timers count from the event loop's cached time and can fire a moment early: wait out the rest.
    if (s.at > this.clock.now().getTime()) return this.schedule(kind, s);
    // Without the LISTEN connection a pause (or a change) may have gone unheard: read the row first.
    if (!this.listening && Date.now() - s.readAt > 1_000) return void this.refresh([kind]);
    if (s.paused) return;
    this.fire(kind).catch((err) => this.log.warn({ err, kind }, 'settling deadlines failed; the wake-up job and the sweep retry'));
  }

  /** The LISTEN connection: made again after a loss, with backoff; once made, every kind is read. */
  private connect(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    const client = new pg.Client({ connectionString: this.databaseUrl, ...poolSafety });
    this.client = client;
    let gone = false;
    const onLost = (err?: Error) => {
      if (gone) return;
      gone = true;
      this.listening = false;
      if (this.client === client) this.client = undefined;
      void client.end().catch(() => undefined);
      if (this.stopping) return;
      if (!this.lost) this.log.warn({ err: err?.message }, 'deadline notifications: connection lost; listening again as soon as it can be made');
      this.lost = true;
      this.retry = setTimeout(() => void this.connect(), this.backoffMs).unref();
      this.backoffMs = Math.min(this.backoffMs * 2, RECONNECT_MAX_MS);
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (note) => {
      if (note.channel === WAKEUPS_CHANNEL && note.payload && this.kinds().includes(note.payload)) void this.refresh([note.payload]);
    });
    return client
      .connect()
      .then(() => client.query(`listen ${WAKEUPS_CHANNEL}`))
      .then(() => {
        if (gone || this.stopping) return;
        this.listening = true;
        this.backoffMs = RECONNECT_MIN_MS;
        if (this.lost) this.log.info('deadline notifications: listening again');
        // What changed while the connection was away was not heard.
        if (this.lost) void this.refresh(this.kinds());
        this.lost = false;
      })
      .catch(onLost);
  }
}

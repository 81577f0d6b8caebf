import pg from 'pg';
import { type InputProblem, invalidationOf, isProblem } from '../api/input.js';
import { APPLIER_LOCK, DEFAULT_CHANNEL, MIGRATION, MIGRATION_LOCK } from './outbox.js';

/** Applies one outbox entry through the node (L2, bus, every L1); rejects when it could not. */
export type ApplyInvalidation = (keys: readonly string[], tags: readonly string[]) => Promise<unknown>;

export interface PostgresInvalidationOptions {
  /** postgres:// URL (search_path may be set with `?options=-c search_path=…`). */
  readonly url: string;
  /** Channels that wake the listener besides DEFAULT_CHANNEL (the one strata_invalidate() notifies). */
  readonly channels: readonly string[];
  readonly apply: ApplyInvalidation;
  /**
   * With a shared L2, one node applies each entry for all (it holds the
   * applier lock; the others stand by and take over when it goes). Without,
   * every node applies every entry to its own L1.
   */
  readonly shared: boolean;
  /** Called with a line worth an operator's attention (connection lost, entries refused). */
  readonly say?: (line: string) => void;
}

/** The listener's state, for /readyz-like detail, /v1/stats and /metrics. */
export interface PostgresStatus {
  /** Connected, listening, and applying (or standing by, ready to). */
  readonly up: boolean;
  /** applier: applies for the cluster; standby: another node does; follower: applies for itself (no L2). */
  readonly role: 'applier' | 'standby' | 'follower' | 'down';
  /** The cursor: every entry up to this id is applied (or can no longer commit). */
  readonly appliedId: number;
  /** The newest entry's id minus the cursor, as of the last look. */
  readonly lag: number;
  readonly applied: number;
  /** Entries whose payload was not {"keys":[…],"tags":[…]} of valid keys and tags (at most MAX_BATCH_KEYS of each): skipped. */
  readonly rejected: number;
  readonly reconnects: number;
  readonly lastError: string;
}

/** How often the outbox is read without a NOTIFY (a lost wake-up costs at most this), ms. */
export const POLL_INTERVAL_MS = 1000;
/** Rows applied and older than this are deleted, s. */
export const RETENTION_S = 600;
/** How often the node that applies deletes old rows, ms. */
const PRUNE_INTERVAL_MS = 60_000;
/** Most rows read in one go. */
const BATCH_ROWS = 500;
/** Most gaps waited for at once; past it the lowest ones are given up (reported), so memory and the read stay bounded. */
export const MAX_GAPS = 10_000;

/** Ids above the cursor that no row held when read: a transaction still running may have taken them. */
interface Gap {
  from: number;
  to: number;
  /**
   * An xid taken after the read that saw the gap, null until taken. Every
   * transaction holding an id in the gap had its xid by then (strata_invalidate()
   * takes it before the id); once a snapshot's xmin reaches this one, they have
   * all ended, and a read begun after that snapshot sees whatever they committed.
   */
  horizon: bigint | null;
}

/**
 * The head of a drain: its snapshot's xmin (every transaction below it has
 * ended), and the newest id (for the lag), read before anything is applied.
 */
const HEAD = 'SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin, COALESCE(max(id), 0) AS last FROM strata_invalidations';
/** Rows not applied yet: past the highest applied ($1), and in the gaps below it ($2 to $3, pairwise). */
const UNREAD = `
(SELECT id, payload FROM strata_invalidations WHERE id > $1 ORDER BY id LIMIT $4)
UNION ALL
(SELECT id, payload FROM strata_invalidations JOIN unnest($2::bigint[], $3::bigint[]) AS gap(lo, hi) ON id BETWEEN lo AND hi)
ORDER BY id LIMIT $4`;
/** A follower's start: just below the last BATCH_ROWS entries. */
const FOLLOWER_START = `SELECT COALESCE(min(id) - 1, 0) AS id FROM (SELECT id FROM strata_invalidations ORDER BY id DESC LIMIT ${BATCH_ROWS}) recent`;

/**
 * Invalidation from PostgreSQL, nothing lost: a `pg` connection LISTENs on
 * DEFAULT_CHANNEL and the configured channels, and every NOTIFY (or a poll,
 * every POLL_INTERVAL_MS) makes it read the outbox past its cursor; after a
 * reconnect it reads from there again, so what changed while it was away is
 * applied too. An entry is applied through the node's own invalidation (the
 * L2, the bus, every L1) and counts as applied only once that succeeded: an
 * entry may be applied twice (harmless), never skipped.
 *
 * Ids are taken at INSERT, rows appear at COMMIT: a row may appear below one
 * already applied. So the cursor is a low-water mark: it stops below the
 * lowest gap (an id not seen) until no transaction that could fill the gap is
 * running; rows above it are applied at once and remembered, so later reads
 * skip them and read only the gaps and what is new.
 */
export class PostgresInvalidation {
  readonly #options: PostgresInvalidationOptions;
  #client: pg.Client | null = null;
  #closed = false;
  #role: PostgresStatus['role'] = 'down';
  #listening = false;
  /** Every id up to it is applied or can no longer commit; the applier persists it. Null: no position yet. */
  #cursor: number | null = null;
  /** Highest id applied: from the cursor to it, every id is applied but those in #gaps. */
  #seen = 0;
  /** In id order, between the cursor and #seen. */
  #gaps: Gap[] = [];
  #lag = 0;
  #applied = 0;
  #rejected = 0;
  #reconnects = 0;
  #lastError = '';
  #draining: Promise<void> | null = null;
  #again = false;
  #timer: NodeJS.Timeout | null = null;
  #retryMs = 100;
  #prunedAt = 0;

  constructor(options: PostgresInvalidationOptions) {
    this.#options = options;
  }

  /** Connects in the background and keeps at it until close(). */
  start(): void {
    void this.#connect();
  }

  status(): PostgresStatus {
    return {
      up: this.#listening && this.#role !== 'down',
      role: this.#role,
      appliedId: this.#cursor ?? 0,
      lag: this.#lag,
      applied: this.#applied,
      rejected: this.#rejected,
      reconnects: this.#reconnects,
      lastError: this.#lastError,
    };
  }

  async #connect(): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client({
      connectionString: this.#options.url,
      application_name: 'strata-invalidation',
      keepAlive: true,
      connectionTimeoutMillis: 5000,
    });
    this.#client = client;
    let lost = false;
    const onLost = (err?: Error) => {
      if (lost) return;
      lost = true;
      if (err !== undefined) this.#lastError = err.message;
      this.#listening = false;
      this.#role = 'down';
      if (this.#timer !== null) clearInterval(this.#timer);
      this.#timer = null;
      client.end().catch(() => {});
      if (this.#closed || this.#client !== client) return;
      this.#client = null;
      this.#reconnects++;
      this.#options.say?.(`strata: PostgreSQL invalidation connection lost (${this.#lastError}); reconnecting`);
      const delay = this.#retryMs;
      this.#retryMs = Math.min(2000, this.#retryMs * 2);
      setTimeout(() => void this.#connect(), delay).unref();
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', () => this.#drain());
    try {
      await client.connect();
      await this.#migrate(client);
      // strata_invalidate() notifies DEFAULT_CHANNEL; the configured channels are further wake-ups the application may send.
      for (const channel of new Set([DEFAULT_CHANNEL, ...this.#options.channels])) await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      this.#role = this.#options.shared ? 'standby' : 'follower';
      this.#listening = true;
      this.#retryMs = 100;
      this.#lastError = '';
      this.#timer = setInterval(() => this.#drain(), POLL_INTERVAL_MS);
      this.#timer.unref();
      this.#drain();
    } catch (err) {
      onLost(err as Error);
    }
  }

  /** Creates the outbox and its functions if missing; one node at a time (a transaction lock). */
  async #migrate(client: pg.Client): Promise<void> {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await client.query(MIGRATION);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    }
  }

  /** Reads and applies what the outbox holds past the cursor; one drain at a time, and one more if asked meanwhile. */
  #drain(): void {
    if (this.#draining !== null) {
      this.#again = true;
      return;
    }
    const client = this.#client;
    if (client === null || !this.#listening) return;
    this.#draining = this.#drainOnce(client)
      .catch((err: Error) => {
        this.#lastError = err.message;
      })
      .finally(() => {
        this.#draining = null;
        if (this.#again) {
          this.#again = false;
          this.#drain();
        }
      });
  }

  async #drainOnce(client: pg.Client): Promise<void> {
    if (this.#role === 'standby') {
      // The applier's lock is a session lock: it goes with its connection, and a standby takes it then.
      const got = (await client.query('SELECT pg_try_advisory_lock($1) AS got', [APPLIER_LOCK])).rows[0].got as boolean;
      if (!got) {
        this.#lag = 0;
        return;
      }
      this.#role = 'applier';
      // Nobody else moves the cursor while this session holds the lock: it is read once, here.
      this.#cursor = this.#seen = Number((await client.query('SELECT applied_id FROM strata_invalidation_cursor')).rows[0].applied_id);
      this.#gaps = [];
    }
    if (this.#cursor === null) {
      // A follower's L1 holds nothing from before it started, but an entry may have committed since, or be
      // committing with an id below the newest: it applies the last few entries again (idempotent).
      this.#cursor = this.#seen = Number((await client.query(FOLLOWER_START)).rows[0].id);
    }
    const head = (await client.query(HEAD)).rows[0] as { xmin: string; last: string };
    // Before applying, so that it is right while applying fails (Redis down); again once applied.
    const last = Number(head.last);
    this.#lag = Math.max(0, last - this.#cursor);
    for (;;) {
      const gaps = this.#gaps;
      const { rows } = await client.query(UNREAD, [this.#seen, gaps.map((g) => g.from), gaps.map((g) => g.to), BATCH_ROWS]);
      for (const row of rows as { id: string; payload: unknown }[]) {
        const entry = entryOf(row.payload);
        if (isProblem(entry)) {
          this.#rejected++;
          this.#options.say?.(`strata: PostgreSQL invalidation ${row.id} rejected and skipped: ${entry.message}`);
        } else {
          // Not marked until it is applied: an entry that fails is read again at the next drain.
          await this.#options.apply(entry.keys, entry.tags);
          this.#applied++;
        }
        this.#mark(Number(row.id));
      }
      const done = rows.length < BATCH_ROWS;
      if (done) {
        // Every read above began after the head's snapshot: a gap whose holders had all ended by then stays empty.
        const xmin = BigInt(head.xmin);
        this.#gaps = this.#gaps.filter((g) => g.horizon === null || g.horizon > xmin);
      }
      await this.#settle(client);
      if (done) break;
    }
    this.#lag = Math.max(0, last - this.#cursor);
    if (Date.now() - this.#prunedAt > PRUNE_INTERVAL_MS) {
      this.#prunedAt = Date.now();
      await client.query(`DELETE FROM strata_invalidations WHERE id <= $1 AND created_at < now() - interval '${RETENTION_S} seconds'`, [this.#cursor]);
    }
  }

  /** Records an id as applied: past the highest so far it leaves a gap over the ids in between; below, it fills part of a gap. */
  #mark(id: number): void {
    if (id > this.#seen) {
      if (id > this.#seen + 1) this.#gaps.push({ from: this.#seen + 1, to: id - 1, horizon: null });
      this.#seen = id;
      return;
    }
    // Below it, the id was in a gap (the read returns no other id): the gap becomes the ids on either side of it.
    const i = this.#gaps.findIndex((g) => g.from <= id && id <= g.to);
    const gap = this.#gaps[i] as Gap;
    const sides = [
      { ...gap, to: id - 1 },
      { ...gap, from: id + 1 },
    ];
    this.#gaps.splice(i, 1, ...sides.filter((g) => g.from <= g.to));
  }

  /** Gives new gaps their horizon, bounds their number, and moves the cursor to just below the lowest (the applier persists it). */
  async #settle(client: pg.Client): Promise<void> {
    if (this.#gaps.some((g) => g.horizon === null)) {
      // An xid of its own, taken after the read that saw the gaps. Not that snapshot's xmax: it is one past
      // the newest transaction that ended, and one still open (holding a gap) may be above it.
      const horizon = BigInt((await client.query('SELECT pg_current_xact_id()::text AS xid')).rows[0].xid);
      for (const gap of this.#gaps) gap.horizon ??= horizon;
    }
    // One batch may open hundreds of gaps: every one past the bound goes, the lowest first.
    const excess = this.#gaps.length - MAX_GAPS;
    if (excess > 0) {
      const dropped = this.#gaps.splice(0, excess);
      this.#options.say?.(
        `strata: PostgreSQL invalidation stopped waiting for ${excess} gaps of outbox ids between ${dropped[0]?.from} and ${dropped.at(-1)?.to} (more than ${MAX_GAPS} gaps open behind a long transaction); an entry committed there later is not applied`,
      );
    }
    const lowest = this.#gaps[0];
    const cursor = lowest === undefined ? this.#seen : lowest.from - 1;
    if (cursor === this.#cursor) return;
    if (this.#role === 'applier') await client.query('UPDATE strata_invalidation_cursor SET applied_id = $1', [cursor]);
    this.#cursor = cursor;
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    await this.#draining;
    const client = this.#client;
    this.#client = null;
    await client?.end().catch(() => {});
  }
}

/** An outbox payload as keys and tags, checked as POST /v1/invalidate checks its body, or why it is refused. */
function entryOf(payload: unknown): { keys: string[]; tags: string[] } | InputProblem {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    return { code: 'E_INVALID_BODY', message: 'the payload must be {"keys": [...], "tags": [...]}' };
  }
  return invalidationOf(payload as Record<string, unknown>);
}

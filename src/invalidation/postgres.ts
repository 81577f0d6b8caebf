import pg from 'pg';
import { tagProblem } from '../http/input.js';
import { keyProblem } from '../http/key.js';
import { APPLIER_LOCK, MIGRATION, MIGRATION_LOCK } from './outbox.js';

/** Applies one outbox entry through the node (L2, bus, every L1); rejects when it could not. */
export type ApplyInvalidation = (keys: readonly string[], tags: readonly string[]) => Promise<unknown>;

export interface PostgresInvalidationOptions {
  /** postgres:// URL (search_path may be set with `?options=-c search_path=…`). */
  readonly url: string;
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
  /** Id of the last entry applied. */
  readonly appliedId: number;
  /** Entries in the outbox not applied yet (as of the last look). */
  readonly lag: number;
  readonly applied: number;
  /** Entries whose payload was not {"keys":[…],"tags":[…]} of valid keys and tags: skipped. */
  readonly rejected: number;
  readonly reconnects: number;
  readonly lastError: string;
}

/** How often the outbox is read without a NOTIFY (a lost wake-up costs at most this), ms. */
export const POLL_INTERVAL_MS = 1000;
/** Rows applied and older than this are deleted, s. */
export const RETENTION_S = 600;
/** Most rows read in one go. */
const BATCH_ROWS = 500;

/**
 * Invalidation from PostgreSQL, nothing lost: a `pg` connection LISTENs on the
 * configured channels, and every NOTIFY (or a poll, every POLL_INTERVAL_MS)
 * makes it read the outbox from the last applied id; after a reconnect it
 * reads from there again, so what changed while it was away is applied too.
 * An entry is applied through the node's own invalidation (the L2, the bus,
 * every L1) and the cursor moves past it only once that succeeded: an entry
 * may be applied twice (harmless), never skipped.
 */
export class PostgresInvalidation {
  readonly #options: PostgresInvalidationOptions;
  #client: pg.Client | null = null;
  #closed = false;
  #role: PostgresStatus['role'] = 'down';
  #listening = false;
  #appliedId = 0;
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
      appliedId: this.#appliedId,
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
      for (const channel of this.#options.channels) await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      if (this.#options.shared) {
        this.#role = 'standby';
      } else {
        this.#role = 'follower';
        // A follower has nothing in its L1 from before it started: it applies from now on.
        if (this.#appliedId === 0) this.#appliedId = Number((await client.query('SELECT COALESCE(max(id), 0) AS id FROM strata_invalidations')).rows[0].id);
      }
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
    }
    if (this.#role === 'applier') {
      this.#appliedId = Number((await client.query('SELECT applied_id FROM strata_invalidation_cursor')).rows[0].applied_id);
    }
    for (;;) {
      const { rows } = await client.query('SELECT id, payload FROM strata_invalidations WHERE id > $1 ORDER BY id LIMIT $2', [this.#appliedId, BATCH_ROWS]);
      for (const row of rows as { id: string; payload: unknown }[]) {
        const entry = entryOf(row.payload);
        if (entry === null) {
          this.#rejected++;
          this.#options.say?.(`strata: PostgreSQL invalidation ${row.id} skipped: its payload is not {"keys":[…],"tags":[…]} of valid keys and tags`);
        } else {
          // Not past it until it is applied: an entry that fails is retried from here at the next drain.
          await this.#options.apply(entry.keys, entry.tags);
          this.#applied++;
        }
        this.#appliedId = Number(row.id);
        if (this.#role === 'applier') await client.query('UPDATE strata_invalidation_cursor SET applied_id = $1', [this.#appliedId]);
      }
      if (rows.length < BATCH_ROWS) break;
    }
    this.#lag = Number((await client.query('SELECT count(*) AS n FROM strata_invalidations WHERE id > $1', [this.#appliedId])).rows[0].n);
    if (this.#role === 'applier' && Date.now() - this.#prunedAt > 60_000) {
      this.#prunedAt = Date.now();
      await client.query(`DELETE FROM strata_invalidations WHERE id <= $1 AND created_at < now() - interval '${RETENTION_S} seconds'`, [this.#appliedId]);
    }
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

/** An outbox payload as keys and tags, or null when it is not one (every key and tag checked as the HTTP API does). */
function entryOf(payload: unknown): { keys: string[]; tags: string[] } | null {
  if (typeof payload !== 'object' || payload === null) return null;
  const { keys = [], tags = [] } = payload as { keys?: unknown; tags?: unknown };
  if (!Array.isArray(keys) || !Array.isArray(tags)) return null;
  if (!keys.every((k) => typeof k === 'string' && keyProblem(k) === null)) return null;
  if (!tags.every((t) => typeof t === 'string' && tagProblem(t) === null)) return null;
  return { keys: keys as string[], tags: tags as string[] };
}

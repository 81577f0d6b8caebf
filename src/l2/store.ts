import type { L2UnavailableError } from '../errors.js';
import type { L2Entry } from './envelope.js';

/**
 * Makes the bus message that announces a change, called once the change is in
 * Redis or queued ahead of the message on the connection that publishes it
 * (so numbers go out in order, and no subscriber hears of a change before it is there).
 */
export type Announce = () => Buffer;

/** One key of a multi-key read: a hit, absent, or a value that could not be read (kind `reply`). */
export type L2Read = L2Hit | null | L2UnavailableError;

/** A value read from the L2 with how long it has left to live (fresh or stale: see entry.expiresMs). */
export interface L2Hit {
  readonly entry: L2Entry;
  /** Ms until the L2 drops it (its stale-until), by the writer's clock stamp. */
  readonly ttlMs: number;
}

/** A key's value and lock as one round trip saw them. */
export interface L2Peek {
  readonly hit: L2Hit | null;
  /** A lock (a load or a lease in progress somewhere, or a failure note) is held on the key. */
  readonly locked: boolean;
  /** The note a failed load left in the lock's place (see L2Store.failed), or null. */
  readonly failure: string | null;
}

/** The end of lockUnlessFresh: the lock taken, or what was there instead. */
export type LockAttempt = { readonly locked: true } | { readonly locked: false; readonly peek: L2Peek };

/** What marks a lock's content as a failure note rather than a token (tokens start with a digit). */
export const FAILURE_PREFIX = '!failed ';

/** A peek from the value read and the lock's content. */
export function peekOf(hit: L2Hit | null, lock: string | null): L2Peek {
  return { hit, locked: lock !== null, failure: lock?.startsWith(FAILURE_PREFIX) ? lock.slice(FAILURE_PREFIX.length) : null };
}

/** How a fill under a lock is published and fenced. */
export interface FillOptions {
  /** The bus message, made when the value is in Redis. */
  readonly announce?: Announce | null;
  /** Called if the fill outlives its deadline and Redis completes it later. */
  readonly late?: () => void;
  /** A lease's epoch: the fill is refused when a tag invalidation happened since (see docs/leases.md). */
  readonly epoch?: number;
}

/**
 * The second level, shared by every node. One interface; RedisL2Store (Redis
 * and Redis Cluster) implements it. Every method settles within the store's
 * command deadline and rejects with L2UnavailableError when the L2 cannot
 * answer.
 */
export interface L2Store {
  get(key: string): Promise<L2Hit | null>;
  /**
   * One result per key, in order, in one round trip per Redis node (MGET; in
   * a Cluster one MGET per slot). A key whose stored value Strata cannot read
   * is an error for that key only, and so, in a Cluster, are the keys of a
   * slot whose node fails; a read that fails everywhere rejects.
   */
  mget(keys: readonly string[]): Promise<L2Read[]>;
  /**
   * Stores a value for ttlMs and records it under each of its tags; then, if
   * given, publishes `announce()` on the bus (on a standalone Redis all in one
   * round trip, in this order). Both within one deadline; if the
   * deadline passes and Redis still completes the write later, `late` is called then.
   */
  set(key: string, entry: L2Entry, ttlMs: number, announce?: Announce | null, late?: () => void): Promise<void>;
  /** Removes keys (and their locks: a lease on them is void), then publishes `announce()` if given; resolves with how many existed. `late` as for set. */
  delete(keys: readonly string[], announce?: Announce | null, late?: () => void): Promise<number>;
  /**
   * Removes every value written with one of the tags (and its lock), after
   * moving the lease epoch on; then publishes `announce()` if given; resolves
   * with how many existed.
   */
  deleteTags(tags: readonly string[], announce?: Announce | null): Promise<number>;
  /**
   * Takes the key's lock for ttlMs if nobody holds it (`SET NX PX`). The lock
   * lives in the value's slot. Resolves true when taken.
   */
  tryLock(key: string, token: string, ttlMs: number): Promise<boolean>;
  /**
   * Takes the key's lock unless the key holds a fresh value, atomically (a
   * Lua script reads the value's fresh-until): a reader that found nothing a
   * moment ago and asks now cannot take a lock after someone else's fill.
   * Otherwise answers what it found, as peek(). With `freshAfterMs`, a value
   * counts as fresh only if it stays fresh past that (epoch ms): an early
   * refresh of a value fresh until T is not needed once a value fresh past T
   * is there. @default now
   */
  lockUnlessFresh(key: string, token: string, ttlMs: number, freshAfterMs?: number): Promise<LockAttempt>;
  /** Releases the key's lock if `token` still holds it (a Lua compare-and-delete); true when it did. */
  unlock(key: string, token: string): Promise<boolean>;
  /**
   * Stores a value only while `token` holds the key's lock, and releases it,
   * atomically (a Lua script): a holder whose lock expired and was taken over
   * cannot overwrite a newer value (fencing). Tags are joined around it as in
   * set(). Resolves false, storing nothing, when the lock is no longer held.
   */
  fill(key: string, token: string, entry: L2Entry, ttlMs: number, options?: FillOptions): Promise<boolean>;
  /** The key's value and whether its lock is held, in one round trip (a waiter's poll). */
  peek(key: string): Promise<L2Peek>;
  /**
   * A holder whose load failed leaves `note` in the lock's place for ttlMs
   * (only while `token` holds it): waiters see the failure at once instead of
   * each loading again, and new readers for that long get it too, so a failing
   * origin gets one request per key per ttlMs from the whole cluster.
   */
  failed(key: string, token: string, note: string, ttlMs: number): Promise<boolean>;
  /** The lease epoch now (docs/leases.md). */
  leaseEpoch(): Promise<number>;
  /** Publishes bytes on a pub/sub channel; resolves once the L2 took them. */
  publish(channel: string, message: Buffer): Promise<void>;
  /** Resolves when the L2 answers. */
  ping(): Promise<void>;
  /** True while connected and taking commands. */
  readonly ready: boolean;
  /** Circuit breaker: 0 closed, 1 half-open, 2 open. */
  readonly breakerCode: number;
  close(): Promise<void>;
}

import type { L2UnavailableError } from '../errors.js';
import type { L2Entry } from './envelope.js';

/** Makes the bus message that announces a change, called once the change is in Redis (so numbers go out in order). */
export type Announce = () => Buffer;

/** One key of a multi-key read: a hit, absent, or a value that could not be read (kind `reply`). */
export type L2Read = L2Hit | null | L2UnavailableError;

/** A value read from the L2 with how long it has left to live. */
export interface L2Hit {
  readonly entry: L2Entry;
  /** Remaining TTL in ms as the L2 reports it. */
  readonly ttlMs: number;
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
   * given, publishes `announce()` on the bus. Both within one deadline; if the
   * deadline passes and Redis still completes the write later, `late` is called then.
   */
  set(key: string, entry: L2Entry, ttlMs: number, announce?: Announce | null, late?: () => void): Promise<void>;
  /** Removes keys, then publishes `announce()` if given; resolves with how many existed. `late` as for set. */
  delete(keys: readonly string[], announce?: Announce | null, late?: () => void): Promise<number>;
  /** Removes every value written with one of the tags, then publishes `announce()` if given; resolves with how many existed. */
  deleteTags(tags: readonly string[], announce?: Announce | null): Promise<number>;
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

import type { L2Entry } from './envelope.js';

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
  /** One result per key, in order. */
  mget(keys: readonly string[]): Promise<(L2Hit | null)[]>;
  set(key: string, entry: L2Entry, ttlMs: number): Promise<void>;
  /** Removes keys; resolves with how many existed. */
  delete(keys: readonly string[]): Promise<number>;
  close(): Promise<void>;
}

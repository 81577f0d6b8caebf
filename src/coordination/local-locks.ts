import type { L2Entry } from '../l2/envelope.js';
import { FAILURE_PREFIX, type FillOptions, type L2Hit, type L2Peek, type LockAttempt, peekOf } from '../l2/store.js';
import type { LockStore } from './stampede.js';

/** Where a node without an L2 keeps what a fill stores: its shard's L1. */
export interface LocalValues {
  /** The key's value as a hit (null when absent). */
  read(key: string): L2Hit | null;
  /** Stores a filled value for ttlMs. */
  store(key: string, entry: L2Entry, ttlMs: number): void;
}

/**
 * The lock protocol of stampede.ts for a node without an L2: locks in a map
 * of the key's shard, values in its L1. There is no other node to protect
 * against, but leases and single loads behave as with Redis, so a client
 * sees one protocol whatever the deployment.
 */
export class LocalLocks implements LockStore {
  readonly #locks = new Map<string, { token: string; expiresAt: number }>();
  readonly #values: LocalValues;
  #epoch = 0;

  constructor(values: LocalValues) {
    this.#values = values;
  }

  #holder(key: string): string | null {
    const lock = this.#locks.get(key);
    if (lock === undefined) return null;
    if (lock.expiresAt <= performance.now()) {
      this.#locks.delete(key);
      return null;
    }
    return lock.token;
  }

  async tryLock(key: string, token: string, ttlMs: number): Promise<boolean> {
    if (this.#holder(key) !== null) return false;
    this.#locks.set(key, { token, expiresAt: performance.now() + ttlMs });
    return true;
  }

  async lockUnlessFresh(key: string, token: string, ttlMs: number, freshAfterMs = Date.now()): Promise<LockAttempt> {
    const hit = this.#values.read(key);
    if ((hit === null || hit.entry.expiresMs <= freshAfterMs) && (await this.tryLock(key, token, ttlMs))) return { locked: true };
    return { locked: false, peek: peekOf(hit, this.#holder(key)) };
  }

  async unlock(key: string, token: string): Promise<boolean> {
    if (this.#holder(key) !== token) return false;
    this.#locks.delete(key);
    return true;
  }

  async fill(key: string, token: string, entry: L2Entry, ttlMs: number, options: FillOptions = {}): Promise<boolean> {
    if (this.#holder(key) !== token || (options.epoch !== undefined && options.epoch !== this.#epoch)) {
      if (this.#holder(key) === token) this.#locks.delete(key);
      return false;
    }
    this.#locks.delete(key);
    this.#values.store(key, entry, ttlMs);
    return true;
  }

  async peek(key: string): Promise<L2Peek> {
    return peekOf(this.#values.read(key), this.#holder(key));
  }

  async failed(key: string, token: string, note: string, ttlMs: number): Promise<boolean> {
    if (this.#holder(key) !== token) return false;
    this.#locks.set(key, { token: `${FAILURE_PREFIX}${note}`, expiresAt: performance.now() + ttlMs });
    return true;
  }

  async leaseEpoch(): Promise<number> {
    return this.#epoch;
  }

  /** The key was deleted or invalidated: a lease on it is void. */
  drop(key: string): void {
    this.#locks.delete(key);
  }

  /** A tag was invalidated: every lease taken before is void (as with Redis: docs/leases.md). */
  dropAll(): void {
    this.#epoch++;
    this.#locks.clear();
  }
}

import type { L2Entry } from '../l2/envelope.js';
import type { FillOptions, L2Hit, L2Peek } from '../l2/store.js';
import type { FillWaiters } from './fill-waiters.js';
import { newToken } from './lease-token.js';

/**
 * Stampede protection across nodes: one holder of a key's lock loads (or, for
 * a lease, is told to load), everyone else waits for its fill.
 *
 * - The lock is `SET <lock> <token> NX PX <ttl>` in the value's slot; only
 *   its holder releases it (Lua compare-and-delete), and the holder's value
 *   is stored by a Lua script that checks the token still holds the lock, so
 *   a holder whose lock expired and was taken over cannot overwrite the newer
 *   value (fencing).
 * - A waiter sleeps until the key is noticed (the fill's bus message, or a
 *   fill on this node) or its poll interval passes (doubling from pollMs to
 *   maxPollMs), then peeks at value and lock in one round trip: a usable
 *   value ends the wait; no value and no lock means the holder died or gave
 *   up, and the waiter tries the lock itself (a take-over: SET NX lets
 *   exactly one waiter win). A wait never outlives its deadline.
 */

/** What the lock protocol needs from the L2 (RedisL2Store; LocalLocks on a node without one). */
export interface LockStore {
  tryLock(key: string, token: string, ttlMs: number): Promise<boolean>;
  unlock(key: string, token: string): Promise<boolean>;
  fill(key: string, token: string, entry: L2Entry, ttlMs: number, options?: FillOptions): Promise<boolean>;
  peek(key: string): Promise<L2Peek>;
  leaseEpoch(): Promise<number>;
}

/** What happened, for counters (strata_lock_events_total{event}). */
export type LockEvent = 'acquired' | 'waited' | 'takeover' | 'lost';

export interface StampedeDeps {
  readonly store: LockStore;
  readonly waiters: FillWaiters;
  /** First poll interval of a waiter, ms; it doubles up to maxPollMs. */
  readonly pollMs: number;
  readonly maxPollMs: number;
  count(event: LockEvent): void;
}

/** The end of a wait for someone else's fill. */
export type WaitOutcome =
  /** A value (fresh enough for the caller) is there. */
  | { readonly kind: 'filled'; readonly hit: L2Hit }
  /** Nobody holds the lock and there is no usable value: the caller may take the lock. */
  | { readonly kind: 'free' }
  | { readonly kind: 'timeout' };

/**
 * Waits until key holds a value `usable` accepts, its lock is free, or the
 * deadline (performance.now() ms) passes.
 */
export async function waitForFill(deps: StampedeDeps, key: string, deadlineMs: number, usable: (hit: L2Hit) => boolean): Promise<WaitOutcome> {
  let delay = deps.pollMs;
  for (;;) {
    const remaining = deadlineMs - performance.now();
    if (remaining <= 0) return { kind: 'timeout' };
    await deps.waiters.wait(key, Math.min(delay, remaining));
    const peek = await deps.store.peek(key);
    if (peek.hit !== null && usable(peek.hit)) return { kind: 'filled', hit: peek.hit };
    if (!peek.locked) return { kind: 'free' };
    delay = Math.min(delay * 2, deps.maxPollMs);
  }
}

/** The end of a load under the lock. */
export type LockedLoad<T> =
  /** This caller held the lock and ran `produce`; its result. */
  | { readonly kind: 'produced'; readonly result: T }
  /** Another holder filled the key while this caller waited. */
  | { readonly kind: 'filled'; readonly hit: L2Hit }
  | { readonly kind: 'timeout' };

/**
 * Runs `produce(token)` while holding key's lock, or waits for the holder's
 * fill (taking the lock over when it is released without one). `produce`
 * must release the lock or fill under it (LockStore.fill releases it).
 */
export async function loadUnderLock<T>(
  deps: StampedeDeps,
  key: string,
  lockTtlMs: number,
  deadlineMs: number,
  usable: (hit: L2Hit) => boolean,
  produce: (token: string) => Promise<T>,
): Promise<LockedLoad<T>> {
  let waited = false;
  for (;;) {
    const token = newToken(0);
    if (await deps.store.tryLock(key, token, lockTtlMs)) {
      deps.count(waited ? 'takeover' : 'acquired');
      return { kind: 'produced', result: await produce(token) };
    }
    if (!waited) deps.count('waited');
    waited = true;
    const outcome = await waitForFill(deps, key, deadlineMs, usable);
    if (outcome.kind !== 'free') return outcome;
  }
}

/** The end of a lease request. */
export type LeaseOutcome =
  /** This caller holds the lease: it loads from its own source and fills with PUT + the token. */
  { readonly kind: 'leased'; readonly token: string } | { readonly kind: 'filled'; readonly hit: L2Hit } | { readonly kind: 'timeout' };

/**
 * A lease on key for a cache-aside client (memcached leases, "Scaling
 * Memcache at Facebook", NSDI 2013): the lock of loadUnderLock held for
 * leaseMs by a client instead of by this node. One caller in the cluster gets
 * it; the others wait for the fill until waitDeadlineMs, and one of them gets
 * the lease in turn if it is released or expires unfilled.
 */
export async function leaseOrWait(
  deps: StampedeDeps,
  key: string,
  leaseMs: number,
  waitDeadlineMs: number,
  usable: (hit: L2Hit) => boolean,
): Promise<LeaseOutcome> {
  let waited = false;
  for (;;) {
    const token = newToken(await deps.store.leaseEpoch());
    if (await deps.store.tryLock(key, token, leaseMs)) {
      deps.count(waited ? 'takeover' : 'acquired');
      return { kind: 'leased', token };
    }
    if (!waited) deps.count('waited');
    waited = true;
    const outcome = await waitForFill(deps, key, waitDeadlineMs, usable);
    if (outcome.kind !== 'free') return outcome;
  }
}

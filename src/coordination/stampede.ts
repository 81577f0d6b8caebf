import type { L2Hit, L2Peek, L2Store } from '../l2/store.js';
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
 *   exactly one waiter win). A holder whose load failed leaves a short
 *   failure note in the lock's place, so that its waiters (and the readers
 *   of the next moment) answer the error instead of each loading again.
 *   A wait never outlives its deadline.
 */

/** What the lock protocol needs from the L2 (RedisL2Store; LocalLocks on a node without one). */
export type LockStore = Pick<L2Store, 'tryLock' | 'lockUnlessFresh' | 'unlock' | 'fill' | 'peek' | 'failed' | 'leaseEpoch'>;

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

/** What a look at a key (a lock attempt that failed, or a poll) says a waiter should do. */
type Seen =
  | { readonly kind: 'filled'; readonly hit: L2Hit }
  | { readonly kind: 'failed'; readonly note: string }
  | { readonly kind: 'free' }
  | { readonly kind: 'held' };

function seen(peek: L2Peek): Seen {
  // A fresh value (fresh by its writer's clock, as the lock script judges it).
  if (peek.hit !== null && Date.now() < peek.hit.entry.expiresMs) return { kind: 'filled', hit: peek.hit };
  if (peek.failure !== null) return { kind: 'failed', note: peek.failure };
  return peek.locked ? { kind: 'held' } : { kind: 'free' };
}

/** The end of a wait for someone else's fill. */
export type WaitOutcome =
  /** A fresh value is there. */
  | { readonly kind: 'filled'; readonly hit: L2Hit }
  /** Nobody holds the lock and there is no fresh value: the caller may try the lock. */
  | { readonly kind: 'free' }
  /** The holder's load failed, and left this note (L2Store.failed). */
  | { readonly kind: 'failed'; readonly note: string }
  | { readonly kind: 'timeout' };

/** Waits until key holds a fresh value, its lock is free, or the deadline (performance.now() ms) passes. */
export async function waitForFill(deps: StampedeDeps, key: string, deadlineMs: number): Promise<WaitOutcome> {
  let delay = deps.pollMs;
  for (;;) {
    const remaining = deadlineMs - performance.now();
    if (remaining <= 0) return { kind: 'timeout' };
    await deps.waiters.wait(key, Math.min(delay, remaining));
    const now = seen(await deps.store.peek(key));
    if (now.kind !== 'held') return now;
    delay = Math.min(delay * 2, deps.maxPollMs);
  }
}

/** The end of a load under the lock. */
export type LockedLoad<T> =
  /** This caller held the lock and ran `produce`; its result. */
  | { readonly kind: 'produced'; readonly result: T }
  /** Another holder filled the key (before or while this caller waited). */
  | { readonly kind: 'filled'; readonly hit: L2Hit }
  /** The holder's load failed (its note says how). */
  | { readonly kind: 'failed'; readonly note: string }
  | { readonly kind: 'timeout' };

/**
 * Takes key's lock unless a fresh value is there (atomically), or waits for
 * the holder's fill, taking the lock over when it is released without one.
 */
async function lockOrWait(
  deps: StampedeDeps,
  key: string,
  ttlMs: number,
  deadlineMs: number,
  token: () => Promise<string>,
): Promise<{ readonly kind: 'locked'; readonly token: string } | Exclude<WaitOutcome, { kind: 'free' }>> {
  let waited = false;
  for (;;) {
    const t = await token();
    const attempt = await deps.store.lockUnlessFresh(key, t, ttlMs);
    if (attempt.locked) {
      deps.count(waited ? 'takeover' : 'acquired');
      return { kind: 'locked', token: t };
    }
    const now = seen(attempt.peek);
    if (now.kind === 'filled' || now.kind === 'failed') return now;
    if (now.kind === 'held') {
      if (!waited) deps.count('waited');
      waited = true;
      const outcome = await waitForFill(deps, key, deadlineMs);
      if (outcome.kind !== 'free') return outcome;
    }
    if (performance.now() >= deadlineMs) return { kind: 'timeout' };
  }
}

/**
 * Runs `produce(token)` while holding key's lock, or waits for the holder's
 * fill (taking the lock over when it is released without one). `produce`
 * must release the lock, fill under it (LockStore.fill releases it), or
 * leave a failure note.
 */
export async function loadUnderLock<T>(
  deps: StampedeDeps,
  key: string,
  lockTtlMs: number,
  deadlineMs: number,
  produce: (token: string) => Promise<T>,
): Promise<LockedLoad<T>> {
  const outcome = await lockOrWait(deps, key, lockTtlMs, deadlineMs, async () => newToken(0));
  if (outcome.kind !== 'locked') return outcome;
  return { kind: 'produced', result: await produce(outcome.token) };
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
 * the lease in turn if it is released or expires unfilled. With `waitFirst`
 * the caller knows the lock is held (another reader on its shard got the
 * lease) and waits before it tries.
 */
export async function leaseOrWait(deps: StampedeDeps, key: string, leaseMs: number, waitDeadlineMs: number, waitFirst = false): Promise<LeaseOutcome> {
  if (waitFirst) {
    const first = await waitForFill(deps, key, waitDeadlineMs);
    if (first.kind === 'filled') return first;
    if (first.kind !== 'free') return { kind: 'timeout' };
  }
  const outcome = await lockOrWait(deps, key, leaseMs, waitDeadlineMs, async () => newToken(await deps.store.leaseEpoch()));
  if (outcome.kind === 'locked') return { kind: 'leased', token: outcome.token };
  // Leases leave no failure notes; one seen here is a load's: the key is not a lease's to fill.
  if (outcome.kind === 'failed') return { kind: 'timeout' };
  return outcome;
}

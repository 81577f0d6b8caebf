import { describe, expect, it } from 'vitest';
import { FillWaiters } from '../../src/coordination/fill-waiters.js';
import { newToken, tokenEpoch } from '../../src/coordination/lease-token.js';
import { LocalLocks } from '../../src/coordination/local-locks.js';
import { SingleFlight } from '../../src/coordination/single-flight.js';
import { type LockEvent, type LockedLoad, leaseOrWait, loadUnderLock, type StampedeDeps } from '../../src/coordination/stampede.js';
import { earlyWindowMs, refreshEarly } from '../../src/coordination/xfetch.js';
import type { L2Entry } from '../../src/l2/envelope.js';
import type { L2Hit } from '../../src/l2/store.js';
import { textEntry } from '../helpers/entries.js';

/** One turn of the event loop: every microtask queued before it (a woken waiter's peek of LocalLocks, say) has run. */
const turn = () => new Promise<'pending'>((r) => setImmediate(() => r('pending')));

/** A deferred value the test settles when it chooses. */
function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

const entry = textEntry;

/**
 * Two "nodes" sharing one lock store (as two nodes share Redis), each with its own waiters;
 * `node()` makes more. A long pollMs leaves a waiter to be woken by notices alone.
 */
function cluster(pollMs = 5, maxPollMs = 20) {
  const values = new Map<string, L2Entry>();
  const store = new LocalLocks({
    read: (key) => {
      const e = values.get(key);
      return e === undefined ? null : ({ entry: e, ttlMs: e.staleUntilMs - Date.now() } satisfies L2Hit);
    },
    store: (key, e) => {
      values.set(key, e);
    },
  });
  const events: LockEvent[] = [];
  const node = (): StampedeDeps & { waiters: FillWaiters } => ({ store, waiters: new FillWaiters(), pollMs, maxPollMs, count: (e) => events.push(e) });
  return { store, values, events, node, a: node(), b: node() };
}

describe('single-flight', () => {
  it('shares one run among concurrent callers of a key, and forgets it once it settles', async () => {
    const flights = new SingleFlight<string>();
    const gate = deferred<string>();
    let runs = 0;
    const start = () => {
      runs++;
      return gate.promise;
    };
    const first = flights.run('k', start);
    const second = flights.run('k', start);
    expect([first.joined, second.joined, runs, flights.has('k')]).toEqual([false, true, 1, true]);
    gate.resolve('v');
    expect(await Promise.all([first.promise, second.promise])).toEqual(['v', 'v']);
    expect(flights.has('k')).toBe(false);
    const failing = flights.run('k', () => Promise.reject(new Error('origin down')));
    await expect(failing.promise).rejects.toThrow('origin down');
    expect(flights.size).toBe(0);
  });
});

describe('XFetch', () => {
  it('refreshes early with the probability the formula gives, never with β = 0 or no load time', () => {
    const expiry = 10_000;
    // −ln(1 − 0.5) ≈ 0.693: with δ = 100 and β = 1 a read fires from 69.3 ms before expiry on.
    expect(refreshEarly(expiry - 80, expiry, 100, 1, () => 0.5)).toBe(false);
    expect(refreshEarly(expiry - 60, expiry, 100, 1, () => 0.5)).toBe(true);
    // β scales the window; a tiny random number (a long tail draw) fires from far out.
    expect(refreshEarly(expiry - 120, expiry, 100, 2, () => 0.5)).toBe(true);
    expect(refreshEarly(expiry - 900, expiry, 100, 1, () => 0.9999)).toBe(true);
    expect(refreshEarly(expiry - 1, expiry, 100, 0, () => 0.99)).toBe(false);
    expect(refreshEarly(expiry - 1, expiry, 0, 1, () => 0.99)).toBe(false);
    expect(refreshEarly(expiry + 1, expiry, 100, 1, () => 0)).toBe(true);
    expect(earlyWindowMs(100, 1)).toBe(400);
    expect(earlyWindowMs(100, 0)).toBe(0);
  });
});

describe('lease tokens', () => {
  it('carry their epoch and are unguessable', () => {
    const token = newToken(42);
    expect(token).toMatch(/^42\.[0-9a-f]{32}$/);
    expect(tokenEpoch(token)).toBe(42);
    expect(newToken(42)).not.toBe(token);
    for (const bad of ['', '42', '42.xyz', 'x.00000000000000000000000000000000', '!failed 500 boom']) expect(tokenEpoch(bad)).toBeNull();
  });
});

describe('fill waiters', () => {
  it('wake on a notice of their key, or when their time is up', async () => {
    const waiters = new FillWaiters();
    let woke = false;
    const wait = waiters.wait('k', 60_000).then(() => {
      woke = true;
    });
    const other = waiters.wait('other', 1);
    waiters.notice('nope');
    await other;
    expect(woke).toBe(false);
    waiters.notice('k');
    await wait;
    expect(woke).toBe(true);
    expect(waiters.keys).toBe(0);
  });
});

describe('the lock protocol (over the in-memory store a node without an L2 uses)', () => {
  it('one holder loads; a waiter on the other node gets its fill, woken by a notice', async () => {
    // Polls a minute apart and a deadline a minute away: nothing but the notice can end the wait during the test.
    const { a, b, events } = cluster(60_000, 60_000);
    const load = deferred<void>();
    const holder = loadUnderLock(a, 'k', 5000, performance.now() + 5000, async (token) => {
      await load.promise;
      await a.store.fill('k', token, entry('loaded'), 60_000);
      return 'produced';
    });
    const waiter = loadUnderLock(b, 'k', 5000, performance.now() + 60_000, async () => 'produced twice');
    await new Promise((r) => setImmediate(r));
    load.resolve();
    expect(await holder).toEqual({ kind: 'produced', result: 'produced' });
    // The fill alone (LocalLocks does not notice) leaves the waiter asleep.
    expect(await Promise.race([waiter, turn()])).toBe('pending');
    expect(b.waiters.keys).toBe(1);
    b.waiters.notice('k');
    // Woken, the waiter peeks (microtasks only) and is done before the next turn of the event loop.
    const outcome = await Promise.race([waiter, turn()]);
    expect(outcome).not.toBe('pending');
    expect((outcome as LockedLoad<string>).kind).toBe('filled');
    expect(new TextDecoder().decode((outcome as { hit: L2Hit }).hit.entry.value)).toBe('loaded');
    expect(events).toEqual(['acquired', 'waited']);
    expect(b.waiters.keys).toBe(0);
  });

  it('a fresh value already there is answered without taking the lock', async () => {
    const { a, values } = cluster();
    values.set('k', entry('there'));
    const outcome = await loadUnderLock(a, 'k', 5000, performance.now() + 1000, async () => 'should not run');
    expect(outcome.kind).toBe('filled');
  });

  it('a holder that never fills: its lock expires and exactly one waiter takes over; the late holder is fenced off', async () => {
    // Waiters wake on notices only, so the test wakes all of them at once, once the lock has expired.
    const { a, store, events, values, node } = cluster(60_000, 60_000);
    let lateToken = '';
    await loadUnderLock(a, 'k', 30, performance.now() + 1000, async (token) => {
      lateToken = token; // dies without filling
    });
    const taken = deferred<void>();
    const release = deferred<void>();
    let produced = 0;
    const nodes = [node(), node(), node()];
    const waiters = nodes.map((n) =>
      loadUnderLock(n, 'k', 5000, performance.now() + 60_000, async (token) => {
        produced++;
        taken.resolve();
        await release.promise;
        await n.store.fill('k', token, entry('newer'), 60_000);
        for (const other of nodes) other.waiters.notice('k'); // as the bus tells every node
        return 'took over';
      }),
    );
    await turn();
    expect(events).toEqual(['acquired', 'waited', 'waited', 'waited']);
    while ((await store.peek('k')).locked) await new Promise((r) => setTimeout(r, 5));
    // Every waiter sees the lock free in the same moment and tries to take it.
    for (const n of nodes) n.waiters.notice('k');
    await taken.promise;
    await turn(); // the others have tried the lock, lost, and wait again
    release.resolve();
    const outcomes = await Promise.all(waiters);
    expect(produced).toBe(1);
    expect(outcomes.filter((o) => o.kind === 'produced')).toEqual([{ kind: 'produced', result: 'took over' }]);
    const others = outcomes.filter((o) => o.kind !== 'produced');
    expect(others.map((o) => o.kind)).toEqual(['filled', 'filled']);
    for (const o of others) expect(new TextDecoder().decode((o as { hit: L2Hit }).hit.entry.value)).toBe('newer');
    expect(events.filter((e) => e === 'takeover')).toHaveLength(1);
    expect(events).toEqual(['acquired', 'waited', 'waited', 'waited', 'takeover']);
    expect(await a.store.fill('k', lateToken, entry('older'), 60_000)).toBe(false);
    expect(new TextDecoder().decode(values.get('k')?.value)).toBe('newer');
  });

  it('a failed load leaves a note: waiters (and the next readers) get the failure instead of loading again', async () => {
    const { a, b } = cluster();
    const fail = deferred<void>();
    const holder = loadUnderLock(a, 'k', 5000, performance.now() + 5000, async (token) => {
      await fail.promise;
      await a.store.failed('k', token, '500 the origin answered 500', 1000);
      return 'failed';
    });
    const waiter = loadUnderLock(b, 'k', 5000, performance.now() + 5000, async () => 'loaded again');
    fail.resolve();
    await holder;
    expect(await waiter).toEqual({ kind: 'failed', note: '500 the origin answered 500' });
    expect(await loadUnderLock(b, 'k', 5000, performance.now() + 5000, async () => 'loaded again')).toEqual({
      kind: 'failed',
      note: '500 the origin answered 500',
    });
  });

  it('a wait never outlives its deadline', async () => {
    const { a, b } = cluster();
    await a.store.tryLock('k', newToken(0), 60_000);
    expect(await loadUnderLock(b, 'k', 5000, performance.now() + 30, async () => 'x')).toEqual({ kind: 'timeout' });
  });

  it('leases: one caller gets the lease; a tag invalidation since its epoch voids the fill', async () => {
    const { a, b, store, values } = cluster();
    const lease = await leaseOrWait(a, 'k', 5000, performance.now() + 1000);
    expect(lease.kind).toBe('leased');
    expect((await leaseOrWait(b, 'k', 5000, performance.now() + 30)).kind).toBe('timeout');
    const token = (lease as { token: string }).token;
    store.dropAll();
    expect(await store.leaseEpoch()).toBe(1);
    // dropAll also cleared the lock: take it again with the same token, so that only the epoch can refuse the fill.
    expect(await store.tryLock('k', token, 5000)).toBe(true);
    expect(await store.fill('k', token, entry('late'), 60_000, { epoch: tokenEpoch(token) as number })).toBe(false);
    expect(values.has('k')).toBe(false);
    // Control: the same token and lock, with the epoch of now, fills.
    expect(await store.tryLock('k', token, 5000)).toBe(true);
    expect(await store.fill('k', token, entry('current'), 60_000, { epoch: await store.leaseEpoch() })).toBe(true);
    expect(new TextDecoder().decode(values.get('k')?.value)).toBe('current');
    values.delete('k');
    const next = await leaseOrWait(b, 'k', 5000, performance.now() + 1000);
    expect(next.kind).toBe('leased');
    expect(tokenEpoch((next as { token: string }).token)).toBe(1);
  });
});

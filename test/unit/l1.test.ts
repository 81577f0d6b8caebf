import { describe, expect, it } from 'vitest';
import { hashKey } from '../../src/hash.js';
import { ExpiryWheel } from '../../src/l1/expiry-wheel.js';
import { FrequencySketch } from '../../src/l1/frequency-sketch.js';
import { entrySize, type L1Entry, L1Partition, ownedEntry, plainMeta } from '../../src/l1/partition.js';

function entry(bytes: number, tags: string[] | null = null): L1Entry {
  return { ...plainMeta(0, 0, tags), value: new Uint8Array(bytes), head: new Uint8Array(10) };
}

function partition(maxBytes: number) {
  let clock = 1000;
  const seen = { evicted: 0, expired: 0 };
  const l1 = new L1Partition({
    maxBytes,
    now: () => clock,
    events: { evicted: (n) => void (seen.evicted += n), expired: (n) => void (seen.expired += n) },
  });
  return { l1, seen, advance: (ms: number) => void (clock += ms) };
}

describe('L1 partition', () => {
  it('keeps its expiry notes bounded by what it holds, however many keys pass through', () => {
    const { l1, advance } = partition(entrySize('k-00000', entry(100)) * 50);
    for (let i = 0; i < 20_000; i++) l1.set(`k-${String(i).padStart(5, '0')}`, entry(100), 3_600_000);
    expect(l1.items).toBe(50);
    // Without compaction the wheel held a note for each of the 20,000 keys until their hour was up.
    expect(l1.expiryNotes).toBeLessThanOrEqual(2 * 50 + 1024);
    // The notes kept still expire what is held.
    advance(3_600_000 + 1000);
    l1.purgeExpired();
    expect(l1.items).toBe(0);
  });

  it('tidies its notes a few at a time on writes, never in one pass over all of them', () => {
    const wheel = new ExpiryWheel(0);
    for (let i = 0; i < 10_000; i++) wheel.add(`k${i}`, 3_600_000 + i);
    let looked = 0;
    const dropped = wheel.tidy(() => {
      looked++;
      return false;
    }, 32);
    expect(looked).toBe(32);
    expect(dropped).toBe(32);
    expect(wheel.size).toBe(10_000 - 32);
    // Notes that still stand for their entry are kept, whichever pass finds them.
    const other = new ExpiryWheel(0);
    for (let i = 0; i < 1000; i++) other.add(`k${i}`, 60_000 + 100 * i);
    while (other.tidy((key) => key.endsWith('0'), 64) > 0);
    expect(other.size).toBe(100);
  });

  it('keeps the note of a key set again, and expires the key by it', () => {
    const { l1, advance } = partition(entrySize('k-00000', entry(100)) * 50);
    for (let i = 0; i < 2000; i++) l1.set('k-00000', entry(100), 60_000 + i);
    expect(l1.expiryNotes).toBeLessThanOrEqual(2 * 1 + 1024);
    advance(60_000 + 2000 + 1000);
    l1.purgeExpired();
    expect(l1.items).toBe(0);
  });

  it('gives an entry a buffer of its own: a value that is a view into a larger buffer is copied out', () => {
    const socketBuffer = new Uint8Array(64 * 1024).fill(7);
    const view = socketBuffer.subarray(1000, 1100);
    const e = ownedEntry(new Uint8Array([1, 2, 3]), view, plainMeta(0, 0));
    expect(e.value.buffer).not.toBe(socketBuffer.buffer);
    expect(e.value.buffer.byteLength).toBe(103);
    expect(e.head.buffer).toBe(e.value.buffer);
    expect([...e.head]).toEqual([1, 2, 3]);
    expect(e.value).toEqual(view);
    // A large value that already owns its buffer (a PUT body) is kept, not copied.
    const body = new Uint8Array(8192).fill(9);
    expect(ownedEntry(new Uint8Array(3), body, plainMeta(0, 0)).value).toBe(body);
  });

  it('stays within its byte budget, evicting least recently used first and counting it', () => {
    const size = entrySize('k0', entry(1000));
    const { l1, seen } = partition(size * 3);
    l1.set('k0', entry(1000), 60_000);
    l1.set('k1', entry(1000), 60_000);
    l1.set('k2', entry(1000), 60_000);
    l1.get('k0'); // k1 is now least recently used
    l1.set('k3', entry(1000), 60_000);
    expect(l1.get('k1')).toBeUndefined();
    expect(l1.get('k0')).toBeDefined();
    expect(seen.evicted).toBe(1);
    expect(l1.items).toBe(3);
    expect(l1.bytes).toBeLessThanOrEqual(size * 3);
  });

  it('refuses a value larger than the whole partition', () => {
    const { l1 } = partition(2000);
    expect(l1.set('big', entry(5000), 1000)).toBe(false);
    expect(l1.items).toBe(0);
  });

  it('expires entries after their TTL (fake clock) and counts expirations', () => {
    const { l1, seen, advance } = partition(1 << 20);
    l1.set('short', entry(10), 1000);
    l1.set('long', entry(10), 60_000);
    advance(999);
    expect(l1.get('short')).toBeDefined();
    advance(2);
    expect(l1.get('short')).toBeUndefined();
    expect(seen.expired).toBe(1);
    advance(60_000);
    l1.purgeExpired();
    expect(l1.items).toBe(0);
    expect(seen.expired).toBe(2);
  });

  it('deletes by key and by tag', () => {
    const { l1 } = partition(1 << 20);
    l1.set('a', entry(1, ['red']), 60_000);
    l1.set('b', entry(1, ['red', 'blue']), 60_000);
    l1.set('c', entry(1, ['blue']), 60_000);
    l1.set('d', entry(1), 60_000);
    expect(l1.delete('d')).toBe(true);
    expect(l1.delete('d')).toBe(false);
    expect(l1.deleteTagged(new Set(['red']))).toBe(2);
    expect(l1.get('c')).toBeDefined();
    expect(l1.items).toBe(1);
  });
});

describe('L1 expiry sweep', () => {
  it('drops only entries whose TTL ended, counting each once, and spares keys set again with a longer TTL', () => {
    const { l1, seen, advance } = partition(1 << 24);
    for (let i = 0; i < 100; i++) l1.set(`short${i}`, entry(1), 1000);
    for (let i = 0; i < 100; i++) l1.set(`long${i}`, entry(1), 60_000);
    l1.set('renewed', entry(1), 1000);
    l1.set('renewed', entry(1), 60_000);
    advance(1500);
    l1.purgeExpired();
    expect(seen.expired).toBe(100);
    expect(l1.items).toBe(101);
    expect(l1.get('renewed')).toBeDefined();
    l1.purgeExpired();
    expect(seen.expired).toBe(100);
  });

  it('sweeps at most `limit` keys per call and carries the rest over', () => {
    const { l1, seen, advance } = partition(1 << 24);
    for (let i = 0; i < 50; i++) l1.set(`k${i}`, entry(1), 1000);
    advance(2000);
    l1.purgeExpired(20);
    expect(seen.expired).toBe(20);
    l1.purgeExpired(20);
    l1.purgeExpired(20);
    expect(seen.expired).toBe(50);
    expect(l1.items).toBe(0);
  });
});

describe('L1 tag index', () => {
  it('follows replacement, deletion, eviction and expiry, so a tag names exactly its live entries', () => {
    const size = entrySize('k0', entry(1000, ['t']));
    const { l1, advance } = partition(size * 3);
    l1.set('a', entry(10, ['red']), 60_000);
    l1.set('a', entry(10, ['blue']), 60_000); // replaced: no longer red
    expect(l1.deleteTagged(new Set(['red']))).toBe(0);
    expect(l1.get('a')).toBeDefined();
    l1.set('b', entry(10, ['blue', 'green']), 1000);
    advance(1001);
    // b expired: not counted, but its tags are cleaned up when it goes.
    expect(l1.deleteTagged(new Set(['blue']))).toBe(1);
    expect(l1.tagCount).toBe(0);
    for (let i = 0; i < 10; i++) l1.set(`e${i}`, entry(1000, ['bulk']), 60_000); // evicts most of them
    const live = l1.items;
    expect(live).toBeLessThanOrEqual(3);
    expect(l1.deleteTagged(new Set(['bulk']))).toBe(live);
    expect(l1.items).toBe(0);
    expect(l1.tagCount).toBe(0);
  });
});

describe('frequency sketch', () => {
  it('ranks keys by how often they were added, and forgets old counts by halving', () => {
    const sketch = new FrequencySketch(1024);
    for (let i = 0; i < 12; i++) sketch.add(hashKey('hot'));
    for (let i = 0; i < 3; i++) sketch.add(hashKey('warm'));
    expect(sketch.estimate(hashKey('hot'))).toBe(12);
    expect(sketch.estimate(hashKey('warm'))).toBeGreaterThanOrEqual(3);
    expect(sketch.estimate(hashKey('warm'))).toBeLessThan(12);
    // Counters saturate at 15.
    for (let i = 0; i < 20; i++) sketch.add(hashKey('hot'));
    expect(sketch.estimate(hashKey('hot'))).toBe(15);
    // 10 × width additions of other keys halve every counter (possibly more than once).
    for (let i = 0; i < 10 * 1024; i++) sketch.add(hashKey(`noise${i % 5000}`));
    expect(sketch.estimate(hashKey('hot'))).toBeLessThanOrEqual(8);
  });
});

describe('L1 admission (TinyLFU)', () => {
  function full(admission: 'lru' | 'tinylfu') {
    const size = entrySize('k0', entry(1000));
    const rejected = { n: 0 };
    const l1 = new L1Partition({ maxBytes: size * 3, admission, events: { evicted() {}, expired() {}, rejected: () => void rejected.n++ } });
    for (const key of ['k0', 'k1', 'k2']) {
      l1.admit(key, entry(1000), 60_000);
      for (let i = 0; i < 5; i++) l1.get(key);
    }
    return { l1, rejected };
  }

  it('keeps a value asked for less often than the entry it would evict out, and counts it', () => {
    const { l1, rejected } = full('tinylfu');
    l1.get('once');
    expect(l1.admit('once', entry(1000), 60_000)).toBe(false);
    expect(l1.get('once')).toBeUndefined();
    expect(l1.items).toBe(3);
    expect(rejected.n).toBe(1);
    // Asked for often enough, it gets in and the least recently used entry goes.
    for (let i = 0; i < 10; i++) l1.get('popular');
    expect(l1.admit('popular', entry(1000), 60_000)).toBe(true);
    expect(l1.get('popular')).toBeDefined();
  });

  it('always replaces a key it holds, and admits everything with lru', () => {
    const { l1 } = full('tinylfu');
    const replacement = entry(1000);
    expect(l1.admit('k1', replacement, 60_000)).toBe(true);
    expect(l1.get('k1')).toBe(replacement);
    const lru = full('lru').l1;
    expect(lru.admit('once', entry(1000), 60_000)).toBe(true);
    expect(lru.get('once')).toBeDefined();
  });
});

import { describe, expect, it } from 'vitest';
import { Counters } from '../../src/counters/counters.js';
import { HIST_BUCKETS } from '../../src/counters/layout.js';
import { HotKeys, SAMPLE_EVERY } from '../../src/l1/hot-keys.js';
import { quantileSeconds } from '../../src/metrics/stats.js';

/** A small deterministic PRNG (mulberry32), so the streams are the same on every run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('HotKeys (space-saving over a sample of the reads)', () => {
  it('finds the heavy hitters of a skewed stream, in order, among 100,000 other keys', () => {
    const hot = new HotKeys();
    const next = random(7);
    const reads = 200_000;
    for (let i = 0; i < reads; i++) {
      const r = next();
      hot.read(r < 0.3 ? 'a' : r < 0.5 ? 'b' : r < 0.6 ? 'c' : `cold:${Math.floor(next() * 100_000)}`);
    }
    const top = hot.top(3);
    expect(top.map((k) => k.key)).toEqual(['a', 'b', 'c']);
    // Estimates are sampled counts × SAMPLE_EVERY: within a few percent of the true reads for keys this frequent.
    expect(top[0]?.estimate).toBeGreaterThan(0.27 * reads);
    expect(top[0]?.estimate).toBeLessThan(0.33 * reads);
    expect(top[0]?.estimate ?? 0).toBeGreaterThan(top[1]?.estimate ?? 0);
  });

  it('sees keys read in a fixed cycle (an mget of 4, a client going round 4 keys) and weighs a touch as the reads it stands for', () => {
    const hot = new HotKeys();
    for (let i = 0; i < 40_000; i++) hot.read(['a', 'b', 'c', 'd'][i % 4] as string);
    const cycle = hot.top(4);
    expect(cycle.map((k) => k.key).sort()).toEqual(['a', 'b', 'c', 'd']);
    for (const k of cycle) expect(k.estimate).toBeGreaterThan(0.8 * 10_000);
    // 2,000 touches standing for 8 reads each outrank 10,000 plain reads.
    for (let i = 0; i < 2000; i++) hot.read('touched', 8);
    expect(hot.top(1)[0]?.key).toBe('touched');
  });

  it('holds at most its capacity, and a key never counted is not listed', () => {
    const hot = new HotKeys(8);
    for (let i = 0; i < 10_000; i++) hot.read(`k${i}`);
    expect(hot.top(100).length).toBeLessThanOrEqual(8);
    expect(hot.top(100).every((k) => k.estimate % SAMPLE_EVERY === 0 && k.error <= k.estimate)).toBe(true);
    expect(new HotKeys().top(5)).toEqual([]);
  });

  it('forgets old popularity: a key no longer read falls out', () => {
    const hot = new HotKeys(4);
    for (let i = 0; i < 40_000; i++) hot.read('old');
    expect(hot.top(1)[0]?.key).toBe('old');
    // Sixteen decay periods of reads spread over eight other keys.
    const next = random(11);
    for (let i = 0; i < 16 * 65_536 * SAMPLE_EVERY; i++) hot.read(`new:${Math.floor(next() * 8)}`);
    const keys = hot.top(4).map((k) => k.key);
    expect(keys).not.toContain('old');
    expect(keys).toHaveLength(4);
  });
});

describe('hot keys board in the shared counters', () => {
  it('round-trips what a shard publishes; long keys are cut; only what fits is kept, as valid JSON', () => {
    const counters = new Counters(2);
    expect(counters.hotKeys(0)).toEqual([]);
    counters.publishHotKeys(1, [
      { key: 'user:1', estimate: 40, error: 4 },
      { key: 'ключ "quoted"', estimate: 8, error: 0 },
    ]);
    expect(counters.hotKeys(1)).toEqual([
      { key: 'user:1', estimate: 40, error: 4 },
      { key: 'ключ "quoted"', estimate: 8, error: 0 },
    ]);
    expect(counters.hotKeys(0)).toEqual([]);
    const long = 'x'.repeat(500);
    counters.publishHotKeys(
      0,
      Array.from({ length: 100 }, (_, i) => ({ key: `${long}${i}`, estimate: 100 - i, error: 0 })),
    );
    const shown = counters.hotKeys(0);
    expect(shown.length).toBeGreaterThan(5);
    expect(shown.length).toBeLessThan(100);
    expect(shown[0]).toEqual({ key: `${'x'.repeat(200)}…`, estimate: 100, error: 0 });
  });

  it('a board left mid-write by a dead worker is readable again after its replacement publishes', () => {
    const counters = new Counters(1);
    counters.publishHotKeys(0, [{ key: 'a', estimate: 4, error: 0 }]);
    // What a worker killed between its two sequence stores leaves: an odd sequence word.
    const words = new Int32Array(counters.buffer, counters.layout.hotKeysBase * 8, 2);
    Atomics.add(words, 0, 1);
    expect(counters.hotKeys(0)).toEqual([]);
    counters.publishHotKeys(0, [{ key: 'b', estimate: 8, error: 0 }]);
    expect(counters.hotKeys(0)).toEqual([{ key: 'b', estimate: 8, error: 0 }]);
  });
});

describe('quantileSeconds (power-of-two buckets)', () => {
  const empty = () => new Array<number>(HIST_BUCKETS + 1).fill(0);
  it('interpolates within the bucket that holds the rank', () => {
    const buckets = empty();
    buckets[10] = 100; // (512 µs, 1024 µs]
    expect(quantileSeconds(buckets, 0.5)).toBeCloseTo(768e-6, 9);
    expect(quantileSeconds(buckets, 1)).toBeCloseTo(1024e-6, 9);
    buckets[3] = 100; // (4 µs, 8 µs]
    expect(quantileSeconds(buckets, 0.25)).toBeCloseTo(6e-6, 9);
    expect(quantileSeconds(buckets, 0.99)).toBeGreaterThan(512e-6);
  });
  it('is 0 without observations, and the last bound for observations past it', () => {
    expect(quantileSeconds(empty(), 0.99)).toBe(0);
    const buckets = empty();
    buckets[HIST_BUCKETS] = 1;
    expect(quantileSeconds(buckets, 0.5)).toBeCloseTo(2 ** (HIST_BUCKETS - 1) / 1e6, 9);
  });
});

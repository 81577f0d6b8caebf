import { describe, expect, it } from 'vitest';
import { bestSplit, defaultSplit, type RequestCost, redisCeiling, throughput } from '../../native-bench/projection.js';

const us = (front: number, shard: number, other: number): RequestCost => ({ front: front / 1e6, shard: shard / 1e6, other: other / 1e6 });

describe('bench:cores projection (native-bench/projection.ts)', () => {
  it('on one core it is the measured requests per CPU-second: one front and one shard share the core', () => {
    const split = bestSplit(us(20, 30, 10), 1);
    expect(split).toMatchObject({ cores: 1, fronts: 1, shards: 1, limit: 'cores' });
    expect(split.requestsPerSecond).toBeCloseTo(1e6 / 60, 6);
  });

  it('hits served by the fronts alone: every core but one is a front, one shard', () => {
    const split = bestSplit(us(7, 0, 0.5), 16);
    expect(split).toMatchObject({ fronts: 15, shards: 1, limit: 'cores' });
    expect(split.requestsPerSecond).toBeCloseTo(16 / 7.5e-6, 0);
  });

  it('a request that costs a front and a shard alike splits the cores evenly', () => {
    const split = bestSplit(us(10, 10, 0), 16);
    expect(split).toMatchObject({ fronts: 8, shards: 8 });
    expect(split.requestsPerSecond).toBeCloseTo(16 / 20e-6, 0);
  });

  it('the slower role gets more threads, in proportion to its cost', () => {
    const split = bestSplit(us(10, 30, 0), 64);
    expect(split).toMatchObject({ fronts: 16, shards: 48 });
    expect(split.requestsPerSecond).toBeCloseTo(1.6e6, 0);
  });

  it('never more threads than cores, never above N / total cost, never below the single front + shard', () => {
    const cost = us(13, 41, 17);
    for (let cores = 1; cores <= 64; cores++) {
      const split = bestSplit(cost, cores);
      if (cores > 1) expect(split.fronts + split.shards).toBeLessThanOrEqual(cores);
      expect(split.requestsPerSecond).toBeLessThanOrEqual(cores / 71e-6 + 1e-6);
      expect(split.requestsPerSecond).toBeGreaterThanOrEqual(throughput(cost, cores, 1, 1).requestsPerSecond);
    }
  });

  it('names the binding term', () => {
    expect(throughput(us(10, 1, 0), 64, 2, 2).limit).toBe('fronts');
    expect(throughput(us(1, 10, 0), 64, 2, 2).limit).toBe('shards');
    expect(throughput(us(10, 10, 10), 4, 2, 2).limit).toBe('cores');
  });

  it("the node's default split (round(0.6 N) fronts, N − 1 shards) serves hits with 60 % of the cores", () => {
    const hits = us(7, 0, 0.5);
    const split = defaultSplit(hits, 16);
    expect(split).toMatchObject({ fronts: 10, shards: 15, limit: 'fronts' });
    expect(split.requestsPerSecond).toBeCloseTo(10 / 7e-6, 0);
    // The best is bound by the cores: 16 / 7.5 µs.
    expect(split.requestsPerSecond / bestSplit(hits, 16).requestsPerSecond).toBeCloseTo(10 / 7 / (16 / 7.5), 3);
  });

  it('a load that does not reach Redis has no Redis ceiling', () => {
    expect(redisCeiling(0)).toBe(Number.POSITIVE_INFINITY);
    expect(redisCeiling(5e-6)).toBeCloseTo(200_000, 6);
  });
});

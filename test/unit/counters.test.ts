import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { allocateFrontCounters, bucketBoundSeconds, bucketOf, Counters, FrontCounters, FrontTotals } from '../../src/counters/counters.js';
import { HIST_BUCKETS, SHARD_SLOT, STATUS_LABELS } from '../../src/counters/layout.js';
import { ROOT } from '../helpers/node.js';

describe('histogram buckets', () => {
  it('puts a duration in the smallest bucket whose bound (2^i µs) holds it', () => {
    expect(bucketOf(0)).toBe(0);
    expect(bucketOf(1000)).toBe(0); // 1 µs
    expect(bucketOf(1001)).toBe(1); // just over 1 µs
    expect(bucketOf(2000)).toBe(1);
    expect(bucketOf(2001)).toBe(2);
    expect(bucketOf(1_000_000)).toBe(10); // 1 ms ≤ 1024 µs
    expect(bucketOf(1e12)).toBe(HIST_BUCKETS); // overflow
    expect(bucketBoundSeconds(10)).toBeCloseTo(0.001024);
  });
});

describe('shared counters', () => {
  it('a worker thread writes with Atomics and the main thread reads without a message', async () => {
    const counters = new Counters(2);
    const done = new SharedArrayBuffer(4);
    const script = `
      const { workerData } = require('node:worker_threads');
      import(${JSON.stringify(`${ROOT}dist/src/counters/counters.js`)}).then(({ Counters }) => {
        const c = new Counters(2, workerData.buffer);
        for (let i = 0; i < 100000; i++) c.incShard(1, ${SHARD_SLOT.L1_HITS});
        c.addShard(1, ${SHARD_SLOT.L1_GETS}, 123456);
        c.observeShard(1, 'get', 5000, 10);
        const flag = new Int32Array(workerData.done);
        Atomics.store(flag, 0, 1);
        Atomics.notify(flag, 0);
      });`;
    const worker = new Worker(script, { eval: true, workerData: { buffer: counters.buffer, done } });
    // Meanwhile this thread adds to the same slot: no update may be lost.
    for (let i = 0; i < 100000; i++) counters.incShard(1, SHARD_SLOT.L1_HITS);
    const flag = new Int32Array(done);
    const waited = Atomics.waitAsync(flag, 0, 0);
    if (waited.async) await waited.value;
    expect(counters.shard(1, SHARD_SLOT.L1_HITS)).toBe(200000);
    expect(counters.shard(1, SHARD_SLOT.L1_GETS)).toBe(123456);
    expect(counters.shard(0, SHARD_SLOT.L1_HITS)).toBe(0);
    expect(counters.total(SHARD_SLOT.L1_HITS)).toBe(200000);
    const h = counters.shardHistogram(1, 'get');
    expect(h.count).toBe(10);
    expect(h.buckets[bucketOf(5000)]).toBe(10);
    expect(h.sumSeconds).toBeCloseTo(50e-6);
    await worker.terminate();
  });

  it('gauges hold the last value stored and refuse a buffer of the wrong size', () => {
    const counters = new Counters(1);
    counters.setShard(0, SHARD_SLOT.L1_ITEMS, 42);
    counters.setShard(0, SHARD_SLOT.L1_ITEMS, 7);
    expect(counters.shard(0, SHARD_SLOT.L1_ITEMS)).toBe(7);
    expect(() => new Counters(2, counters.buffer)).toThrow(RangeError);
  });

  it('front counters count requests by route and status code with a duration histogram, summed over the fronts', () => {
    const buffer = allocateFrontCounters(2, 3);
    const front = new FrontCounters(buffer, 0, 3);
    const other = new FrontCounters(buffer, 1, 3);
    const totals = new FrontTotals(buffer, 2, 3);
    front.countRequest('get', 200, 3000);
    front.countRequest('get', 404, 3000);
    front.countRequest('get', 503, 2e9);
    other.countRequest('get', 418, 1000);
    other.countRequest('get', 200, 1000);
    const at = (code: string) => STATUS_LABELS.indexOf(code as (typeof STATUS_LABELS)[number]);
    expect(totals.requests('get', at('200'))).toBe(2);
    expect(totals.requests('get', at('404'))).toBe(1);
    expect(totals.requests('get', at('503'))).toBe(1);
    expect(totals.requests('get', at('other'))).toBe(1);
    expect(totals.requests('put', at('200'))).toBe(0);
    const h = totals.routeHistogram('get');
    expect(h.count).toBe(5);
    expect(h.buckets[bucketOf(3000)]).toBe(2);
    expect(h.buckets[bucketOf(1000)]).toBe(2);
    expect(h.sumSeconds).toBeCloseTo(2.000008);
    expect(totals.front(0).requests).toBe(3);
    expect(totals.front(1).requests).toBe(2);
  });

  it('each front keeps its own gauges; a replacement resets what the dead front had in flight', () => {
    const buffer = allocateFrontCounters(2, 2);
    const front = new FrontCounters(buffer, 1, 2);
    const totals = new FrontTotals(buffer, 2, 2);
    front.started(1234);
    front.begin();
    front.begin();
    front.end();
    front.setLoop(0.25, 0.002);
    expect(totals.active).toBe(1);
    expect(totals.front(1)).toMatchObject({ starts: 1, threadId: 1234, utilization: 0.25, loopDelayP99Seconds: 0.002, requestsInFlight: 1 });
    expect(totals.front(0)).toMatchObject({ starts: 0, requestsInFlight: 0 });
    new FrontCounters(buffer, 1, 2).started(5678);
    expect(totals.active).toBe(0);
    expect(totals.front(1)).toMatchObject({ starts: 2, threadId: 5678, utilization: 0, loopDelayP99Seconds: 0 });
    expect(() => new FrontCounters(buffer, 2, 2)).toThrow(RangeError);
  });

  it("the fronts' hot-index hits count as their shards' L1 gets and hits", () => {
    const counters = new Counters(2);
    const buffer = allocateFrontCounters(2, 2);
    counters.includeFronts(new FrontTotals(buffer, 2, 2));
    counters.addShard(1, SHARD_SLOT.L1_GETS, 10);
    counters.addShard(1, SHARD_SLOT.L1_HITS, 4);
    new FrontCounters(buffer, 0, 2).hotHit(1);
    const second = new FrontCounters(buffer, 1, 2);
    second.hotHit(1);
    second.hotHit(0);
    expect(counters.shard(1, SHARD_SLOT.L1_GETS)).toBe(12);
    expect(counters.shard(1, SHARD_SLOT.L1_HITS)).toBe(6);
    expect(counters.shard(0, SHARD_SLOT.L1_HITS)).toBe(1);
    expect(counters.shard(1, SHARD_SLOT.L1_MISSES)).toBe(0);
    expect(counters.total(SHARD_SLOT.L1_GETS)).toBe(13);
  });
});

import { describe, expect, it } from 'vitest';
import { Counters } from '../../src/counters/counters.js';
import { SHARD_SLOT } from '../../src/counters/layout.js';
import { hashKey } from '../../src/hash.js';
import { allocateHotIndex, HotIndexReader, HotIndexWriter, hotIndexShape } from '../../src/l1/hot-index.js';
import { type Batch, BatchResult, OP, STATUS } from '../../src/shards/protocol.js';
import { Shard } from '../../src/shards/shard.js';

function setup(l1MaxBytes: number) {
  const shape = hotIndexShape(1024 * 1024);
  const buffer = allocateHotIndex(shape);
  const counters = new Counters(1);
  const sent: ArrayBuffer[] = [];
  const shard = new Shard({ index: 0, counters, l1MaxBytes, hot: new HotIndexWriter(buffer, shape) });
  const send = (answer: ArrayBuffer) => sent.push(answer);
  /** Runs a batch of L1-only ops and returns its one answer. */
  const run = (batch: Batch): BatchResult => {
    shard.run(batch, send);
    return new BatchResult(sent.pop() as ArrayBuffer, batch.ops.length);
  };
  return { shard, counters, run, reader: new HotIndexReader(buffer, shape) };
}

const put = (key: string, bytes: number): Batch => ({
  id: 1,
  sentAtMs: performance.timeOrigin + performance.now(),
  ops: [OP.PUT],
  keys: [key],
  args: [{ kind: 'put', value: new Uint8Array(bytes), contentType: 'application/octet-stream', ttlMs: 60_000, swrMs: 0, tags: null, lease: null, keep: true }],
});
const get = (key: string): Batch => ({ id: 2, sentAtMs: performance.timeOrigin + performance.now(), ops: [OP.GET], keys: [key], args: null });

describe('shard', () => {
  it('publishes an entry on its first hit and withdraws it when L1 evicts it', () => {
    const { run, counters, reader } = setup(64 * 1024);
    run(put('victim', 1000));
    expect(reader.lookup('victim', hashKey('victim'), Date.now())).toBe(false);
    expect(run(get('victim')).status(0)).toBe(STATUS.HIT);
    expect(reader.lookup('victim', hashKey('victim'), Date.now())).toBe(true);
    for (let i = 0; i < 100; i++) run(put(`filler${i}`, 1000));
    expect(counters.shard(0, SHARD_SLOT.L1_EVICTIONS)).toBeGreaterThan(0);
    expect(run(get('victim')).status(0)).toBe(STATUS.MISS);
    expect(reader.lookup('victim', hashKey('victim'), Date.now())).toBe(false);
  });

  it('answers a hit with its head block (x-cache: L1) and value, and counts gets, hits, misses, sets and deletes', () => {
    const { run, counters } = setup(1024 * 1024);
    run(put('a', 10));
    const result = run({
      id: 3,
      sentAtMs: performance.timeOrigin + performance.now(),
      ops: [OP.GET, OP.GET, OP.HEAD, OP.DELETE, OP.DELETE],
      keys: ['a', 'b', 'a', 'a', 'a'],
      args: null,
    });
    expect(new TextDecoder().decode(result.head(0))).toMatch(/^application\/octet-stream\r\netag: "[0-9a-f]{8}-a"\r\nx-cache: L1$/);
    expect(result.value(0)).toEqual(new Uint8Array(10));
    expect(result.status(1)).toBe(STATUS.MISS);
    expect(result.valueLength(2)).toBe(10);
    expect([result.status(3), result.arg(3), result.arg(4)]).toEqual([STATUS.DONE, 1, 0]);
    expect(counters.shard(0, SHARD_SLOT.L1_SETS)).toBe(1);
    expect(counters.shard(0, SHARD_SLOT.L1_GETS)).toBe(3);
    expect(counters.shard(0, SHARD_SLOT.L1_HITS)).toBe(2);
    expect(counters.shard(0, SHARD_SLOT.L1_MISSES)).toBe(1);
    expect(counters.shard(0, SHARD_SLOT.L1_DELETES)).toBe(1);
    expect(counters.shard(0, SHARD_SLOT.L1_ITEMS)).toBe(0);
    expect(counters.shardHistogram(0, 'get').count).toBe(3);
  });
});

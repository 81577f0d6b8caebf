import { describe, expect, it } from 'vitest';
import { Counters } from '../../src/counters/counters.js';
import { SHARD_SLOT } from '../../src/counters/layout.js';
import { allocateHotIndex, HotIndexReader, HotIndexWriter, hotIndexShape } from '../../src/l1/hot-index.js';
import { FIELD, FIELDS, OP, RESULT_PREFIX_BYTES, STATUS } from '../../src/shards/protocol.js';
import { hashKey } from '../../src/shards/route.js';
import { Shard } from '../../src/shards/shard.js';

function setup(l1MaxBytes: number) {
  const shape = hotIndexShape(1024 * 1024);
  const buffer = allocateHotIndex(shape);
  const counters = new Counters(1);
  const shard = new Shard(0, counters, l1MaxBytes, new HotIndexWriter(buffer, shape));
  return { shard, counters, reader: new HotIndexReader(buffer, shape) };
}

const put = (key: string, bytes: number) => ({
  id: 1,
  sentAtMs: performance.timeOrigin + performance.now(),
  ops: [OP.PUT],
  keys: [key],
  puts: [{ value: new Uint8Array(bytes), contentType: 'application/octet-stream', ttlMs: 60_000, tags: null }],
});
const get = (key: string) => ({ id: 2, sentAtMs: performance.timeOrigin + performance.now(), ops: [OP.GET], keys: [key], puts: null });
const status = (outcome: { now: ArrayBuffer | null }) => new Float64Array(outcome.now as ArrayBuffer, RESULT_PREFIX_BYTES, FIELDS)[FIELD.STATUS];

describe('shard', () => {
  it('publishes an entry on its first hit and withdraws it when L1 evicts it', () => {
    const { shard, counters, reader } = setup(64 * 1024);
    shard.run(put('victim', 1000));
    expect(reader.lookup('victim', hashKey('victim'), Date.now())).toBe(false);
    expect(status(shard.run(get('victim')))).toBe(STATUS.HIT);
    expect(reader.lookup('victim', hashKey('victim'), Date.now())).toBe(true);
    for (let i = 0; i < 100; i++) shard.run(put(`filler${i}`, 1000));
    expect(counters.shard(0, SHARD_SLOT.L1_EVICTIONS)).toBeGreaterThan(0);
    expect(status(shard.run(get('victim')))).toBe(STATUS.MISS);
    expect(reader.lookup('victim', hashKey('victim'), Date.now())).toBe(false);
  });

  it('counts gets, hits, misses, sets and deletes in its shared counters', () => {
    const { shard, counters } = setup(1024 * 1024);
    shard.run(put('a', 10));
    shard.run({
      id: 3,
      sentAtMs: performance.timeOrigin + performance.now(),
      ops: [OP.GET, OP.GET, OP.HEAD, OP.DELETE, OP.DELETE],
      keys: ['a', 'b', 'a', 'a', 'a'],
      puts: null,
    });
    expect(counters.shard(0, SHARD_SLOT.L1_SETS)).toBe(1);
    expect(counters.shard(0, SHARD_SLOT.L1_GETS)).toBe(3);
    expect(counters.shard(0, SHARD_SLOT.L1_HITS)).toBe(2);
    expect(counters.shard(0, SHARD_SLOT.L1_MISSES)).toBe(1);
    expect(counters.shard(0, SHARD_SLOT.L1_DELETES)).toBe(1);
    expect(counters.shard(0, SHARD_SLOT.L1_ITEMS)).toBe(0);
    expect(counters.shardHistogram(0, 'get').count).toBe(3);
  });
});

import { describe, expect, it } from 'vitest';
import { hashKey } from '../../src/hash.js';
import { shardOf } from '../../src/shards/route.js';

/** Reference FNV-1a 32 over UTF-8 bytes, written the obvious way. */
function reference(key: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(key, 'utf8')) h = Math.imul(h ^ byte, 0x01000193);
  return h >>> 0;
}

describe('key → shard routing', () => {
  it('hashKey is FNV-1a 32 of the UTF-8 bytes, for ASCII, 2-, 3- and 4-byte characters', () => {
    for (const key of ['a', 'user:42', 'é', 'ключ', '键值', '😀 emoji', 'mixed-é-键-😀', 'x'.repeat(512)]) {
      expect(hashKey(key)).toBe(reference(key));
    }
  });

  it('known vectors stay fixed (a change would move every key to another shard)', () => {
    expect(hashKey('')).toBe(0x811c9dc5);
    expect(hashKey('a')).toBe(0xe40c292c);
    expect(hashKey('foobar')).toBe(0xbf9cf968);
  });

  it('shardOf is stable, in range, and spreads keys evenly', () => {
    const shards = 7;
    const counts = new Array(shards).fill(0);
    for (let i = 0; i < 70_000; i++) {
      const s = shardOf(`key:${i}`, shards);
      expect(s).toBe(shardOf(`key:${i}`, shards));
      counts[s]++;
    }
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(600);
    expect(shardOf('anything', 1)).toBe(0);
  });
});

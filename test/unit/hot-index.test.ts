import { describe, expect, it } from 'vitest';
import { hashKey } from '../../src/hash.js';
import { allocateHotIndex, HotIndexReader, HotIndexWriter, hotIndexShape, revokeHotIndex } from '../../src/l1/hot-index.js';

const text = new TextEncoder();
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

function setup(arenaBytes = 64 * 1024) {
  const shape = hotIndexShape(arenaBytes);
  const buffer = allocateHotIndex(shape);
  return { shape, writer: new HotIndexWriter(buffer, shape), reader: new HotIndexReader(buffer, shape) };
}

function publish(writer: HotIndexWriter, key: string, value: string, expiresMs = 10_000, createdMs = 1) {
  writer.publish(key, hashKey(key), text.encode(`text/plain\r\netag: "${value}"`), text.encode(value), expiresMs, createdMs);
}

function read(reader: HotIndexReader, key: string, nowMs = 5): { head: string; value: string } | null {
  if (!reader.lookup(key, hashKey(key), nowMs)) return null;
  const { bytes, headAt, headLength, valueAt, valueLength } = reader;
  const hit = { head: decode(bytes.slice(headAt, headAt + headLength)), value: decode(bytes.slice(valueAt, valueAt + valueLength)) };
  reader.done();
  return hit;
}

describe('hot-read index', () => {
  it('keeps counting touches across the Int32 wrap of its ring counters', () => {
    const { writer, reader } = setup();
    publish(writer, 'w', 'v');
    // Start both ring counters just below 2^31 (they sit at the start of the buffer).
    const ints = new Int32Array(reader.bytes.buffer);
    ints[0] = 2 ** 31 - 2;
    ints[1] = 2 ** 31 - 2;
    let seen = 0;
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 8; i++) read(reader, 'w');
      writer.drainTouches(() => seen++);
    }
    expect(seen).toBe(4);
    expect(ints[0]).toBe(ints[1]);
  });

  it('finds what the writer published, with head block, value and created time', () => {
    const { writer, reader } = setup();
    publish(writer, 'user:1', 'alice', 10_000, 1234);
    publish(writer, 'ключ', 'unicode');
    expect(read(reader, 'user:1')).toEqual({ head: 'text/plain\r\netag: "alice"', value: 'alice' });
    expect(reader.createdMs).toBe(1234);
    expect(read(reader, 'ключ')?.value).toBe('unicode');
    expect(read(reader, 'user:2')).toBeNull();
  });

  it('never serves an unpublished, replaced or expired entry', () => {
    const { writer, reader } = setup();
    publish(writer, 'k', 'old', 100);
    publish(writer, 'k', 'new', 100);
    expect(read(reader, 'k')?.value).toBe('new');
    expect(read(reader, 'k', 100)).toBeNull(); // expires at 100
    writer.unpublish('k');
    expect(read(reader, 'k')).toBeNull();
    expect(writer.published).toBe(0);
  });

  it('distinguishes keys whose hashes collide on a slot', () => {
    const { writer, reader, shape } = setup();
    // Keys with the same slot but different full hashes, and a forged same-hash lookup.
    const keys: string[] = [];
    for (let i = 0; keys.length < 5; i++) if ((hashKey(`c${i}`) & (shape.slots - 1)) === 7) keys.push(`c${i}`);
    for (const k of keys) publish(writer, k, `v-${k}`);
    for (const k of keys) expect(read(reader, k)?.value).toBe(`v-${k}`);
    expect(reader.lookup('not-published', hashKey(keys[0] as string), 5)).toBe(false);
  });

  it('reclaims the oldest records when the arena wraps, unpublishing them first', () => {
    const { writer, reader, shape } = setup(64 * 1024);
    const value = 'x'.repeat(1000);
    const n = Math.ceil((shape.arenaBytes / 1000) * 3);
    for (let i = 0; i < n; i++) publish(writer, `w${i}`, `${i}:${value}`);
    let live = 0;
    for (let i = 0; i < n; i++) {
      const hit = read(reader, `w${i}`);
      if (hit !== null) {
        live++;
        expect(hit.value).toBe(`${i}:${value}`); // never another key's bytes
      }
    }
    expect(live).toBeGreaterThan(0);
    expect(live).toBe(writer.published);
    expect(live).toBeLessThan(shape.arenaBytes / 1000);
    expect(read(reader, `w${n - 1}`)).not.toBeNull(); // the newest survives
    expect(read(reader, 'w0')).toBeNull(); // the oldest was reclaimed
  });

  it('reports one front hit in eight to the writer', () => {
    const { writer, reader } = setup();
    publish(writer, 'a', '1');
    publish(writer, 'b', '2');
    for (let i = 0; i < 8; i++) read(reader, 'a');
    for (let i = 0; i < 8; i++) read(reader, 'b');
    const touched: string[] = [];
    writer.drainTouches((k) => touched.push(k));
    expect(touched).toEqual(['a', 'b']);
    writer.drainTouches((k) => touched.push(k));
    expect(touched).toHaveLength(2);
  });

  it('does not write over a withdrawn record while a read that may see it is open', () => {
    const { writer, reader, shape } = setup(64 * 1024);
    const big = 'y'.repeat(shape.arenaBytes / 20); // the helper's head block repeats the value
    publish(writer, 'held', big);
    expect(reader.lookup('held', hashKey('held'), 5)).toBe(true); // read open
    const at = reader.valueAt;
    writer.unpublish('held');
    // Enough publishing to wrap the ring over 'held': each attempt waits out the open read, then gives up.
    for (let i = 0; i < 25; i++) publish(writer, `other${i}`, big);
    expect(decode(reader.bytes.slice(at, at + big.length))).toBe(big);
    expect(writer.published).toBe(0);
    reader.done();
    publish(writer, 'after', big);
    expect(writer.published).toBe(1);
    expect(read(reader, 'after')?.value).toBe(big);
    expect(read(reader, 'held')).toBeNull();
  });

  it('has one read state and one touch ring per front: the writer waits for every front, and hears every front', () => {
    const shape = hotIndexShape(64 * 1024, 3);
    const buffer = allocateHotIndex(shape);
    const writer = new HotIndexWriter(buffer, shape);
    const fronts = [0, 1, 2].map((r) => new HotIndexReader(buffer, shape, r));
    const [first, second, third] = fronts as [HotIndexReader, HotIndexReader, HotIndexReader];
    publish(writer, 'a', '1');
    publish(writer, 'b', '2');
    for (let i = 0; i < 8; i++) read(first, 'a');
    for (let i = 0; i < 8; i++) read(third, 'b');
    const touched: string[] = [];
    writer.drainTouches((k) => touched.push(k));
    expect(touched.sort()).toEqual(['a', 'b']);

    // The third front holds a read open on a record the writer withdraws: nothing is written over it, whatever
    // the other fronts do, until that front closes its read.
    const big = 'y'.repeat(shape.arenaBytes / 20);
    publish(writer, 'held', big);
    expect(third.lookup('held', hashKey('held'), 5)).toBe(true);
    const at = third.valueAt;
    writer.unpublish('held');
    for (let i = 0; i < 25; i++) {
      read(first, 'a');
      read(second, 'b');
      publish(writer, `other${i}`, big);
    }
    expect(decode(third.bytes.slice(at, at + big.length))).toBe(big);
    third.done();
    publish(writer, 'after', big);
    for (const front of fronts) expect(read(front, 'after')?.value).toBe(big);
    expect(read(second, 'held')).toBeNull();
  });

  it('a replacement front starts with its read closed, whatever its dead predecessor left open', () => {
    const shape = hotIndexShape(64 * 1024, 2);
    const buffer = allocateHotIndex(shape);
    const writer = new HotIndexWriter(buffer, shape);
    const dying = new HotIndexReader(buffer, shape, 1);
    const big = 'z'.repeat(shape.arenaBytes / 20);
    publish(writer, 'k', big);
    expect(dying.lookup('k', hashKey('k'), 5)).toBe(true); // the thread dies here, its read open
    writer.unpublish('k');
    publish(writer, 'blocked', big);
    for (let i = 0; i < 25; i++) publish(writer, `x${i}`, big);
    expect(writer.published).toBeLessThan(25);
    const replacement = new HotIndexReader(buffer, shape, 1);
    // The writer paused after giving up; once the pause is over it publishes again.
    const until = performance.now() + 50;
    while (performance.now() < until);
    publish(writer, 'after', big);
    expect(read(replacement, 'after')?.value).toBe(big);
    expect(() => new HotIndexReader(buffer, shape, 2)).toThrow(RangeError);
  });

  it('a revoked index (its worker gone) serves nothing to any front, even one not told yet', () => {
    const shape = hotIndexShape(64 * 1024, 2);
    const buffer = allocateHotIndex(shape);
    const writer = new HotIndexWriter(buffer, shape);
    const fronts = [new HotIndexReader(buffer, shape, 0), new HotIndexReader(buffer, shape, 1)];
    publish(writer, 'k', 'old');
    for (const front of fronts) expect(read(front, 'k')?.value).toBe('old');
    revokeHotIndex(buffer, shape);
    for (const front of fronts) expect(read(front, 'k')).toBeNull();
  });
});

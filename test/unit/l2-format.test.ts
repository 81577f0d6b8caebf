import { describe, expect, it } from 'vitest';
import { decodeEnvelope, encodeEnvelope, PLAIN } from '../../src/l2/envelope.js';
import { escapeKey, lockKey, unescapeKey, valueKey } from '../../src/l2/keys.js';
import { crc16, slotOf } from '../../src/l2/slot.js';

describe('L2 key layout', () => {
  it('prefixes with the layout version and escapes braces and percent reversibly', () => {
    expect(valueKey('user:1')).toBe('strata:v1:k:user:1');
    for (const key of ['a{b}c', '{x}', '%7B', '100%', 'plain', 'ключ{}']) {
      const escaped = escapeKey(key);
      expect(escaped).not.toMatch(/[{}]/);
      expect(unescapeKey(escaped)).toBe(key);
    }
    expect(escapeKey('a{b}c')).toBe('a%7Bb%7Dc');
    expect(escapeKey('%7B')).not.toBe(escapeKey('{'));
  });

  it("puts a key's lock in its value's Cluster slot, whatever the key", () => {
    for (const key of ['user:1', 'a{b}c', '{x}', 'ключ', 'x'.repeat(512)]) {
      expect(lockKey(key)).toBe(`strata:v1:lock:{${valueKey(key)}}`);
      expect(slotOf(lockKey(key))).toBe(slotOf(valueKey(key)));
    }
  });
});

describe('L2 envelope', () => {
  it('round-trips value and metadata: freshness, stale window, load time, validators, negative', () => {
    const entry = {
      value: new Uint8Array([0, 1, 2, 255]),
      contentType: 'text/plain; charset=utf-8',
      etag: '"abcd-4"',
      createdMs: 1_790_000_000_123.5,
      expiresMs: 1_790_000_060_123.5,
      swrUntilMs: 1_790_000_070_123.5,
      staleUntilMs: 1_790_000_090_123.5,
      deltaMs: 51.25,
      negative: false,
      validators: { etag: 'W/"v7"', lastModified: 'Tue, 01 Dec 2026 10:00:00 GMT' },
      tags: ['red', 'ключ'],
    };
    expect(decodeEnvelope(encodeEnvelope(entry))).toEqual(entry);
    const bare = {
      ...PLAIN,
      value: new Uint8Array(0),
      contentType: 'application/octet-stream',
      etag: '"0-0"',
      createdMs: 0,
      expiresMs: 0,
      swrUntilMs: 0,
      staleUntilMs: 0,
      tags: null,
    };
    expect(decodeEnvelope(encodeEnvelope(bare))).toEqual(bare);
    const absent = { ...bare, negative: true, expiresMs: 5, swrUntilMs: 5, staleUntilMs: 5 };
    expect(decodeEnvelope(encodeEnvelope(absent))).toEqual(absent);
  });

  it('still reads version 2 envelopes (nodes not yet upgraded): never stale, no origin', () => {
    // u8 2 | u8 tags | u16 ct length | ct | u8 etag length | etag | f64 created | f64 expires | tags | value
    const v2 = Buffer.concat([
      Buffer.from([2, 1, 3, 0]),
      Buffer.from('x/y'),
      Buffer.from([3]),
      Buffer.from('"e"'),
      Buffer.from(new Float64Array([100, 200]).buffer),
      Buffer.from([1]),
      Buffer.from('t'),
      Buffer.from('hello'),
    ]);
    expect(decodeEnvelope(v2)).toEqual({
      ...PLAIN,
      value: new TextEncoder().encode('hello'),
      contentType: 'x/y',
      etag: '"e"',
      createdMs: 100,
      expiresMs: 200,
      swrUntilMs: 200,
      staleUntilMs: 200,
      tags: ['t'],
    });
  });

  it('refuses bytes that are not an envelope', () => {
    expect(() => decodeEnvelope(Buffer.from('hello, plain redis value'))).toThrow(/not a Strata L2 envelope/);
    const good = encodeEnvelope({
      ...PLAIN,
      value: new Uint8Array(1),
      contentType: 'x/y',
      etag: '"e"',
      createdMs: 1,
      expiresMs: 2,
      swrUntilMs: 2,
      staleUntilMs: 2,
      tags: ['t'],
    });
    expect(() => decodeEnvelope(good.subarray(0, 10))).toThrow(/not a Strata L2 envelope/);
  });
});

describe('cluster slots', () => {
  it('match what CLUSTER KEYSLOT answers (values taken from redis-server 7.0)', () => {
    expect(crc16(new TextEncoder().encode('123456789'))).toBe(0x31c3);
    const known: [string, number][] = [
      ['foo', 12182],
      ['bar', 5061],
      ['hello', 866],
      ['123456789', 12739],
      ['strata:v1:k:ключ', 9187],
      ['{user1000}.following', 3443],
    ];
    for (const [key, slot] of known) expect(slotOf(key)).toBe(slot);
    // A hash tag decides the slot; an empty one does not.
    expect(slotOf('{user1000}.followers')).toBe(slotOf('{user1000}.following'));
    expect(slotOf('{}foo')).toBe(crc16(new TextEncoder().encode('{}foo')) % 16384);
  });
});

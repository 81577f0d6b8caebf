import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { mix32, Ring, type RingMember } from '../../src/cluster/ring.js';
import { ROOT } from '../helpers/node.js';

const run = promisify(execFile);
/** SHA-256 of the owners of user:0 … user:19999 on n1…n5 with n2 weighing 3, as first computed. */
const OWNERS_SHA256 = '59d22083873b07d3926bcc5cb1d273c10009e661d4c0036222c515a15e977164';
const members = (...ids: string[]): RingMember[] => ids.map((id) => ({ id, weight: 1 }));
const keys = (n: number) => Array.from({ length: n }, (_, i) => `user:${i}`);

function owners(ring: Ring, list: readonly string[]): Map<string, string> {
  return new Map(list.map((k) => [k, ring.owner(k)]));
}

describe('the ring (rendezvous hashing)', () => {
  it('is the same ring whatever order the members come in, and says so in its fingerprint', () => {
    const a = new Ring(members('n1', 'n2', 'n3'));
    const b = new Ring(members('n3', 'n1', 'n2'));
    expect(a.fingerprint).toBe(b.fingerprint);
    expect([...owners(a, keys(2000))]).toEqual([...owners(b, keys(2000))]);
    expect(new Ring(members('n1', 'n2')).fingerprint).not.toBe(a.fingerprint);
    expect(new Ring([{ id: 'n1', weight: 2 }, ...members('n2', 'n3')]).fingerprint).not.toBe(a.fingerprint);
  });

  it('gives the same owners as it did when it was written (the typed client and older nodes must agree)', () => {
    // Fixed values: a change of the hash or the scoring would move keys between nodes of different versions.
    const ring = new Ring(members('n1', 'n2', 'n3'));
    expect(['a', 'b', 'user:1', 'user:2', 'ключ', '🙂'].map((k) => ring.owner(k))).toEqual(GOLDEN);
    expect(mix32(0)).toBe(0);
    expect(mix32(1)).toBe(0x514e28b7);
  });

  it('computes the same owners in another process, as when it was written', async () => {
    const script = `import('${ROOT}dist/src/cluster/ring.js').then(({ Ring }) => {
      const ring = new Ring(['n1','n2','n3','n4','n5'].map((id) => ({ id, weight: id === 'n2' ? 3 : 1 })));
      const h = require('node:crypto').createHash('sha256');
      for (let i = 0; i < 20000; i++) h.update(ring.owner('user:' + i) + ',');
      console.log(h.digest('hex'));
    })`;
    const { stdout } = await run(process.execPath, ['-e', script]);
    const ring = new Ring(['n1', 'n2', 'n3', 'n4', 'n5'].map((id) => ({ id, weight: id === 'n2' ? 3 : 1 })));
    const h = createHash('sha256');
    for (let i = 0; i < 20000; i++) h.update(`${ring.owner(`user:${i}`)},`);
    const here = h.digest('hex');
    expect(stdout.trim()).toBe(here);
    // Pinned: the same Node.js runs both sides, so only a fixed value catches a change of the hash or the weights.
    expect(here).toBe(OWNERS_SHA256);
  });

  it('spreads keys evenly, and by weight', () => {
    const list = keys(200_000);
    for (const n of [3, 10]) {
      const ring = new Ring(members(...Array.from({ length: n }, (_, i) => `node-${i}`)));
      const counts = new Map<string, number>();
      for (const k of list) counts.set(ring.owner(k), (counts.get(ring.owner(k)) ?? 0) + 1);
      expect(counts.size).toBe(n);
      const mean = list.length / n;
      // Binomial spread at 200k keys is under 1 %; 3 % leaves room and still catches a skewed hash.
      for (const c of counts.values()) expect(Math.abs(c / mean - 1)).toBeLessThan(0.03);
    }
    const weighted = new Ring([{ id: 'big', weight: 2 }, ...members('a', 'b')]);
    const big = list.filter((k) => weighted.owner(k) === 'big').length / list.length;
    expect(big).toBeGreaterThan(0.48);
    expect(big).toBeLessThan(0.52);
  });

  it('moves only the keys it must when a node joins or leaves, never between two that stay', () => {
    const list = keys(50_000);
    const three = owners(new Ring(members('n1', 'n2', 'n3')), list);
    const four = owners(new Ring(members('n1', 'n2', 'n3', 'n4')), list);
    let joined = 0;
    for (const k of list) {
      if (three.get(k) === four.get(k)) continue;
      expect(four.get(k)).toBe('n4');
      joined++;
    }
    expect(joined / list.length).toBeGreaterThan(0.23);
    expect(joined / list.length).toBeLessThan(0.27);
    const two = owners(new Ring(members('n1', 'n3')), list);
    for (const k of list) if (three.get(k) !== two.get(k)) expect(three.get(k)).toBe('n2');
  });

  it('refuses what is not a ring', () => {
    expect(() => new Ring([])).toThrow(/at least one member/);
    expect(() => new Ring(members('a', 'a'))).toThrow(/twice/);
    expect(() => new Ring([{ id: 'a', weight: 0 }])).toThrow(/weight/);
    expect(() => new Ring([{ id: 'a', weight: 1.5 }])).toThrow(/weight/);
    expect(() => new Ring([{ id: 'a', weight: 65 }])).toThrow(/weight/);
  });
});

const GOLDEN = ['n1', 'n1', 'n2', 'n3', 'n1', 'n3'];

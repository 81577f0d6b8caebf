/**
 * The ring: which node owns a key. Rendezvous (highest random weight)
 * hashing: every member gets a score for the key, the highest wins. Chosen
 * over a ketama ring of virtual nodes by measurement (native-bench/ring.ts,
 * docs/cluster.md): over 1M keys its fullest member is within 0.5 % of the
 * mean up to 10 members (1–2 % at 50) where 160 virtual nodes per member
 * leave 5–15 %, it moves exactly the keys it must when a member joins or
 * leaves, and it needs no table. A lookup costs one score per member (and
 * weight unit): cheaper than ketama's binary search up to about 10 members,
 * 1.5× dearer at 50, under 0.35 µs either way.
 *
 * Integer arithmetic only (Math.imul, shifts): every process and every
 * JavaScript runtime computes the same owners, so the nodes and the typed
 * client agree without talking.
 */
import { hashKey } from '../hash.js';

/** A node on the ring. */
export interface RingMember {
  /** Stable node id (the config's nodeId). */
  readonly id: string;
  /** Share of the keys relative to the others: a whole number, 1 by default. */
  readonly weight: number;
}

/** Largest weight of one member: a member with weight w costs w scores per lookup. */
export const MAX_WEIGHT = 64;

/** murmur3's 32-bit finalizer: every input bit moves every output bit. */
export function mix32(h: number): number {
  let x = h >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The seed of a member's w-th weight unit: the hash of its id and the unit's number. */
function seedOf(id: string, unit: number): number {
  return mix32(hashKey(`${id}\u0000${unit}`));
}

/** A key hash as the ring scores it (mixed once, so that FNV's weak low bits do not show). */
export function keyPoint(keyHash: number): number {
  return mix32(keyHash ^ 0x9e3779b9);
}

/**
 * An immutable ring over a set of members. Members are kept sorted by id, so
 * rings built from the same members in any order are the same ring (ties,
 * which need two equal 32-bit scores, go to the member first by id).
 */
export class Ring {
  readonly members: readonly RingMember[];
  /** A short digest of the members and weights: two nodes with the same fingerprint route every key alike. */
  readonly fingerprint: string;
  readonly #seeds: Uint32Array;
  /** For each seed, the index of its member in `members`. */
  readonly #owner: Uint16Array;

  constructor(members: readonly RingMember[]) {
    if (members.length === 0) throw new RangeError('a ring needs at least one member');
    if (members.length > 0xffff) throw new RangeError('a ring has at most 65535 members');
    const sorted = [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    for (let i = 0; i < sorted.length; i++) {
      const m = sorted[i] as RingMember;
      if (i > 0 && (sorted[i - 1] as RingMember).id === m.id) throw new RangeError(`member ${m.id} is on the ring twice`);
      if (!Number.isInteger(m.weight) || m.weight < 1 || m.weight > MAX_WEIGHT)
        throw new RangeError(`member ${m.id}: weight must be an integer in [1, ${MAX_WEIGHT}]`);
    }
    this.members = Object.freeze(sorted.map((m) => Object.freeze({ id: m.id, weight: m.weight })));
    const units = sorted.reduce((n, m) => n + m.weight, 0);
    this.#seeds = new Uint32Array(units);
    this.#owner = new Uint16Array(units);
    let at = 0;
    sorted.forEach((m, index) => {
      for (let unit = 0; unit < m.weight; unit++) {
        this.#seeds[at] = seedOf(m.id, unit);
        this.#owner[at++] = index;
      }
    });
    this.fingerprint = mix32(hashKey(this.members.map((m) => `${m.id}*${m.weight}`).join(',')))
      .toString(16)
      .padStart(8, '0');
  }

  /** The id of the member that owns `key`. */
  owner(key: string): string {
    return this.ownerOfHash(hashKey(key));
  }

  /** The owner of a key by its hashKey (the front has the hash already). */
  ownerOfHash(keyHash: number): string {
    const point = keyPoint(keyHash);
    const seeds = this.#seeds;
    let best = 0;
    let bestScore = -1;
    for (let i = 0; i < seeds.length; i++) {
      const score = mix32(point ^ (seeds[i] as number));
      if (score > bestScore) {
        bestScore = score;
        best = i;
      }
    }
    return (this.members[this.#owner[best] as number] as RingMember).id;
  }

  /** Whether `id` is on this ring. */
  has(id: string): boolean {
    return this.members.some((m) => m.id === id);
  }
}

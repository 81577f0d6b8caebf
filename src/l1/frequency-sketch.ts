/**
 * How often keys were asked for lately, approximately, in a fixed few bytes per
 * cached entry: a count-min sketch (4 rows of saturating 4-bit counters, kept
 * in bytes for speed) that halves every counter after `10 × width` additions,
 * so old popularity fades (TinyLFU, Einziger et al. 2017). An estimate never
 * undercounts between two halvings; it may overcount through collisions.
 */
export class FrequencySketch {
  readonly #rows: Uint8Array;
  readonly #mask: number;
  readonly #sampleSize: number;
  #additions = 0;

  /** `width` counters per row, rounded up to a power of two (at least 64). */
  constructor(width: number) {
    let w = 64;
    while (w < width && w < 1 << 24) w <<= 1;
    this.#mask = w - 1;
    this.#rows = new Uint8Array(4 * w);
    this.#sampleSize = 10 * w;
  }

  /** Bytes the sketch holds. */
  get bytes(): number {
    return this.#rows.byteLength;
  }

  /** Counts one access to the key whose 32-bit hash is `hash`. */
  add(hash: number): void {
    const rows = this.#rows;
    const w = this.#mask + 1;
    for (let i = 0; i < 4; i++) {
      const at = i * w + this.#index(hash, i);
      if ((rows[at] as number) < 15) rows[at] = (rows[at] as number) + 1;
    }
    if (++this.#additions >= this.#sampleSize) this.#halve();
  }

  /** The key's estimated recent accesses, 0..15. */
  estimate(hash: number): number {
    const rows = this.#rows;
    const w = this.#mask + 1;
    let min = 15;
    for (let i = 0; i < 4; i++) {
      const v = rows[i * w + this.#index(hash, i)] as number;
      if (v < min) min = v;
    }
    return min;
  }

  /** One independent-enough index per row from one hash (re-mixed with a per-row odd constant). */
  #index(hash: number, row: number): number {
    let x = Math.imul(hash ^ (SEEDS[row] as number), 0x9e3779b1);
    x ^= x >>> 15;
    x = Math.imul(x, 0x2c1b3c6d);
    x ^= x >>> 12;
    return x & this.#mask;
  }

  #halve(): void {
    const rows = this.#rows;
    for (let i = 0; i < rows.length; i++) rows[i] = (rows[i] as number) >>> 1;
    this.#additions = Math.floor(this.#additions / 2);
  }
}

const SEEDS = [0x85ebca6b, 0xc2b2ae35, 0x27d4eb2f, 0x165667b1];

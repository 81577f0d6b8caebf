/**
 * The most read keys of one L1 partition lately, approximately: the
 * space-saving algorithm (Metwally, Agrawal, El Abbadi 2005) over a sample of
 * the reads. It keeps `capacity` counters; a key not counted takes the
 * smallest counter's place and starts from its count (remembered as the
 * error bound), so a key read more than 1/capacity of the sampled reads is
 * always held, and no estimate undercounts the sample (the sample itself is
 * random: an estimate is the sampled count × SAMPLE_EVERY). Reads the shard
 * does not see are not counted: a front's hot-index hits reach it as one
 * touch in TOUCH_EVERY (weighted so), and not at all while its touch ring is
 * full. Every counter is halved after
 * DECAY_SAMPLES samples, so "lately" means the last few hundred thousand
 * reads. The admission sketch (frequency-sketch.ts) cannot do this: it holds
 * no keys and saturates at 15.
 *
 * Cost per read: one counter and a branch; a Map update on one read in SAMPLE_EVERY.
 */
import type { HotKey } from '../counters/counters.js';

/** One read in this many is counted (a power of two). */
export const SAMPLE_EVERY = 4;
const DECAY_SAMPLES = 65_536;

interface Counter {
  count: number;
  error: number;
}

export class HotKeys {
  readonly #capacity: number;
  readonly #counters = new Map<string, Counter>();
  /** xorshift32 state (any non-zero seed). */
  #random = 0x9e3779b9;
  #samples = 0;

  constructor(capacity = 32) {
    this.#capacity = capacity;
  }

  /**
   * Counts `weight` reads of key (a touch from a front's hot-read index stands
   * for several). One call in SAMPLE_EVERY is taken, at random (xorshift32):
   * a counter would be blind to keys read in a cycle of its length (a client
   * asking for the same 4 keys in turn, an mget of 4).
   */
  read(key: string, weight = 1): void {
    let x = this.#random;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#random = x;
    if ((x & (SAMPLE_EVERY - 1)) !== 0) return;
    const counters = this.#counters;
    const held = counters.get(key);
    if (held !== undefined) held.count += weight;
    else if (counters.size < this.#capacity) counters.set(key, { count: weight, error: 0 });
    else {
      let minKey = '';
      let min: Counter | undefined;
      for (const [k, c] of counters) {
        if (min === undefined || c.count < min.count) {
          min = c;
          minKey = k;
        }
      }
      const floor = (min as Counter).count;
      counters.delete(minKey);
      counters.set(key, { count: floor + weight, error: floor });
    }
    if (++this.#samples >= DECAY_SAMPLES) this.#decay();
  }

  /** The `n` keys with the highest estimates, highest first. */
  top(n: number): HotKey[] {
    return [...this.#counters]
      .sort((a, b) => b[1].count - a[1].count)
      .slice(0, n)
      .map(([key, c]) => ({ key, estimate: c.count * SAMPLE_EVERY, error: c.error * SAMPLE_EVERY }));
  }

  #decay(): void {
    this.#samples = 0;
    for (const [key, c] of this.#counters) {
      c.count >>>= 1;
      c.error >>>= 1;
      if (c.count === 0) this.#counters.delete(key);
    }
  }
}

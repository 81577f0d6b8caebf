/**
 * The most read keys of one L1 partition lately, approximately: the
 * space-saving algorithm (Metwally, Agrawal, El Abbadi 2005) over a sample of
 * the reads. It keeps `capacity` counters; a key not counted takes the
 * smallest counter's place and starts from its count (remembered as the
 * error bound), so a key read more than 1/capacity of the sampled reads is
 * always held, and no estimate undercounts. Every counter is halved after
 * DECAY_SAMPLES samples, so "lately" means the last few hundred thousand
 * reads. The admission sketch (frequency-sketch.ts) cannot do this: it holds
 * no keys and saturates at 15.
 *
 * Cost per read: one counter and a branch; a Map update on one read in SAMPLE_EVERY.
 */
import type { HotKey } from '../counters/counters.js';

/** One read in this many is counted. */
export const SAMPLE_EVERY = 4;
const DECAY_SAMPLES = 65_536;

interface Counter {
  count: number;
  error: number;
}

export class HotKeys {
  readonly #capacity: number;
  readonly #counters = new Map<string, Counter>();
  #reads = 0;
  #samples = 0;

  constructor(capacity = 32) {
    this.#capacity = capacity;
  }

  /** Counts one read of key (a sample of them). */
  read(key: string): void {
    if (++this.#reads < SAMPLE_EVERY) return;
    this.#reads = 0;
    const counters = this.#counters;
    const held = counters.get(key);
    if (held !== undefined) held.count++;
    else if (counters.size < this.#capacity) counters.set(key, { count: 1, error: 0 });
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
      counters.set(key, { count: floor + 1, error: floor });
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

/**
 * Origin requests in flight from this node, per origin rule, in shared memory
 * so that every shard worker counts against the same `maxConcurrent`: one
 * Int32 per rule (index as in the config's `origins`), changed only with
 * Atomics. A request takes a slot before it starts and gives it back when it
 * ends, whatever the outcome.
 */
export class OriginSlots {
  readonly buffer: SharedArrayBuffer;
  readonly #inFlight: Int32Array;

  /** New slots for `rules` rules, or a view over slots another thread allocated. */
  constructor(rules: number, buffer?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(Math.max(1, rules) * 4);
    this.#inFlight = new Int32Array(this.buffer);
  }

  /** Takes a slot of rule i unless `max` are taken; true when taken. */
  tryTake(i: number, max: number): boolean {
    const a = this.#inFlight;
    for (;;) {
      const now = Atomics.load(a, i);
      if (now >= max) return false;
      if (Atomics.compareExchange(a, i, now, now + 1) === now) return true;
    }
  }

  /** Gives back a slot taken with tryTake. */
  give(i: number): void {
    Atomics.sub(this.#inFlight, i, 1);
  }

  /** Requests in flight to rule i's origin. */
  inFlight(i: number): number {
    return Atomics.load(this.#inFlight, i);
  }
}

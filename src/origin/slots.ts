/**
 * Origin requests in flight from this node, per origin rule, in shared memory
 * so that every shard worker counts against the same `maxConcurrent`: one
 * Int32 per rule (index as in the config's `origins`), changed only with
 * Atomics. A request takes a slot before it starts and gives it back when it
 * ends, whatever the outcome.
 *
 * A worker that crashes or is replaced mid-request never gives its slots
 * back, so each worker also counts what it holds in a row of its own; when
 * the worker goes, its row is retired (retire()): what it held returns to the
 * totals at once, and whatever it still gives later is ignored.
 */
export class OriginSlots {
  readonly buffer: SharedArrayBuffer;
  readonly #total: Int32Array;
  /** This worker's row (what it holds, per rule; RETIRED once it is gone), or null on the main thread. */
  readonly #mine: Int32Array | null;

  /**
   * New slots for `rules` rules, or a view over slots another thread
   * allocated; `row` (see newRow) is the calling worker's own.
   */
  constructor(rules: number, buffer?: SharedArrayBuffer, row?: SharedArrayBuffer) {
    this.buffer = buffer ?? new SharedArrayBuffer(Math.max(1, rules) * 4);
    this.#total = new Int32Array(this.buffer);
    this.#mine = row === undefined ? null : new Int32Array(row);
  }

  /** A row for one worker's slots. */
  static newRow(rules: number): SharedArrayBuffer {
    return new SharedArrayBuffer(Math.max(1, rules) * 4);
  }

  /** Takes a slot of rule i unless `max` are taken; true when taken. */
  tryTake(i: number, max: number): boolean {
    const total = this.#total;
    for (;;) {
      const now = Atomics.load(total, i);
      if (now >= max) return false;
      if (Atomics.compareExchange(total, i, now, now + 1) === now) break;
    }
    const mine = this.#mine;
    if (mine === null) return true;
    for (;;) {
      const held = Atomics.load(mine, i);
      if (held === RETIRED) {
        // Retired meanwhile: the slot was not this worker's to take.
        Atomics.sub(total, i, 1);
        return false;
      }
      if (Atomics.compareExchange(mine, i, held, held + 1) === held) return true;
    }
  }

  /** Gives back a slot taken with tryTake. */
  give(i: number): void {
    const mine = this.#mine;
    if (mine !== null) {
      for (;;) {
        const held = Atomics.load(mine, i);
        // Retired: retire() has already given back everything this worker held.
        if (held === RETIRED) return;
        if (Atomics.compareExchange(mine, i, held, held - 1) === held) break;
      }
    }
    Atomics.sub(this.#total, i, 1);
  }

  /**
   * Gives back what a worker (its row) still holds, and makes its later
   * takes fail and gives do nothing. Safe while that worker still runs: each
   * slot is given back once, by whichever of the two gets to the row first.
   */
  retire(row: SharedArrayBuffer): void {
    const r = new Int32Array(row);
    for (let i = 0; i < r.length && i < this.#total.length; i++) {
      const held = Atomics.exchange(r, i, RETIRED);
      if (held > 0) Atomics.sub(this.#total, i, held);
    }
  }

  /** Requests in flight to rule i's origin. */
  inFlight(i: number): number {
    return Atomics.load(this.#total, i);
  }
}

/** A retired row's mark (a count is never negative). */
const RETIRED = -1;

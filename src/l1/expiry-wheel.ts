/**
 * Which keys come due for expiry when: keys grouped by the time slot in which
 * their TTL ends, so that sweeping costs what expires, not what is stored
 * (lru-cache's purgeStale() walks every entry: ~300 ms for a million).
 *
 * A key is added once per set; a slot may therefore name keys that were set
 * again since with another TTL, or deleted or evicted. The sweeper checks
 * each key against the cache and drops what is really stale. So that those
 * stale notes cannot pile up (a write rate times the TTL of keys long gone
 * from the cache), the owner tidies the wheel a few notes at a time while it
 * holds more notes than it needs (see tidy()): never one pass over all of
 * them, which took 1.5 s for a million keys and stalled the shard.
 */
export class ExpiryWheel {
  readonly #slotMs: number;
  /** Notes by slot: each key with the expiry time it was noted with (parallel arrays). */
  readonly #slots = new Map<number, { keys: string[]; at: number[] }>();
  /** Every slot before this one has been handed out. */
  #next: number;
  /** Notes held (stale ones included). */
  #size = 0;
  /** The slots tidy() has still to visit in its current pass, last first; and where it is in the last one. */
  #tidyQueue: number[] = [];
  #tidyAt = 0;

  constructor(nowMs: number, slotMs = 250) {
    this.#slotMs = slotMs;
    this.#next = Math.floor(nowMs / slotMs);
  }

  /** Notes that key's TTL ends at expiresAtMs (same clock as nowMs). */
  add(key: string, expiresAtMs: number): void {
    // Rounded up: a key is handed out only once its slot has fully passed.
    const slot = Math.max(this.#next, Math.ceil(expiresAtMs / this.#slotMs));
    const notes = this.#slots.get(slot);
    if (notes === undefined) this.#slots.set(slot, { keys: [key], at: [expiresAtMs] });
    else {
      notes.keys.push(key);
      notes.at.push(expiresAtMs);
    }
    this.#size++;
  }

  /**
   * Drops notes that `current` says no longer stand for a cached entry's
   * expiry (the key is gone, or was set again since), looking at `budget`
   * notes at most; the next call goes on where this one stopped, and a pass
   * over every slot starts again when one ends. Returns how many it dropped.
   */
  tidy(current: (key: string, expiresAtMs: number) => boolean, budget: number): number {
    let dropped = 0;
    while (budget > 0) {
      if (this.#tidyQueue.length === 0) {
        this.#tidyQueue = [...this.#slots.keys()];
        this.#tidyAt = 0;
        if (this.#tidyQueue.length === 0) break;
      }
      const slot = this.#tidyQueue[this.#tidyQueue.length - 1] as number;
      const notes = this.#slots.get(slot);
      if (notes === undefined || this.#tidyAt >= notes.keys.length) {
        this.#tidyQueue.pop();
        this.#tidyAt = 0;
        if (notes !== undefined && notes.keys.length === 0) this.#slots.delete(slot);
        continue;
      }
      const { keys, at } = notes;
      while (budget > 0 && this.#tidyAt < keys.length) {
        budget--;
        const i = this.#tidyAt;
        if (current(keys[i] as string, at[i] as number)) {
          this.#tidyAt++;
          continue;
        }
        // Order within a slot does not matter: the last note takes this one's place.
        keys[i] = keys[keys.length - 1] as string;
        at[i] = at[at.length - 1] as number;
        keys.pop();
        at.pop();
        this.#size--;
        dropped++;
      }
    }
    return dropped;
  }

  /**
   * Hands the keys of every slot that has passed at nowMs to `check`, at most
   * `limit` of them; the rest stay for the next call (so one sweep cannot
   * stall the shard).
   */
  due(nowMs: number, check: (key: string) => void, limit = 10_000): number {
    const last = Math.floor(nowMs / this.#slotMs);
    let handed = 0;
    while (this.#next <= last && handed < limit) {
      const notes = this.#slots.get(this.#next);
      if (notes === undefined) {
        this.#next++;
        continue;
      }
      const { keys, at } = notes;
      while (keys.length > 0 && handed < limit) {
        at.pop();
        check(keys.pop() as string);
        handed++;
        this.#size--;
      }
      if (keys.length === 0) {
        this.#slots.delete(this.#next);
        this.#next++;
      }
    }
    return handed;
  }

  /** Keys noted and not yet handed out (stale duplicates included). */
  get size(): number {
    return this.#size;
  }
}

/**
 * Which keys come due for expiry when: keys grouped by the time slot in which
 * their TTL ends, so that sweeping costs what expires, not what is stored
 * (lru-cache's purgeStale() walks every entry: ~300 ms for a million).
 *
 * A key is added once per set; a slot may therefore name keys that were set
 * again since with another TTL, or deleted or evicted. The sweeper checks
 * each key against the cache and drops what is really stale. So that those
 * stale notes cannot pile up (a write rate times the TTL of keys long gone
 * from the cache), the owner compacts the wheel when it holds more notes
 * than it needs (see compact()).
 */
export class ExpiryWheel {
  readonly #slotMs: number;
  readonly #slots = new Map<number, string[]>();
  /** Every slot before this one has been handed out. */
  #next: number;
  /** Notes held (stale ones included). */
  #size = 0;

  constructor(nowMs: number, slotMs = 250) {
    this.#slotMs = slotMs;
    this.#next = Math.floor(nowMs / slotMs);
  }

  /** Notes that key's TTL ends at expiresAtMs (same clock as nowMs). */
  add(key: string, expiresAtMs: number): void {
    // Rounded up: a key is handed out only once its slot has fully passed.
    const slot = Math.max(this.#next, Math.ceil(expiresAtMs / this.#slotMs));
    const keys = this.#slots.get(slot);
    if (keys === undefined) this.#slots.set(slot, [key]);
    else keys.push(key);
    this.#size++;
  }

  /**
   * Keeps one note per key that `live` says is still cached, the one in its
   * latest slot (the TTL it was last set with), and drops every other note.
   * Costs one pass over the notes: called when they outnumber the cache's
   * entries by a constant factor, it is amortized O(1) per add.
   */
  compact(live: (key: string) => boolean): void {
    const latest = new Map<string, number>();
    for (const [slot, keys] of this.#slots) {
      for (const key of keys) if ((latest.get(key) ?? -1) < slot && live(key)) latest.set(key, slot);
    }
    this.#slots.clear();
    this.#size = 0;
    for (const [key, slot] of latest) {
      const keys = this.#slots.get(slot);
      if (keys === undefined) this.#slots.set(slot, [key]);
      else keys.push(key);
      this.#size++;
    }
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
      const keys = this.#slots.get(this.#next);
      if (keys === undefined) {
        this.#next++;
        continue;
      }
      while (keys.length > 0 && handed < limit) {
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

import { LRUCache } from 'lru-cache';
import { hashKey } from '../hash.js';
import type { Validators } from '../l2/envelope.js';
import { ExpiryWheel } from './expiry-wheel.js';
import { FrequencySketch } from './frequency-sketch.js';
import { HotKeys } from './hot-keys.js';

/** One cached value with the metadata the HTTP layer answers with. */
export interface L1Entry {
  readonly value: Uint8Array;
  /**
   * Response header block, ASCII: the content-type value, then CRLF-joined
   * `etag: "…"` and `x-cache: L1` (see protocol.ts FIELD). Pre-rendered once at PUT.
   */
  readonly head: Uint8Array;
  /** Wall-clock ms when stored (for `age`). */
  readonly createdMs: number;
  /** Until when it is fresh: ms on the performance.timeOrigin + performance.now() clock (as the other times here). */
  readonly expiresMs: number;
  /** Until when it may be served stale while it is refreshed (stale-while-revalidate); ≥ expiresMs. */
  readonly swrUntilMs: number;
  /** Until when it is kept: past swrUntilMs only as a fallback when a refresh fails (stale-if-error). */
  readonly staleUntilMs: number;
  /** How long the origin load that produced it took, ms (XFetch); 0 for a PUT. */
  readonly deltaMs: number;
  /** A cached absence: the origin said 404. */
  readonly negative: boolean;
  /** The origin's validators, for a conditional refresh. */
  readonly validators: Validators | null;
  readonly tags: readonly string[] | null;
}

/** The fields of an entry other than its bytes. */
export type L1EntryMeta = Omit<L1Entry, 'head' | 'value'>;

/** From this size on, a value that has a buffer of its own keeps it (see ownedEntry). */
const KEEP_OWN_BUFFER_BYTES = 4096;

/**
 * An entry whose header block and value share one buffer of its own, copied
 * from what it is given. Why copy: a value read from Redis is a view into
 * the client's socket buffer, and an L1 that kept that view would keep the
 * whole buffer alive (many values' worth) for as long as the entry lives;
 * and one buffer per entry instead of two halves the allocator's bookkeeping.
 * A value that is already a buffer of its own (a PUT's body, transferred to
 * the shard) is kept as it is when large: copying it would double the
 * garbage a write leaves for V8 to collect, for a saving that no longer
 * matters at that size. `shiftMs` moves meta's expiry times to the L1's clock.
 */
export function ownedEntry(head: Uint8Array, value: Uint8Array, meta: L1EntryMeta, shiftMs = 0): L1Entry {
  if (value.byteLength >= KEEP_OWN_BUFFER_BYTES && value.byteOffset === 0 && value.byteLength === value.buffer.byteLength) {
    return entryOf(head, value, meta, shiftMs);
  }
  const block = new Uint8Array(head.byteLength + value.byteLength);
  block.set(head, 0);
  block.set(value, head.byteLength);
  return entryOf(block.subarray(0, head.byteLength), block.subarray(head.byteLength), meta, shiftMs);
}

/** An entry as one object literal: every entry has the same shape (a spread would not promise that, and costs more). */
function entryOf(head: Uint8Array, value: Uint8Array, meta: L1EntryMeta, shiftMs: number): L1Entry {
  return {
    value,
    head,
    createdMs: meta.createdMs,
    expiresMs: meta.expiresMs + shiftMs,
    swrUntilMs: meta.swrUntilMs + shiftMs,
    staleUntilMs: meta.staleUntilMs + shiftMs,
    deltaMs: meta.deltaMs,
    negative: meta.negative,
    validators: meta.validators,
    tags: meta.tags,
  };
}

/** What happens to the partition, for counters and the hot-read index. */
export interface L1Events {
  evicted(count: number): void;
  expired(count: number): void;
  /** An entry left for any reason (replaced, deleted, evicted, expired). */
  removed?(key: string): void;
  /** admit() turned a value away: it was asked for less often than what it would evict. */
  rejected?(): void;
}

export interface L1PartitionOptions {
  /** Bytes this partition may hold (sum of entry sizes). */
  readonly maxBytes: number;
  readonly events: L1Events;
  /** Clock in ms for TTLs; tests pass a fake one. @default performance.now */
  readonly now?: () => number;
  /**
   * Admission for admit(): `tinylfu` keeps a frequency sketch of every get()
   * and lets a new value in only when it was asked for more often than the
   * entry it would evict; `lru` lets everything in. set() always stores.
   * @default 'lru'
   */
  readonly admission?: 'lru' | 'tinylfu';
}

/** Expiry notes the wheel may hold beyond two per cached entry before set() tidies it. */
const WHEEL_SLACK = 1024;
/** Notes one set() looks at, at most, when the wheel holds too many: a bounded cost per write, no pause. */
const TIDY_PER_SET = 32;
/**
 * How far an entry's expiry as lru-cache reports it may be from the time its
 * note was made with (lru-cache reads its clock once per ttlResolution, 1 ms).
 */
const NOTE_TOLERANCE_MS = 2;

/** Sketch counters per byte of budget: about one per typical small entry. */
const SKETCH_BYTES_PER_COUNTER = 512;

/**
 * Fixed per-entry cost the L1 charges on top of key, value and header
 * bytes: what an entry really costs the process beyond them (its objects in
 * the V8 heap, lru-cache's and the expiry wheel's bookkeeping, the
 * allocator's headers), measured by native-bench/memory.ts (`entry` step:
 * about 900 bytes of RSS per entry whatever the value size). Charging it
 * keeps the budget honest for small values: a budget full of 16-byte values
 * costs about what the same budget full of 4 KiB values does (docs/memory.md).
 */
export const L1_ENTRY_OVERHEAD_BYTES = 880;

/** Bytes an entry charges against the budget: key, value, metadata and fixed overhead. */
export function entrySize(key: string, entry: L1Entry): number {
  return entryBytes(key, entry.value.byteLength, entry.head.byteLength);
}

/** entrySize of an entry not built yet: its key, value bytes and head bytes. */
export function entryBytes(key: string, valueBytes: number, headBytes: number): number {
  return key.length * 2 + valueBytes + headBytes + L1_ENTRY_OVERHEAD_BYTES;
}

/**
 * The L1 partition one shard owns: an LRU bounded in bytes with a TTL per entry.
 * Only its shard's worker touches it, so there is no locking.
 */
export class L1Partition {
  readonly #lru: LRUCache<string, L1Entry>;
  readonly #events: L1Events;
  readonly #clock: () => number;
  readonly #wheel: ExpiryWheel;
  /** tag → keys of the entries carrying it, so invalidating a tag costs what it names. */
  readonly #byTag = new Map<string, Set<string>>();
  /** Recent access frequency by key hash, for admit(); null with admission 'lru'. */
  readonly #sketch: FrequencySketch | null;
  /** The most read keys lately (hits and misses alike), for the dashboard and /v1/stats. */
  readonly hotKeys = new HotKeys();

  constructor(options: L1PartitionOptions) {
    this.#events = options.events;
    const clock = options.now;
    this.#clock = clock ?? (() => performance.now());
    this.#wheel = new ExpiryWheel(this.#clock());
    this.#sketch = options.admission === 'tinylfu' ? new FrequencySketch(options.maxBytes / SKETCH_BYTES_PER_COUNTER) : null;
    this.#lru = new LRUCache<string, L1Entry>({
      maxSize: options.maxBytes,
      sizeCalculation: (entry, key) => entrySize(key, entry),
      // Expired entries are dropped lazily on access and by purgeExpired() (an expiry wheel); no timer per entry.
      ttlAutopurge: false,
      allowStale: false,
      updateAgeOnGet: false,
      // A given clock is read on every access (ttlResolution 0), so a test's fake time applies at once.
      ...(clock === undefined ? {} : { perf: { now: clock }, ttlResolution: 0 }),
      // dispose (not disposeAfter): runs before set/delete return, so the hot index never outlives the entry.
      dispose: (value, key, reason) => {
        if (value.tags !== null) this.#untag(key, value.tags);
        this.#events.removed?.(key);
        if (reason === 'evict') this.#events.evicted(1);
        else if (reason === 'expire') this.#events.expired(1);
      },
    });
  }

  /**
   * The live entry for key, or undefined. Counts the access (hit or miss) for
   * admission, and as `reads` reads for the hot keys (a front's touch stands
   * for TOUCH_EVERY hot-index hits).
   */
  get(key: string, reads = 1): L1Entry | undefined {
    this.#sketch?.add(hashKey(key));
    this.hotKeys.read(key, reads);
    return this.#lru.get(key);
  }

  /**
   * Stores a value that also lives elsewhere (the L2), so turning it away
   * loses nothing: with TinyLFU admission, a key not held yet gets in only if
   * there is room or it was asked for more often than the least recently used
   * entry it would push out. A key already held is always replaced. Returns
   * whether it was stored.
   */
  admit(key: string, entry: L1Entry, ttlMs: number): boolean {
    if (!this.admits(key, entrySize(key, entry))) return false;
    return this.set(key, entry, ttlMs);
  }

  /**
   * Whether admit() would take in a value of `bytes` (as entrySize counts
   * them) for key; counts a refusal. Lets a caller skip building an entry
   * that would be turned away.
   */
  admits(key: string, bytes: number): boolean {
    const sketch = this.#sketch;
    const lru = this.#lru;
    if (sketch !== null && !lru.has(key) && lru.calculatedSize + bytes > lru.maxSize) {
      let victim: string | undefined;
      for (const k of lru.rkeys()) {
        victim = k;
        break;
      }
      if (victim !== undefined && sketch.estimate(hashKey(key)) <= sketch.estimate(hashKey(victim))) {
        this.#events.rejected?.();
        return false;
      }
    }
    return true;
  }

  /** Stores an entry for ttlMs; returns false when it cannot fit even in an empty partition. */
  set(key: string, entry: L1Entry, ttlMs: number): boolean {
    if (entrySize(key, entry) > this.#lru.maxSize) return false;
    // The TTL starts at t for lru-cache and for the note alike, so that tidying can tell this set's note from older ones.
    const t = this.#clock();
    this.#lru.set(key, entry, { ttl: ttlMs, start: t });
    this.#wheel.add(key, t + ttlMs);
    // Notes of keys evicted or set again stay in the wheel until their slot passes: bound them by what is cached.
    const bound = 2 * this.#lru.size + WHEEL_SLACK;
    if (this.#wheel.size > bound) this.#wheel.tidy(this.#isCurrentNote, Math.min(TIDY_PER_SET, 2 * (this.#wheel.size - bound)));
    if (entry.tags !== null && this.#lru.peek(key) === entry) {
      for (const tag of entry.tags) {
        const keys = this.#byTag.get(tag);
        if (keys === undefined) this.#byTag.set(tag, new Set([key]));
        else keys.add(key);
      }
    }
    return true;
  }

  /** Removes key; true when it was present. */
  delete(key: string): boolean {
    return this.#lru.delete(key);
  }

  /** Removes every entry carrying one of the tags (expired ones too); returns how many live ones went. */
  deleteTagged(tags: ReadonlySet<string>): number {
    const doomed = new Set<string>();
    for (const tag of tags) for (const key of this.#byTag.get(tag) ?? []) doomed.add(key);
    let removed = 0;
    for (const key of doomed) {
      if (this.#lru.has(key)) removed++;
      this.#lru.delete(key);
    }
    return removed;
  }

  /** Removes every entry; returns how many there were. */
  clear(): number {
    const n = this.#lru.size;
    // lru-cache disposes each entry (reason 'delete'): tags and the hot index are cleaned as for delete().
    this.#lru.clear();
    return n;
  }

  #untag(key: string, tags: readonly string[]): void {
    for (const tag of tags) {
      const keys = this.#byTag.get(tag);
      if (keys === undefined) continue;
      keys.delete(key);
      if (keys.size === 0) this.#byTag.delete(tag);
    }
  }

  /** Distinct tags in the index (for tests and stats). */
  get tagCount(): number {
    return this.#byTag.size;
  }

  /**
   * Drops entries whose TTL has ended (called on a timer by the shard). Work
   * is bounded by what expires (and at most `limit` keys a call), not by what
   * is stored.
   */
  purgeExpired(limit?: number): void {
    this.#wheel.due(this.#clock(), this.#expireIfStale, limit);
  }

  /**
   * Whether a note (key, expiresAtMs) stands for the entry cached under key
   * now: the key is there (expired but not yet swept counts: the note is what
   * sweeps it) and its TTL ends when the note says.
   */
  readonly #isCurrentNote = (key: string, expiresAtMs: number): boolean => {
    const remaining = this.#lru.getRemainingTTL(key);
    // 0: not cached. Infinity: no TTL, which set() never gives.
    if (remaining === 0 || remaining === Number.POSITIVE_INFINITY) return false;
    return Math.abs(this.#clock() + remaining - expiresAtMs) <= NOTE_TOLERANCE_MS;
  };

  /** Expiry notes held (for tests: bounded by the entries cached). */
  get expiryNotes(): number {
    return this.#wheel.size;
  }

  /** Deletes key through lru-cache (reason 'expire') only if its TTL has really ended. */
  readonly #expireIfStale = (key: string): void => {
    // A stale entry is removed by get() with dispose reason 'expire'; a key set again since is left alone.
    if (this.#lru.has(key) || !this.#lru.peek(key, { allowStale: true })) return;
    this.#lru.get(key);
  };

  /** Bytes of the admission sketch (0 without one). */
  get sketchBytes(): number {
    return this.#sketch?.bytes ?? 0;
  }

  get items(): number {
    return this.#lru.size;
  }

  get bytes(): number {
    return this.#lru.calculatedSize;
  }
}

/** The metadata of a plain value (a PUT without a stale window): fresh until expiresMs, then gone. */
export function plainMeta(createdMs: number, expiresMs: number, tags: readonly string[] | null = null): L1EntryMeta {
  return { createdMs, expiresMs, swrUntilMs: expiresMs, staleUntilMs: expiresMs, deltaMs: 0, negative: false, validators: null, tags };
}

/**
 * A shard's hot-read index: entries its worker has served are copied into a
 * SharedArrayBuffer so that every front can answer repeat GET hits itself,
 * without a thread hop. The worker's lru-cache stays the truth: it alone
 * writes here, publishing an entry on a hit and unpublishing it (before it
 * acknowledges) whenever the entry is replaced, deleted, evicted or expires.
 *
 * Layout (all in one SharedArrayBuffer per shard, offsets named below):
 *   readers: one control block per front (READER_WORDS Int32, a cache line
 *            each so that fronts do not share lines): the touch ring's write
 *            and read counters and the front's read state
 *   touches: one Int32 ring per front of record offsets it served (lossy),
 *            so the worker can refresh those keys' LRU recency; one producer
 *            and one consumer per ring
 *   slots:   Int32 pairs [hash, ref] — open addressing, linear probing;
 *            ref 0 = empty, -1 = deleted, else record offset + 1
 *   arena:   records written in ring order, 8-byte aligned (RECORD offsets):
 *            Int32 (reserved) | keyLen | headLen | valueLen | f64 expiresMs | f64 createdMs | key | head | value
 *
 * Records are immutable while they can be read, so a front hands their bytes
 * to uWS without copying them first. The rule (a grace period, as in RCU):
 * each front sets its read state odd before it looks at a slot and even after
 * the response is written; the writer withdraws a record by marking its slot
 * deleted, and before it writes over arena bytes it waits until every front's
 * read state is even or has changed, i.e. until every read that could have
 * found a withdrawn record is over. Both sides use Atomics (sequentially
 * consistent), so a read either sees the deleted slot or is waited for. If a
 * front stays inside one read too long (descheduled, stalled), the writer
 * gives up and does not publish that entry.
 */

/** Int32 words of one reader's control block (64 bytes: a cache line). */
const READER_WORDS = 16;
/** Word offsets in a reader's control block. */
const READER = {
  /** Touches the front has written to its ring (wraps as Int32). */
  TOUCH_WRITE: 0,
  /** Touches the worker has drained from that ring. */
  TOUCH_READ: 1,
  /** The front's read state: odd while a read is open (see the file comment). */
  STATE: 2,
  /** Non-zero once the supervisor revoked the index (its worker is gone): nothing in it may be served. */
  REVOKED: 3,
} as const;
/** Byte offsets in an arena record. */
const RECORD = {
  KEY_LENGTH: 4,
  HEAD_LENGTH: 8,
  VALUE_LENGTH: 12,
  EXPIRES_MS: 16,
  CREATED_MS: 24,
  /** The key's UTF-8 bytes, then the head block, then the value. */
  KEY: 32,
} as const;
/** Int32 words of a slot: the key's hash, then the record reference. */
const SLOT_WORDS = 2;
const SLOT_HASH = 0;
const SLOT_REF = 1;
const MAX_PROBE = 16;
const EMPTY = 0;
const DELETED = -1;
/** Entries of each front's touch ring. */
const TOUCH_CAPACITY = 4096;
/** A reader reports one hit in this many to the worker (a power of two): the worker counts each touch as that many reads. */
export const TOUCH_EVERY = 8;
/** How long the writer waits for the reads in progress before it skips publishing. */
const GRACE_WAIT_MS = 0.2;
/** After giving up once, how long the writer publishes nothing (the read is likely still open). */
const PAUSE_AFTER_GIVE_UP_MS = 10;
/** Largest hot-read arena per shard (values served by the fronts without a hop are copied there). */
export const HOT_ARENA_MAX_BYTES = 64 * 1024 * 1024;
/**
 * The hot-read arena's share of a shard's L1 budget. It is a ring of copies
 * of the entries read most recently, on top of the budget: a quarter holds
 * the hot part of a skewed load and bounds the copies at 0.25 × l1MaxBytes
 * (docs/memory.md).
 */
export const HOT_ARENA_SHARE = 0.25;

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

/** Sizes of one shard's hot index; both sides build views from the same numbers. */
export interface HotIndexShape {
  readonly arenaBytes: number;
  readonly slots: number;
  /** Fronts that read it: each has its own control block and touch ring. */
  readonly readers: number;
}

/**
 * A shape for an arena of about `arenaBytes`. Slots: a power of two, one per
 * KiB of arena (at least 1024), so the table stays small enough to sit in
 * cache (64 MiB arena: 64Ki slots, 512 KiB). Many small entries can fill it
 * before the arena; an entry that finds no free slot within the probe limit is
 * simply not published and keeps being served through its shard.
 */
export function hotIndexShape(arenaBytes: number, readers = 1): HotIndexShape {
  const arena = Math.max(64 * 1024, align8(arenaBytes));
  let slots = 1024;
  while (slots < arena / 1024) slots *= 2;
  return { arenaBytes: arena, slots, readers };
}

/** The shape for one shard of a node: its share of the L1 budget, capped, read by `fronts` fronts. */
export function hotIndexShapeFor(l1MaxBytesPerShard: number, fronts: number): HotIndexShape {
  return hotIndexShape(Math.min(Math.floor(l1MaxBytesPerShard * HOT_ARENA_SHARE), HOT_ARENA_MAX_BYTES), fronts);
}

/** Int32 words before the slot table: the readers' control blocks and touch rings. */
function headerWords(shape: HotIndexShape): number {
  return shape.readers * (READER_WORDS + TOUCH_CAPACITY);
}

/** Bytes of the shared buffer for a shape. */
export function allocatedBytes(shape: HotIndexShape): number {
  return (headerWords(shape) + shape.slots * SLOT_WORDS) * 4 + shape.arenaBytes;
}

/**
 * Revokes an index whose worker is gone: every front's lookups miss from now
 * on, even in a front that has not yet been told (the supervisor calls this
 * before it tells them). A write the replacement acknowledges is then never
 * followed by a read of the old worker's copy through another front.
 */
export function revokeHotIndex(buffer: SharedArrayBuffer, shape: HotIndexShape): void {
  const ints = new Int32Array(buffer, 0, shape.readers * READER_WORDS);
  for (let r = 0; r < shape.readers; r++) Atomics.store(ints, r * READER_WORDS + READER.REVOKED, 1);
}

/** Allocates the shared buffer for a shape. */
export function allocateHotIndex(shape: HotIndexShape): SharedArrayBuffer {
  return new SharedArrayBuffer(allocatedBytes(shape));
}

class Views {
  readonly ints: Int32Array;
  readonly readers: number;
  readonly slotInts: Int32Array;
  readonly arenaBase: number;
  readonly bytes: Uint8Array;
  readonly floats: Float64Array;
  readonly mask: number;
  readonly arenaBytes: number;
  constructor(buffer: SharedArrayBuffer, shape: HotIndexShape) {
    if (shape.readers < 1) throw new RangeError('a hot-read index needs at least one reader');
    this.ints = new Int32Array(buffer);
    this.readers = shape.readers;
    this.slotInts = new Int32Array(buffer, headerWords(shape) * 4, shape.slots * SLOT_WORDS);
    this.arenaBase = (headerWords(shape) + shape.slots * SLOT_WORDS) * 4;
    this.bytes = new Uint8Array(buffer);
    this.floats = new Float64Array(buffer);
    this.mask = shape.slots - 1;
    this.arenaBytes = shape.arenaBytes;
  }

  /** Index in `ints` of reader r's control word `word` (READER.*). */
  control(r: number, word: number): number {
    return r * READER_WORDS + word;
  }

  /** Index in `ints` of reader r's touch ring entry `i`. */
  touch(r: number, i: number): number {
    return this.readers * READER_WORDS + r * TOUCH_CAPACITY + (i & (TOUCH_CAPACITY - 1));
  }
}

/** One front's side: lock-free lookups, and touch records for the worker. */
export class HotIndexReader {
  readonly #v: Views;
  /** Where this front's read state and touch counters are in the Int32 view. */
  readonly #state: number;
  readonly #touchWrite: number;
  readonly #touchRead: number;
  readonly #revoked: number;
  readonly #reader: number;
  readonly #scratch = new Uint8Array(4 * 512);
  readonly #encoder = new TextEncoder();
  #hits = 0;
  #epoch = 0;
  /** The shared memory the last hit lies in; valid until done(). */
  readonly bytes: Uint8Array;
  /** Of the last hit: where its head block and value are in `bytes`, and when the value was stored. */
  headAt = 0;
  headLength = 0;
  valueAt = 0;
  valueLength = 0;
  createdMs = 0;

  /** `reader` is this front's index, < shape.readers: its control block and touch ring are its own. */
  constructor(buffer: SharedArrayBuffer, shape: HotIndexShape, reader = 0) {
    if (!Number.isInteger(reader) || reader < 0 || reader >= shape.readers) throw new RangeError(`reader ${reader} of ${shape.readers}`);
    const v = new Views(buffer, shape);
    this.#v = v;
    this.#reader = reader;
    this.#state = v.control(reader, READER.STATE);
    this.#touchWrite = v.control(reader, READER.TOUCH_WRITE);
    this.#touchRead = v.control(reader, READER.TOUCH_READ);
    this.#revoked = v.control(reader, READER.REVOKED);
    this.bytes = v.bytes;
    // A front that died inside a read left its state odd; its replacement (started once it is gone) closes it.
    Atomics.store(v.ints, this.#state, 0);
  }

  /**
   * Finds the live entry for key (hash = hashKey(key)). On true the read is
   * open: the caller writes the response from `bytes` and then calls done().
   * On false (not published, expired at `nowMs`) the read is already closed.
   */
  lookup(key: string, hash: number, nowMs: number): boolean {
    const v = this.#v;
    this.#epoch = (this.#epoch + 1) & 0x3fffffff;
    Atomics.store(v.ints, this.#state, this.#epoch * 2 + 1);
    // Revoked (its worker replaced): a front that has not yet heard so must not serve what the old worker published.
    if (Atomics.load(v.ints, this.#revoked) !== 0) {
      this.done();
      return false;
    }
    // ASCII keys (the common case) are compared by char code; others through UTF-8 bytes.
    const ascii = isAscii(key);
    const keyLength = ascii ? key.length : this.#encoder.encodeInto(key, this.#scratch).written;
    const tag = hash | 0; // slots hold the hash as Int32
    let slot = hash & v.mask;
    for (let probe = 0; probe < MAX_PROBE; probe++, slot = (slot + 1) & v.mask) {
      const ref = Atomics.load(v.slotInts, slot * SLOT_WORDS + SLOT_REF);
      if (ref === EMPTY) break;
      if (ref === DELETED || Atomics.load(v.slotInts, slot * SLOT_WORDS + SLOT_HASH) !== tag) continue;
      const at = v.arenaBase + ref - 1;
      const recordKeyLength = v.ints[(at + RECORD.KEY_LENGTH) >> 2] as number;
      if (recordKeyLength !== keyLength) continue;
      const keyAt = at + RECORD.KEY;
      const bytes = v.bytes;
      let same = true;
      if (ascii) {
        for (let k = 0; k < keyLength; k++) {
          if (bytes[keyAt + k] !== key.charCodeAt(k)) {
            same = false;
            break;
          }
        }
      } else {
        const scratch = this.#scratch;
        for (let k = 0; k < keyLength; k++) {
          if (bytes[keyAt + k] !== scratch[k]) {
            same = false;
            break;
          }
        }
      }
      if (!same) continue;
      if ((v.floats[(at + RECORD.EXPIRES_MS) >> 3] as number) <= nowMs) break;
      this.headAt = keyAt + keyLength;
      this.headLength = v.ints[(at + RECORD.HEAD_LENGTH) >> 2] as number;
      this.valueAt = this.headAt + this.headLength;
      this.valueLength = v.ints[(at + RECORD.VALUE_LENGTH) >> 2] as number;
      this.createdMs = v.floats[(at + RECORD.CREATED_MS) >> 3] as number;
      // Recency is approximate: one hit in TOUCH_EVERY is reported to the worker.
      if ((++this.#hits & (TOUCH_EVERY - 1)) === 0) this.#touch(ref);
      return true;
    }
    this.done();
    return false;
  }

  /** Closes the read opened by a successful lookup: the writer may reuse what it saw. */
  done(): void {
    Atomics.store(this.#v.ints, this.#state, this.#epoch * 2);
  }

  /** Records that the front served the record at ref; dropped when the worker is behind. */
  #touch(ref: number): void {
    const v = this.#v;
    const ints = v.ints;
    const write = Atomics.load(ints, this.#touchWrite);
    // Counters are Int32 and wrap: all arithmetic on them stays in Int32 (| 0).
    if (((write - Atomics.load(ints, this.#touchRead)) | 0) >= TOUCH_CAPACITY) return;
    Atomics.store(ints, v.touch(this.#reader, write), ref);
    Atomics.store(ints, this.#touchWrite, (write + 1) | 0);
  }
}

/** A published record, as the worker remembers it. */
interface Published {
  readonly key: string;
  readonly ref: number;
  readonly slot: number;
  readonly size: number;
}

/** The worker's side: publishes and unpublishes records; the only writer. */
export class HotIndexWriter {
  readonly #v: Views;
  readonly #byKey = new Map<string, Published>();
  readonly #byRef = new Map<number, Published>();
  /** Published records in arena order, oldest first: the ring is reclaimed from here. */
  readonly #order: Published[] = [];
  #orderHead = 0;
  #tail = 0;
  /** The furthest the tail has been: arena bytes written at least once. */
  #touched = 0;
  /** After a read stayed open too long, publishing pauses until then (performance.now ms). */
  #pausedUntil = 0;
  readonly #encoder = new TextEncoder();

  constructor(buffer: SharedArrayBuffer, shape: HotIndexShape) {
    this.#v = new Views(buffer, shape);
    this.#v.slotInts.fill(0);
  }

  get published(): number {
    return this.#byKey.size;
  }

  /** Bytes of the arena written so far: the pages of the shared buffer this index has touched. */
  get touchedBytes(): number {
    return this.#touched;
  }

  /** True when key has a record the front can find. */
  has(key: string): boolean {
    return this.#byKey.has(key);
  }

  /**
   * Copies an entry into the arena and the index; does nothing if it cannot
   * fit, find a slot, or wait out an open read. `head` is the block the front
   * writes before the value (see Shard: the header lines as one uWS header name).
   */
  publish(key: string, hash: number, head: Uint8Array, value: Uint8Array, expiresMs: number, createdMs: number): void {
    this.unpublish(key);
    const v = this.#v;
    const keyBytes = this.#encoder.encode(key);
    const size = align8(RECORD.KEY + keyBytes.length + head.length + value.length);
    if (size > v.arenaBytes / 4) return;
    let slot = hash & v.mask;
    let free = -1;
    for (let probe = 0; probe < MAX_PROBE; probe++, slot = (slot + 1) & v.mask) {
      const ref = v.slotInts[slot * SLOT_WORDS + SLOT_REF] as number;
      if (ref === EMPTY || ref === DELETED) {
        free = slot;
        break;
      }
    }
    if (free === -1) return;
    if (this.#tail + size > v.arenaBytes) {
      // Wrap: what lies past the tail is the oldest lap; drop it so the order stays ring order.
      this.#reclaim(this.#tail, v.arenaBytes);
      this.#tail = 0;
    }
    this.#reclaim(this.#tail, this.#tail + size);
    // These bytes may belong to records withdrawn a moment ago: wait out reads that could see them.
    if (!this.#graceOver()) return;
    const offset = this.#tail;
    this.#tail += size;
    if (this.#tail > this.#touched) this.#touched = this.#tail;
    const at = v.arenaBase + offset;
    v.ints[at >> 2] = 0;
    v.ints[(at + RECORD.KEY_LENGTH) >> 2] = keyBytes.length;
    v.ints[(at + RECORD.HEAD_LENGTH) >> 2] = head.length;
    v.ints[(at + RECORD.VALUE_LENGTH) >> 2] = value.length;
    v.floats[(at + RECORD.EXPIRES_MS) >> 3] = expiresMs;
    v.floats[(at + RECORD.CREATED_MS) >> 3] = createdMs;
    v.bytes.set(keyBytes, at + RECORD.KEY);
    v.bytes.set(head, at + RECORD.KEY + keyBytes.length);
    v.bytes.set(value, at + RECORD.KEY + keyBytes.length + head.length);
    const ref = offset + 1;
    // Publishing is the Atomics.store of the slot: a reader that finds it sees the whole record.
    Atomics.store(v.slotInts, free * SLOT_WORDS + SLOT_HASH, hash);
    Atomics.store(v.slotInts, free * SLOT_WORDS + SLOT_REF, ref);
    const record: Published = { key, ref, slot: free, size };
    this.#byKey.set(key, record);
    this.#byRef.set(ref, record);
    this.#order.push(record);
  }

  /** Withdraws key's record, if any: readers can no longer find or validate it. */
  unpublish(key: string): void {
    const record = this.#byKey.get(key);
    if (record === undefined) return;
    this.#drop(record);
  }

  /** Calls `use(key)` for each key a front served since the last drain (every front's ring in turn). */
  drainTouches(use: (key: string) => void): void {
    const v = this.#v;
    const ints = v.ints;
    for (let r = 0; r < v.readers; r++) {
      const readAt = v.control(r, READER.TOUCH_READ);
      const write = Atomics.load(ints, v.control(r, READER.TOUCH_WRITE));
      let read = Atomics.load(ints, readAt);
      for (; read !== write; read = (read + 1) | 0) {
        const record = this.#byRef.get(Atomics.load(ints, v.touch(r, read)));
        if (record !== undefined) use(record.key);
      }
      Atomics.store(ints, readAt, read);
    }
  }

  #drop(record: Published): void {
    const v = this.#v;
    if (this.#byKey.get(record.key) !== record) return;
    this.#byKey.delete(record.key);
    this.#byRef.delete(record.ref);
    Atomics.store(v.slotInts, record.slot * SLOT_WORDS + SLOT_REF, DELETED);
  }

  /** True once no read that began before now is still open, in any front (see the file comment). */
  #graceOver(): boolean {
    const v = this.#v;
    const ints = v.ints;
    let deadline = 0;
    for (let r = 0; r < v.readers; r++) {
      const at = v.control(r, READER.STATE);
      const state = Atomics.load(ints, at);
      if ((state & 1) === 0) continue;
      const now = performance.now();
      // A front is stuck in one read (GC, descheduled): do not spin again for every entry of a batch.
      if (now < this.#pausedUntil) return false;
      // One wait for all the fronts: their reads are short and overlap.
      if (deadline === 0) deadline = now + GRACE_WAIT_MS;
      while (Atomics.load(ints, at) === state) {
        if (performance.now() > deadline) {
          this.#pausedUntil = deadline + PAUSE_AFTER_GIVE_UP_MS;
          return false;
        }
      }
    }
    return true;
  }

  /** Unpublishes every record overlapping [from, to) of the arena, oldest first. */
  #reclaim(from: number, to: number): void {
    const order = this.#order;
    while (this.#orderHead < order.length) {
      const record = order[this.#orderHead] as Published;
      const start = record.ref - 1;
      if (this.#byKey.get(record.key) !== record) {
        this.#orderHead++;
        continue;
      }
      // Live records sit in ring order from the tail on: the first that starts past the region ends it.
      if (start >= to || start + record.size <= from) break;
      this.#drop(record);
      this.#orderHead++;
    }
    if (this.#orderHead > 1024 && this.#orderHead * 2 > order.length) {
      order.splice(0, this.#orderHead);
      this.#orderHead = 0;
    }
  }
}

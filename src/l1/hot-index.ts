/**
 * A shard's hot-read index: entries its worker has served are copied into a
 * SharedArrayBuffer so that the front can answer repeat GET hits itself,
 * without a thread hop. The worker's lru-cache stays the truth: it alone
 * writes here, publishing an entry on a hit and unpublishing it (before it
 * acknowledges) whenever the entry is replaced, deleted, evicted or expires.
 *
 * Layout (all in one SharedArrayBuffer per shard):
 *   control: Int32 [touchWrite, touchRead, readerState, (pad)]
 *   touches: Int32 ring of record offsets the front served (lossy), so the
 *            worker can refresh those keys' LRU recency
 *   slots:   Int32 pairs [hash, ref] — open addressing, linear probing;
 *            ref 0 = empty, -1 = deleted, else record offset + 1
 *   arena:   records written in ring order, 8-byte aligned:
 *            Int32 (reserved) | keyLen | headLen | valueLen | f64 expiresMs | f64 createdMs | key | head | value
 *
 * Records are immutable while they can be read, so the front hands their
 * bytes to uWS without copying them first. The rule (a grace period, as in
 * RCU): the reader sets readerState odd before it looks at a slot and even
 * after the response is written; the writer withdraws a record by marking its
 * slot deleted, and before it writes over arena bytes it waits until
 * readerState is even or has changed, i.e. until every read that could have
 * found a withdrawn record is over. Both sides use Atomics (sequentially
 * consistent), so a read either sees the deleted slot or is waited for. If the
 * reader stays inside one read too long (descheduled), the writer gives up and
 * does not publish that entry.
 */

const RECORD_HEADER = 32;
const MAX_PROBE = 16;
const EMPTY = 0;
const DELETED = -1;
const TOUCH_CAPACITY = 4096;
const CONTROL_INTS = 4; // keeps the arena 8-byte aligned
const READER_STATE = 2;
/** How long the writer waits for a read in progress before it skips publishing. */
const GRACE_WAIT_MS = 0.2;
/** After giving up once, how long the writer publishes nothing (the read is likely still open). */
const PAUSE_AFTER_GIVE_UP_MS = 10;

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
}

/**
 * A shape for an arena of about `arenaBytes`. Slots: a power of two, one per
 * KiB of arena (at least 1024), so the table stays small enough to sit in
 * cache (64 MiB arena: 64Ki slots, 512 KiB). Many small entries can fill it
 * before the arena; an entry that finds no free slot within the probe limit is
 * simply not published and keeps being served through its shard.
 */
export function hotIndexShape(arenaBytes: number): HotIndexShape {
  const arena = Math.max(64 * 1024, align8(arenaBytes));
  let slots = 1024;
  while (slots < arena / 1024) slots *= 2;
  return { arenaBytes: arena, slots };
}

/** Bytes of the shared buffer for a shape. */
export function allocatedBytes(shape: HotIndexShape): number {
  return (CONTROL_INTS + TOUCH_CAPACITY + shape.slots * 2) * 4 + shape.arenaBytes;
}

/** Allocates the shared buffer for a shape. */
export function allocateHotIndex(shape: HotIndexShape): SharedArrayBuffer {
  return new SharedArrayBuffer(allocatedBytes(shape));
}

class Views {
  readonly ints: Int32Array;
  readonly touches: Int32Array;
  readonly slotInts: Int32Array;
  readonly arenaBase: number;
  readonly bytes: Uint8Array;
  readonly floats: Float64Array;
  readonly mask: number;
  readonly arenaBytes: number;
  constructor(buffer: SharedArrayBuffer, shape: HotIndexShape) {
    this.ints = new Int32Array(buffer);
    this.touches = new Int32Array(buffer, CONTROL_INTS * 4, TOUCH_CAPACITY);
    this.slotInts = new Int32Array(buffer, (CONTROL_INTS + TOUCH_CAPACITY) * 4, shape.slots * 2);
    this.arenaBase = (CONTROL_INTS + TOUCH_CAPACITY + shape.slots * 2) * 4;
    this.bytes = new Uint8Array(buffer);
    this.floats = new Float64Array(buffer);
    this.mask = shape.slots - 1;
    this.arenaBytes = shape.arenaBytes;
  }
}

/** The front's side: lock-free lookups, and touch records for the worker. */
export class HotIndexReader {
  readonly #v: Views;
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

  constructor(buffer: SharedArrayBuffer, shape: HotIndexShape) {
    this.#v = new Views(buffer, shape);
    this.bytes = this.#v.bytes;
  }

  /**
   * Finds the live entry for key (hash = hashKey(key)). On true the read is
   * open: the caller writes the response from `bytes` and then calls done().
   * On false (not published, expired at `nowMs`) the read is already closed.
   */
  lookup(key: string, hash: number, nowMs: number): boolean {
    const v = this.#v;
    this.#epoch = (this.#epoch + 1) & 0x3fffffff;
    Atomics.store(v.ints, READER_STATE, this.#epoch * 2 + 1);
    // ASCII keys (the common case) are compared by char code; others through UTF-8 bytes.
    const ascii = isAscii(key);
    const keyLength = ascii ? key.length : this.#encoder.encodeInto(key, this.#scratch).written;
    const tag = hash | 0; // slots hold the hash as Int32
    let slot = hash & v.mask;
    for (let probe = 0; probe < MAX_PROBE; probe++, slot = (slot + 1) & v.mask) {
      const ref = Atomics.load(v.slotInts, slot * 2 + 1);
      if (ref === EMPTY) break;
      if (ref === DELETED || Atomics.load(v.slotInts, slot * 2) !== tag) continue;
      const at = v.arenaBase + ref - 1;
      const i = at >> 2;
      const recordKeyLength = v.ints[i + 1] as number;
      if (recordKeyLength !== keyLength) continue;
      const keyAt = at + RECORD_HEADER;
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
      if ((v.floats[(at + 16) >> 3] as number) <= nowMs) break;
      this.headAt = keyAt + keyLength;
      this.headLength = v.ints[i + 2] as number;
      this.valueAt = this.headAt + this.headLength;
      this.valueLength = v.ints[i + 3] as number;
      this.createdMs = v.floats[(at + 24) >> 3] as number;
      // Recency is approximate: one hit in eight is reported to the worker.
      if ((++this.#hits & 7) === 0) this.#touch(ref);
      return true;
    }
    this.done();
    return false;
  }

  /** Closes the read opened by a successful lookup: the writer may reuse what it saw. */
  done(): void {
    Atomics.store(this.#v.ints, READER_STATE, this.#epoch * 2);
  }

  /** Records that the front served the record at ref; dropped when the worker is behind. */
  #touch(ref: number): void {
    const ints = this.#v.ints;
    const write = Atomics.load(ints, 0);
    // Counters are Int32 and wrap: all arithmetic on them stays in Int32 (| 0).
    if (((write - Atomics.load(ints, 1)) | 0) >= TOUCH_CAPACITY) return;
    Atomics.store(this.#v.touches, write & (TOUCH_CAPACITY - 1), ref);
    Atomics.store(ints, 0, (write + 1) | 0);
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
    const size = align8(RECORD_HEADER + keyBytes.length + head.length + value.length);
    if (size > v.arenaBytes / 4) return;
    let slot = hash & v.mask;
    let free = -1;
    for (let probe = 0; probe < MAX_PROBE; probe++, slot = (slot + 1) & v.mask) {
      const ref = v.slotInts[slot * 2 + 1] as number;
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
    const i = at >> 2;
    v.ints[i] = 0;
    v.ints[i + 1] = keyBytes.length;
    v.ints[i + 2] = head.length;
    v.ints[i + 3] = value.length;
    v.floats[(at + 16) >> 3] = expiresMs;
    v.floats[(at + 24) >> 3] = createdMs;
    v.bytes.set(keyBytes, at + RECORD_HEADER);
    v.bytes.set(head, at + RECORD_HEADER + keyBytes.length);
    v.bytes.set(value, at + RECORD_HEADER + keyBytes.length + head.length);
    const ref = offset + 1;
    // Publishing is the Atomics.store of the slot: a reader that finds it sees the whole record.
    Atomics.store(v.slotInts, free * 2, hash);
    Atomics.store(v.slotInts, free * 2 + 1, ref);
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

  /** Calls `use(key)` for each key the front served since the last drain. */
  drainTouches(use: (key: string) => void): void {
    const ints = this.#v.ints;
    const write = Atomics.load(ints, 0);
    let read = Atomics.load(ints, 1);
    for (; read !== write; read = (read + 1) | 0) {
      const record = this.#byRef.get(Atomics.load(this.#v.touches, read & (TOUCH_CAPACITY - 1)));
      if (record !== undefined) use(record.key);
    }
    Atomics.store(ints, 1, read);
  }

  #drop(record: Published): void {
    const v = this.#v;
    if (this.#byKey.get(record.key) !== record) return;
    this.#byKey.delete(record.key);
    this.#byRef.delete(record.ref);
    Atomics.store(v.slotInts, record.slot * 2 + 1, DELETED);
  }

  /** True once no read that began before now is still open (see the file comment). */
  #graceOver(): boolean {
    const ints = this.#v.ints;
    const state = Atomics.load(ints, READER_STATE);
    if ((state & 1) === 0) return true;
    const now = performance.now();
    // The front is stuck in one read (GC, descheduled): do not spin again for every entry of a batch.
    if (now < this.#pausedUntil) return false;
    const deadline = now + GRACE_WAIT_MS;
    while (Atomics.load(ints, READER_STATE) === state) {
      if (performance.now() > deadline) {
        this.#pausedUntil = deadline + PAUSE_AFTER_GIVE_UP_MS;
        return false;
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

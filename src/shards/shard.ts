import { getHeapStatistics } from 'node:v8';
import type { Counters } from '../counters/counters.js';
import { L2_ERROR_KINDS, SHARD_SLOT } from '../counters/layout.js';
import type { L2UnavailableError } from '../errors.js';
import type { HotIndexWriter } from '../l1/hot-index.js';
import { type L1Entry, L1Partition, ownedEntry } from '../l1/partition.js';
import { BUS_KIND, type BusKind, type BusPublisher } from '../l2/bus-format.js';
import type { Announce, L2Hit, L2Store } from '../l2/store.js';
import { etagOf } from './etag.js';
import { type Batch, FIELD, FIELDS, headerBytes, OP, RESULT_PREFIX_BYTES, STATUS } from './protocol.js';
import { hashKey } from './route.js';

const HOT_HEAD_PREFIX = asciiBytes('content-type: ');
const HOT_HEAD_SUFFIX = asciiBytes('\r\nage');

/**
 * The header block as the hot path writes it: used as the *name* of one uWS
 * writeHeader call whose value is the age, so `content-type: …`, `etag`,
 * `x-cache` and `age: N` go out in a single call (see hot-index.ts).
 */
function hotHeadOf(head: Uint8Array): Uint8Array {
  const out = new Uint8Array(HOT_HEAD_PREFIX.length + head.length + HOT_HEAD_SUFFIX.length);
  out.set(HOT_HEAD_PREFIX, 0);
  out.set(head, HOT_HEAD_PREFIX.length);
  out.set(HOT_HEAD_SUFFIX, HOT_HEAD_PREFIX.length + head.length);
  return out;
}

function asciiBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** An entry's header block (see protocol.ts FIELD): content-type value, then `etag` and `x-cache`. */
function headOf(contentType: string, etag: string, level: 'L1' | 'L2'): Uint8Array {
  return asciiBytes(`${contentType}\r\netag: ${etag}\r\nx-cache: ${level}`);
}

/** The L2 side of a shard: its own Redis client and its own numbered bus stream. */
export interface ShardL2 {
  readonly store: L2Store;
  readonly bus: BusPublisher;
  /** Longest an L2 value is kept in L1, ms: bounds how long a lost bus message can leave L1 stale. */
  readonly l1MaxTtlMs: number;
  /** Which values from the L2 the L1 takes in (see L1PartitionOptions.admission). */
  readonly admission: 'lru' | 'tinylfu';
}

/** What an op answers with: a status, and for hits the header block and value. */
interface Found {
  readonly head: Uint8Array;
  readonly value: Uint8Array;
  readonly createdMs: number;
}

/** An L2 read in flight for one key; `stale` once a write or drop for the key overtook it. */
interface Load {
  readonly promise: Promise<L2Hit | null>;
  stale: boolean;
}

/** A read this batch starts, with the means to settle it when the batch's multi-key read returns. */
interface PendingLoad {
  readonly key: string;
  readonly load: Load;
  readonly settle: (hit: L2Hit | null) => void;
  readonly fail: (err: unknown) => void;
}

/** The answers of one batch, filled op by op, then packed into one transferable buffer. */
class Answers {
  readonly header: Float64Array;
  readonly found: (Found | undefined)[];
  dataBytes = 0;
  constructor(
    readonly id: number,
    readonly ops: readonly number[],
    pending: boolean,
  ) {
    const n = ops.length;
    this.header = new Float64Array(n * FIELDS);
    if (pending) for (let i = 0; i < n; i++) this.header[i * FIELDS + FIELD.STATUS] = STATUS.PENDING;
    this.found = new Array(n);
  }

  hit(i: number, found: Found): void {
    this.header[i * FIELDS + FIELD.STATUS] = STATUS.HIT;
    this.found[i] = found;
    this.dataBytes += found.head.byteLength + (this.ops[i] === OP.GET ? found.value.byteLength : 0);
  }

  set(i: number, status: number, valueLen = 0): void {
    this.header[i * FIELDS + FIELD.STATUS] = status;
    this.header[i * FIELDS + FIELD.VALUE_LEN] = valueLen;
  }

  /** Packs the batch id, the fields and the hits' bytes into one buffer. */
  pack(): ArrayBuffer {
    const { header, found, ops } = this;
    const n = ops.length;
    const headerSize = headerBytes(n);
    const buffer = new ArrayBuffer(headerSize + this.dataBytes);
    const bytes = new Uint8Array(buffer);
    let offset = headerSize;
    for (let i = 0; i < n; i++) {
      const entry = found[i];
      if (entry === undefined) continue;
      const base = i * FIELDS;
      header[base + FIELD.CREATED_MS] = entry.createdMs;
      header[base + FIELD.OFFSET] = offset;
      header[base + FIELD.HEAD_LEN] = entry.head.byteLength;
      header[base + FIELD.VALUE_LEN] = entry.value.byteLength;
      bytes.set(entry.head, offset);
      offset += entry.head.byteLength;
      if (ops[i] === OP.GET) {
        bytes.set(entry.value, offset);
        offset += entry.value.byteLength;
      }
    }
    new Float64Array(buffer, 0, 1)[0] = this.id;
    bytes.set(new Uint8Array(header.buffer), RESULT_PREFIX_BYTES);
    return buffer;
  }
}

/** What a batch yields: the answer now (null when every op waits on the L2), and for ops waiting on the L2 a second answer later. */
export interface BatchOutcome {
  readonly now: ArrayBuffer | null;
  readonly later: Promise<ArrayBuffer> | null;
}

/** A shard's state and batch processing; lives in the worker that owns the shard. */
export class Shard {
  readonly l1: L1Partition;
  /** L2 reads in flight, by key: concurrent misses for one key share one read. */
  readonly #loads = new Map<string, Load>();
  /**
   * This shard's L2 writes in flight, by key. Another node's invalidation
   * that arrives while one is in flight may be for a write that Redis
   * applied after ours: then ours must not land in L1.
   */
  readonly #writes = new Map<string, { count: number; overtaken: boolean }>();
  constructor(
    readonly index: number,
    readonly counters: Counters,
    l1MaxBytes: number,
    /** Where hits are published for the front to serve without a hop; null to serve every read here. */
    readonly hot: HotIndexWriter | null = null,
    /** The L2 and the bus, or null for an L1-only node. */
    readonly l2: ShardL2 | null = null,
  ) {
    counters.incShard(index, SHARD_SLOT.WORKER_STARTS);
    this.l1 = new L1Partition({
      maxBytes: l1MaxBytes,
      // Without an L2 the L1 holds the only copy: everything written must be kept.
      admission: l2?.admission ?? 'lru',
      events: {
        evicted: (n) => counters.addShard(index, SHARD_SLOT.L1_EVICTIONS, n),
        expired: (n) => counters.addShard(index, SHARD_SLOT.L1_EXPIRATIONS, n),
        rejected: () => counters.incShard(index, SHARD_SLOT.L1_ADMISSION_REJECTS),
        ...(hot === null ? {} : { removed: (key: string) => hot.unpublish(key) }),
      },
    });
    this.publishGauges();
  }

  /** Applies the front's hot-index hits to LRU recency (and lazy expiry). */
  refreshTouched(): void {
    this.hot?.drainTouches(this.#touch);
  }

  readonly #touch = (key: string): void => {
    this.l1.get(key);
  };

  publishGauges(): void {
    const counters = this.counters;
    counters.setShard(this.index, SHARD_SLOT.L1_ITEMS, this.l1.items);
    counters.setShard(this.index, SHARD_SLOT.L1_BYTES, this.l1.bytes);
    counters.setShard(this.index, SHARD_SLOT.HOT_ARENA_TOUCHED_BYTES, this.hot?.touchedBytes ?? 0);
    const l2 = this.l2;
    if (l2 !== null) {
      counters.setShard(this.index, SHARD_SLOT.L2_READY, l2.store.ready ? 1 : 0);
      counters.setShard(this.index, SHARD_SLOT.L2_BREAKER, l2.store.breakerCode);
    }
  }

  /** Publishes this worker's memory: V8 heap and off-heap bytes (a few µs: once a second, not per batch). */
  publishMemory(): void {
    const counters = this.counters;
    // This isolate's heap only (process.memoryUsage() would also read the process's RSS from /proc).
    const heap = getHeapStatistics();
    counters.setShard(this.index, SHARD_SLOT.HEAP_USED_BYTES, heap.used_heap_size);
    counters.setShard(this.index, SHARD_SLOT.HEAP_TOTAL_BYTES, heap.total_heap_size);
    counters.setShard(this.index, SHARD_SLOT.EXTERNAL_BYTES, heap.external_memory);
    counters.setShard(this.index, SHARD_SLOT.SKETCH_BYTES, this.l1.sketchBytes);
  }

  /** Runs one batch: L1 work at once, L2 work (if any) answered later. */
  run(batch: Batch): BatchOutcome {
    const counters = this.counters;
    const start = performance.now();
    this.refreshTouched();
    const hot = this.hot;
    const s = this.index;
    const l1 = this.l1;
    const l2 = this.l2;
    const { ops, keys, puts } = batch;
    const n = ops.length;
    const now = new Answers(batch.id, ops, false);
    let later: Answers | null = null;
    const waits: Promise<void>[] = [];
    /** This batch's L1 misses that start a new L2 read: sent together after the loop. */
    const batchMisses: PendingLoad[] = [];
    const nowMs = Date.now();
    // Expiry on the clock the front reads (time origin + monotonic now), so both agree on it.
    const nowMono = performance.timeOrigin + start;
    let gets = 0;
    let hits = 0;
    let sets = 0;
    let putOps = 0;
    let deleteOps = 0;
    let removed = 0;

    for (let i = 0; i < n; i++) {
      const op = ops[i] as number;
      const key = keys[i] as string;
      if (op === OP.GET || op === OP.HEAD) {
        gets++;
        const entry = l1.get(key);
        if (entry !== undefined) {
          hits++;
          now.hit(i, entry);
          // Read once through the hop: publish it so the front serves the next reads itself.
          if (hot !== null && op === OP.GET && !hot.has(key)) {
            hot.publish(key, hashKey(key), hotHeadOf(entry.head), entry.value, entry.expiresMs, entry.createdMs);
          }
          continue;
        }
        if (l2 === null) continue; // STATUS.MISS is 0
        later ??= new Answers(batch.id, ops, true);
        now.set(i, STATUS.PENDING);
        waits.push(this.#readThrough(this.#loadFor(key, batchMisses), i, later));
      } else if (op === OP.PUT) {
        putOps++;
        const put = puts?.[i];
        if (put == null) throw new Error(`PUT op ${i} without arguments`);
        const etag = etagOf(put.value);
        // With an L2 this L1 keeps the value at most l1MaxTtl; the front's hot index reads this expiry too.
        const l1TtlMs = l2 === null ? put.ttlMs : Math.min(put.ttlMs, l2.l1MaxTtlMs);
        const entry = ownedEntry(headOf(put.contentType, etag, 'L1'), put.value, nowMs, nowMono + l1TtlMs, put.tags);
        if (l2 === null) {
          if (l1.set(key, entry, put.ttlMs)) {
            sets++;
            now.set(i, STATUS.STORED);
          } else {
            now.set(i, STATUS.TOO_LARGE);
          }
          continue;
        }
        later ??= new Answers(batch.id, ops, true);
        now.set(i, STATUS.PENDING);
        const l2Entry = { value: put.value, contentType: put.contentType, etag, createdMs: nowMs, expiresMs: nowMs + put.ttlMs, tags: put.tags };
        const announce = this.#announce(l2, BUS_KIND.KEYS, key);
        // A write that outlives its deadline may still land: then what L1 read meanwhile is old.
        const late = () => this.#drop(key);
        waits.push(this.#writeThrough(key, entry, l1TtlMs, () => l2.store.set(key, l2Entry, put.ttlMs, announce, late), i, later));
      } else if (op === OP.DELETE) {
        deleteOps++;
        const gone = this.#drop(key) ? 1 : 0;
        removed += gone;
        if (l2 === null) {
          now.set(i, STATUS.DONE, gone);
          continue;
        }
        later ??= new Answers(batch.id, ops, true);
        now.set(i, STATUS.PENDING);
        const late = () => this.#drop(key);
        waits.push(this.#removeThrough(() => l2.store.delete([key], this.#announce(l2, BUS_KIND.KEYS, key), late), BUS_KIND.KEYS, key, i, later));
      } else if (op === OP.INVALIDATE_TAG || op === OP.INVALIDATE_TAG_L1) {
        deleteOps++;
        const gone = this.#dropTagged(key);
        removed += gone;
        if (l2 === null) {
          now.set(i, STATUS.DONE, gone);
        } else if (op === OP.INVALIDATE_TAG_L1) {
          // The tag's own shard counts what the L2 held; the others only clean their L1.
          now.set(i, STATUS.DONE, 0);
        } else {
          later ??= new Answers(batch.id, ops, true);
          now.set(i, STATUS.PENDING);
          waits.push(this.#removeThrough(() => l2.store.deleteTags([key], this.#announce(l2, BUS_KIND.TAGS, key)), BUS_KIND.TAGS, key, i, later));
        }
      } else if (op === OP.DROP_TAG) {
        counters.addShard(s, SHARD_SLOT.L1_REMOTE_DROPS, this.#dropTagged(key));
        now.set(i, STATUS.DONE);
      } else if (op === OP.DROP) {
        const write = this.#writes.get(key);
        if (write !== undefined) write.overtaken = true;
        if (this.#drop(key)) counters.incShard(s, SHARD_SLOT.L1_REMOTE_DROPS);
        now.set(i, STATUS.DONE);
      } else if (op === OP.CLEAR) {
        for (const load of this.#loads.values()) load.stale = true;
        this.#loads.clear();
        for (const write of this.#writes.values()) write.overtaken = true;
        counters.addShard(s, SHARD_SLOT.L1_REMOTE_DROPS, l1.clear());
        now.set(i, STATUS.DONE);
      } else {
        throw new Error(`unknown op ${op}`);
      }
    }

    if (l2 !== null && batchMisses.length > 0) this.#readMany(batchMisses, l2);
    if (gets > 0) {
      counters.addShard(s, SHARD_SLOT.L1_GETS, gets);
      counters.addShard(s, SHARD_SLOT.L1_HITS, hits);
      counters.addShard(s, SHARD_SLOT.L1_MISSES, gets - hits);
    }
    if (sets > 0) counters.addShard(s, SHARD_SLOT.L1_SETS, sets);
    if (deleteOps > 0) counters.addShard(s, SHARD_SLOT.L1_DELETES, removed);
    if (putOps > 0 || deleteOps > 0) this.publishGauges();
    counters.incShard(s, SHARD_SLOT.BATCHES);
    counters.addShard(s, SHARD_SLOT.BATCH_OPS, n);
    const end = performance.now();
    counters.addShard(s, SHARD_SLOT.BUSY_NS, Math.round((end - start) * 1e6));
    // Latency of the batch's ops as the shard saw them: from the front closing the batch to done here.
    this.#observe(batch, now, end);
    const answered = later;
    return {
      // A batch of L1 misses only (the usual L2-hit batch) sends one message, not two.
      now: waits.length === n ? null : now.pack(),
      later:
        answered === null
          ? null
          : Promise.all(waits).then(() => {
              this.#observe(batch, answered, performance.now());
              this.publishGauges();
              return answered.pack();
            }),
    };
  }

  /** Records per-op latency (front closing the batch → answered here) for the ops `answers` answers. */
  #observe(batch: Batch, answers: Answers, end: number): void {
    const latencyNs = (performance.timeOrigin + end - batch.sentAtMs) * 1e6;
    const { ops, header } = answers;
    let gets = 0;
    let puts = 0;
    let deletes = 0;
    for (let i = 0; i < ops.length; i++) {
      if (header[i * FIELDS + FIELD.STATUS] === STATUS.PENDING) continue;
      const op = ops[i];
      if (op === OP.GET || op === OP.HEAD) gets++;
      else if (op === OP.PUT) puts++;
      else if (op === OP.DELETE || op === OP.INVALIDATE_TAG) deletes++;
    }
    const s = this.index;
    if (gets > 0) this.counters.observeShard(s, 'get', latencyNs, gets);
    if (puts > 0) this.counters.observeShard(s, 'put', latencyNs, puts);
    if (deletes > 0) this.counters.observeShard(s, 'delete', latencyNs, deletes);
  }

  /** L1 miss: wait for the key's L2 read (this batch's or one in flight), answer `x-cache: L2` on a hit. */
  #readThrough(load: Load, i: number, answers: Answers): Promise<void> {
    return load.promise.then(
      (hit) => {
        if (hit === null) answers.set(i, STATUS.MISS);
        else
          answers.hit(i, {
            head: headOf(hit.entry.contentType, hit.entry.etag, 'L2'),
            value: hit.entry.value,
            createdMs: hit.entry.createdMs,
          });
      },
      (err: L2UnavailableError) => answers.set(i, STATUS.L2_ERROR, kindIndex(err)),
    );
  }

  /**
   * The L2 read for key: one already in flight (joined, counted as
   * coalesced), or a new one that `#readMany` sends with the rest of the
   * batch's misses. A write or drop for the key while it is in flight keeps
   * its result out of L1.
   */
  #loadFor(key: string, batchMisses: PendingLoad[]): Load {
    const inFlight = this.#loads.get(key);
    if (inFlight !== undefined) {
      this.counters.incShard(this.index, SHARD_SLOT.LOADS_COALESCED);
      return inFlight;
    }
    let settle!: (hit: L2Hit | null) => void;
    let fail!: (err: unknown) => void;
    const promise = new Promise<L2Hit | null>((resolve, reject) => {
      settle = resolve;
      fail = reject;
    });
    // Joined reads may never look at a failure; this one is answered through them.
    promise.catch(() => {});
    const load: Load = { promise, stale: false };
    this.#loads.set(key, load);
    batchMisses.push({ key, load, settle, fail });
    return load;
  }

  /** Reads a batch's new misses from the L2 in one multi-key read (MGET per slot), then fills L1. */
  #readMany(misses: PendingLoad[], l2: ShardL2): void {
    const s = this.index;
    const counters = this.counters;
    counters.addShard(s, SHARD_SLOT.L2_GETS, misses.length);
    const started = performance.now();
    l2.store.mget(misses.map((m) => m.key)).then(
      (hits) => {
        this.#l2Done(started);
        for (let i = 0; i < misses.length; i++) {
          const { key, load, settle, fail } = misses[i] as PendingLoad;
          const hit = hits[i] ?? null;
          if (this.#loads.get(key) === load) this.#loads.delete(key);
          if (hit instanceof Error) {
            // This key's stored value is not one Strata can read; the batch's other keys are fine.
            this.#l2Failed(hit);
            fail(hit);
          } else if (hit === null) {
            counters.incShard(s, SHARD_SLOT.L2_MISSES);
            settle(null);
          } else {
            counters.incShard(s, SHARD_SLOT.L2_HITS);
            const ttlMs = Math.min(hit.ttlMs, l2.l1MaxTtlMs);
            if (!load.stale && ttlMs >= 1) {
              const entry = hit.entry;
              const expiresMs = performance.timeOrigin + performance.now() + ttlMs;
              this.l1.admit(key, ownedEntry(headOf(entry.contentType, entry.etag, 'L1'), entry.value, entry.createdMs, expiresMs, entry.tags), ttlMs);
            }
            settle(hit);
          }
        }
      },
      (err: L2UnavailableError) => {
        this.#l2Done(started);
        this.#l2Failed(err);
        for (const { key, load, fail } of misses) {
          if (this.#loads.get(key) === load) this.#loads.delete(key);
          fail(err);
        }
      },
    );
  }

  /** The bus message for a change, made (and counted) when the store publishes it. */
  #announce(l2: ShardL2, kind: typeof BUS_KIND.KEYS | typeof BUS_KIND.TAGS, item: string): Announce {
    return () => {
      this.counters.incShard(this.index, SHARD_SLOT.BUS_SENT);
      return l2.bus.next(kind, [item]);
    };
  }

  /** PUT: L2 and the bus message first, then L1; acknowledged only when all are done. */
  #writeThrough(key: string, entry: L1Entry, l1TtlMs: number, write: () => Promise<void>, i: number, answers: Answers): Promise<void> {
    const started = performance.now();
    const s = this.index;
    let pending = this.#writes.get(key);
    if (pending === undefined) {
      pending = { count: 0, overtaken: false };
      this.#writes.set(key, pending);
    }
    pending.count++;
    const record = pending;
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      if (--record.count === 0 && this.#writes.get(key) === record) this.#writes.delete(key);
    };
    return write()
      .then(() => {
        this.#l2Done(started);
        this.counters.incShard(s, SHARD_SLOT.L2_SETS);
        this.#forget(key);
        // Another node's write to this key may have landed in Redis after ours: then Redis, not this value, is current.
        if (record.overtaken) this.#drop(key);
        else if (this.l1.admit(key, entry, l1TtlMs)) this.counters.incShard(s, SHARD_SLOT.L1_SETS);
        done();
        answers.set(i, STATUS.STORED);
      })
      .then(
        () => {},
        (err: L2UnavailableError) => {
          done();
          // The write may or may not have reached Redis: this L1 must not keep the value it replaced.
          this.#drop(key);
          this.#l2Failed(err);
          answers.set(i, STATUS.L2_ERROR, kindIndex(err));
        },
      );
  }

  /** DELETE or tag invalidation: L2 and the bus message first, then L1 again; answers how many the L2 held. */
  #removeThrough(remove: () => Promise<number>, kind: BusKind, item: string, i: number, answers: Answers): Promise<void> {
    const started = performance.now();
    return remove().then(
      (count) => {
        this.#l2Done(started);
        // Reads that began before the L2 removal may have refilled L1 meanwhile.
        if (kind === BUS_KIND.KEYS) this.#drop(item);
        else this.#dropTagged(item);
        answers.set(i, STATUS.DONE, count);
      },
      (err: L2UnavailableError) => {
        this.#l2Failed(err);
        answers.set(i, STATUS.L2_ERROR, kindIndex(err));
      },
    );
  }

  /** Removes key from L1 and keeps an L2 read in flight for it from filling L1. */
  #drop(key: string): boolean {
    this.#forget(key);
    return this.l1.delete(key);
  }

  #dropTagged(tag: string): number {
    // Which in-flight reads and writes carry the tag is unknown here: none of them may fill L1.
    for (const load of this.#loads.values()) load.stale = true;
    this.#loads.clear();
    for (const write of this.#writes.values()) write.overtaken = true;
    return this.l1.deleteTagged(new Set([tag]));
  }

  #forget(key: string): void {
    const load = this.#loads.get(key);
    if (load === undefined) return;
    load.stale = true;
    this.#loads.delete(key);
  }

  #l2Done(started: number): void {
    this.counters.observeShard(this.index, 'l2', (performance.now() - started) * 1e6);
  }

  #l2Failed(err: L2UnavailableError): void {
    this.counters.incShard(this.index, SHARD_SLOT.L2_ERRORS + kindIndex(err));
  }
}

/** Index of an L2 failure's kind in L2_ERROR_KINDS (anything unexpected counts as a connection failure). */
function kindIndex(err: L2UnavailableError): number {
  const i = L2_ERROR_KINDS.indexOf(err?.kind);
  return i === -1 ? 1 : i;
}

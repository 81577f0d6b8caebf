import type { Counters } from '../counters/counters.js';
import { SHARD_SLOT } from '../counters/layout.js';
import type { HotIndexWriter } from '../l1/hot-index.js';
import { type L1Entry, L1Partition } from '../l1/partition.js';
import { etagOf } from './etag.js';
import { type Batch, FIELD, FIELDS, headerBytes, OP, STATUS } from './protocol.js';
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

/** A shard's state and batch processing; lives in the worker that owns the shard. */
export class Shard {
  readonly l1: L1Partition;
  constructor(
    readonly index: number,
    readonly counters: Counters,
    l1MaxBytes: number,
    /** Where hits are published for the front to serve without a hop; null to serve every read here. */
    readonly hot: HotIndexWriter | null = null,
  ) {
    counters.incShard(index, SHARD_SLOT.WORKER_STARTS);
    this.l1 = new L1Partition({
      maxBytes: l1MaxBytes,
      events: {
        evicted: (n) => counters.addShard(index, SHARD_SLOT.L1_EVICTIONS, n),
        expired: (n) => counters.addShard(index, SHARD_SLOT.L1_EXPIRATIONS, n),
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
  }

  /** Runs one batch; returns the result buffer (header, then header blocks and values). */
  run(batch: Batch): ArrayBuffer {
    const counters = this.counters;
    const start = performance.now();
    this.refreshTouched();
    const hot = this.hot;
    const s = this.index;
    const l1 = this.l1;
    const { ops, keys, puts } = batch;
    const n = ops.length;
    const found: (L1Entry | undefined)[] = new Array(n);
    const header = new Float64Array(n * FIELDS);
    const nowMs = Date.now();
    // Expiry on the clock the front reads (time origin + monotonic now), so both agree on it.
    const nowMono = performance.timeOrigin + start;
    let gets = 0;
    let hits = 0;
    let sets = 0;
    let putOps = 0;
    let deleteOps = 0;
    let removed = 0;
    let dataBytes = 0;

    for (let i = 0; i < n; i++) {
      const op = ops[i] as number;
      const key = keys[i] as string;
      const base = i * FIELDS;
      if (op === OP.GET || op === OP.HEAD) {
        gets++;
        const entry = l1.get(key);
        if (entry === undefined) continue; // STATUS.MISS is 0
        hits++;
        found[i] = entry;
        header[base + FIELD.STATUS] = STATUS.HIT;
        dataBytes += entry.head.byteLength + (op === OP.GET ? entry.value.byteLength : 0);
        // Read once through the hop: publish it so the front serves the next reads itself.
        if (hot !== null && op === OP.GET && !hot.has(key)) {
          hot.publish(key, hashKey(key), hotHeadOf(entry.head), entry.value, entry.expiresMs, entry.createdMs);
        }
      } else if (op === OP.PUT) {
        putOps++;
        const put = puts?.[i];
        if (put == null) throw new Error(`PUT op ${i} without arguments`);
        const entry: L1Entry = {
          value: put.value,
          head: asciiBytes(`${put.contentType}\r\netag: ${etagOf(put.value)}\r\nx-cache: L1`),
          createdMs: nowMs,
          expiresMs: nowMono + put.ttlMs,
          tags: put.tags,
        };
        if (l1.set(key, entry, put.ttlMs)) {
          sets++;
          header[base + FIELD.STATUS] = STATUS.STORED;
        } else {
          header[base + FIELD.STATUS] = STATUS.TOO_LARGE;
        }
      } else if (op === OP.DELETE) {
        deleteOps++;
        const gone = l1.delete(key) ? 1 : 0;
        removed += gone;
        header[base + FIELD.STATUS] = STATUS.DONE;
        header[base + FIELD.VALUE_LEN] = gone;
      } else if (op === OP.INVALIDATE_TAG) {
        deleteOps++;
        const gone = l1.deleteTagged(new Set([key]));
        removed += gone;
        header[base + FIELD.STATUS] = STATUS.DONE;
        header[base + FIELD.VALUE_LEN] = gone;
      } else {
        throw new Error(`unknown op ${op}`);
      }
    }

    const headerSize = headerBytes(n);
    const buffer = new ArrayBuffer(headerSize + dataBytes);
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
    bytes.set(new Uint8Array(header.buffer), 0);

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
    const latencyNs = (performance.timeOrigin + end - batch.sentAtMs) * 1e6;
    if (gets > 0) counters.observeShard(s, 'get', latencyNs, gets);
    if (putOps > 0) counters.observeShard(s, 'put', latencyNs, putOps);
    if (deleteOps > 0) counters.observeShard(s, 'delete', latencyNs, deleteOps);
    return buffer;
  }
}

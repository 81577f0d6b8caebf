import {
  HIST_BUCKETS,
  HIST_COUNT,
  HIST_OP_INDEX,
  HIST_OPS,
  HIST_SLOTS,
  HIST_SUM,
  type HistOp,
  type Layout,
  layoutFor,
  ORIGIN_SLOTS,
  ROUTE_INDEX,
  ROUTE_SLOTS,
  ROUTES,
  type Route,
  SHARD_SLOTS,
  STATUS_INDEX,
  STATUS_LABELS,
} from './layout.js';

/** Histogram bucket for a duration: the smallest i with ns ≤ 2^i µs, or HIST_BUCKETS past the last bound. */
export function bucketOf(ns: number): number {
  const us = Math.ceil(ns / 1000);
  if (us <= 1) return 0;
  const i = 32 - Math.clz32(us - 1);
  return Math.min(i, HIST_BUCKETS);
}

/** Upper bound of bucket i in seconds (for Prometheus `le`). */
export function bucketBoundSeconds(i: number): number {
  return 2 ** i / 1e6;
}

/** A histogram read out of the shared buffer. */
export interface HistogramSnapshot {
  /** Non-cumulative counts, HIST_BUCKETS + 1 entries (the last is +Inf only). */
  readonly buckets: number[];
  readonly sumSeconds: number;
  readonly count: number;
}

/**
 * View over the counters SharedArrayBuffer. Every thread builds one over the
 * same buffer; writes go through Atomics so readers in other threads see whole values.
 */
export class Counters {
  readonly buffer: SharedArrayBuffer;
  readonly layout: Layout;
  readonly #slots: BigUint64Array;
  /**
   * Counts this thread adds without Atomics (the front's hot-index hits, one
   * per request): visible to readers on this thread only, which is where
   * /metrics and /v1/stats are served.
   */
  readonly #local: Float64Array;

  constructor(shards: number, buffer?: SharedArrayBuffer, origins = 0) {
    this.layout = layoutFor(shards, origins);
    this.buffer = buffer ?? new SharedArrayBuffer(this.layout.total * 8);
    if (this.buffer.byteLength !== this.layout.total * 8) {
      throw new RangeError(`counters buffer is ${this.buffer.byteLength} bytes, layout needs ${this.layout.total * 8}`);
    }
    this.#slots = new BigUint64Array(this.buffer);
    this.#local = new Float64Array(shards * SHARD_SLOTS);
  }

  /** Adds one to a shard slot as seen from this thread only (see #local). */
  incLocal(shard: number, slot: number): void {
    const i = shard * SHARD_SLOTS + slot;
    this.#local[i] = (this.#local[i] as number) + 1;
  }

  /** Adds n to a shard slot (SHARD_SLOT.*). */
  addShard(shard: number, slot: number, n: number): void {
    Atomics.add(this.#slots, shard * SHARD_SLOTS + slot, BigInt(n));
  }

  /** Adds one to a shard slot; the common case, without a BigInt conversion. */
  incShard(shard: number, slot: number): void {
    Atomics.add(this.#slots, shard * SHARD_SLOTS + slot, 1n);
  }

  /** Sets a shard gauge slot. */
  setShard(shard: number, slot: number, value: number): void {
    Atomics.store(this.#slots, shard * SHARD_SLOTS + slot, BigInt(Math.max(0, value)));
  }

  shard(shard: number, slot: number): number {
    const i = shard * SHARD_SLOTS + slot;
    return Number(Atomics.load(this.#slots, i)) + (this.#local[i] as number);
  }

  /** Sum of a shard slot over all shards. */
  total(slot: number): number {
    let sum = 0;
    for (let s = 0; s < this.layout.shards; s++) sum += this.shard(s, slot);
    return sum;
  }

  /** Records `count` observations of `ns` each into shard `shard`'s histogram for `op`. */
  observeShard(shard: number, op: HistOp, ns: number, count = 1): void {
    this.#observe(this.layout.shardHistBase + (shard * HIST_OPS.length + HIST_OP_INDEX[op]) * HIST_SLOTS, ns, count);
  }

  /** Adds n to an origin rule's slot (ORIGIN_SLOT.*); every shard writes these, hence Atomics. */
  addOrigin(origin: number, slot: number, n = 1): void {
    Atomics.add(this.#slots, this.layout.originBase + origin * ORIGIN_SLOTS + slot, BigInt(n));
  }

  origin(origin: number, slot: number): number {
    return Number(Atomics.load(this.#slots, this.layout.originBase + origin * ORIGIN_SLOTS + slot));
  }

  /** Records one origin request's duration. */
  observeOrigin(origin: number, ns: number): void {
    this.#observe(this.layout.originHistBase + origin * HIST_SLOTS, ns, 1);
  }

  originHistogram(origin: number): HistogramSnapshot {
    return this.#histogram(this.layout.originHistBase + origin * HIST_SLOTS);
  }

  shardHistogram(shard: number, op: HistOp): HistogramSnapshot {
    return this.#histogram(this.layout.shardHistBase + (shard * HIST_OPS.length + HIST_OP_INDEX[op]) * HIST_SLOTS);
  }

  #observe(base: number, ns: number, count: number): void {
    const n = count === 1 ? 1n : BigInt(count);
    Atomics.add(this.#slots, base + bucketOf(ns), n);
    Atomics.add(this.#slots, base + HIST_SUM, BigInt(Math.round(ns)) * n);
    Atomics.add(this.#slots, base + HIST_COUNT, n);
  }

  #histogram(base: number): HistogramSnapshot {
    return readHistogram((i) => Number(Atomics.load(this.#slots, base + i)));
  }
}

function readHistogram(slot: (i: number) => number): HistogramSnapshot {
  const buckets: number[] = [];
  for (let i = 0; i <= HIST_BUCKETS; i++) buckets.push(slot(i));
  return { buckets, sumSeconds: slot(HIST_SUM) / 1e9, count: slot(HIST_COUNT) };
}

/**
 * The front's request counters: per route, answers by status and a
 * duration histogram. Written and read only on the main thread, so a plain
 * Float64Array (exact to 2^53) without Atomics.
 */
export class FrontCounters {
  readonly #slots = new Float64Array(ROUTES.length * ROUTE_SLOTS);
  /** Requests begun and not yet answered or aborted (shutdown waits for 0). */
  active = 0;

  /** Counts one answered request. */
  countRequest(route: Route, status: number, ns: number): void {
    const base = ROUTE_INDEX[route] * ROUTE_SLOTS;
    const code = base + (status >= 0 && status < 600 ? (STATUS_INDEX[status] as number) : STATUS_LABELS.length - 1);
    const slots = this.#slots;
    const h = base + STATUS_LABELS.length;
    slots[code] = (slots[code] as number) + 1;
    slots[h + bucketOf(ns)] = (slots[h + bucketOf(ns)] as number) + 1;
    slots[h + HIST_SUM] = (slots[h + HIST_SUM] as number) + ns;
    slots[h + HIST_COUNT] = (slots[h + HIST_COUNT] as number) + 1;
  }

  /** Requests on a route answered with a status (index into STATUS_LABELS). */
  requests(route: Route, statusIndex: number): number {
    return this.#slots[ROUTE_INDEX[route] * ROUTE_SLOTS + statusIndex] as number;
  }

  routeHistogram(route: Route): HistogramSnapshot {
    const h = ROUTE_INDEX[route] * ROUTE_SLOTS + STATUS_LABELS.length;
    return readHistogram((i) => this.#slots[h + i] as number);
  }
}

import {
  FALLBACK_SLOT,
  type FallbackReason,
  FRONT_HOT_SLOTS,
  FRONT_SLOT,
  type FrontLayout,
  frontLayoutFor,
  HIST_BUCKETS,
  HIST_COUNT,
  HIST_OP_INDEX,
  HIST_OPS,
  HIST_SLOTS,
  HIST_SUM,
  type HistOp,
  HOT_KEYS_BOARD_SLOTS,
  type Layout,
  layoutFor,
  ORIGIN_SLOTS,
  ROUTE_INDEX,
  ROUTE_SLOTS,
  ROUTES,
  type Route,
  SHARD_SLOT,
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

/** One of a shard's most read keys (src/l1/hot-keys.ts counts them; the shard publishes them here). */
export interface HotKey {
  readonly key: string;
  /** Estimated reads lately (a sampled count, scaled back up). */
  readonly estimate: number;
  /** How much of `estimate` may be overcount. */
  readonly error: number;
}

/** Keys longer than this are shown cut, with an ellipsis. */
const MAX_SHOWN_KEY_CHARS = 200;

/** A histogram in the same buckets kept by one thread, outside the shared buffers (the main thread's bus delay). */
export interface LocalHistogram extends HistogramSnapshot {
  readonly buckets: number[];
  sumSeconds: number;
  count: number;
}

/** An empty LocalHistogram. */
export function localHistogram(): LocalHistogram {
  return { buckets: new Array<number>(HIST_BUCKETS + 1).fill(0), sumSeconds: 0, count: 0 };
}

/** Records one observation of `ns` (negative counts as 0) into a LocalHistogram. */
export function observeInto(h: LocalHistogram, ns: number): void {
  const at = Math.max(0, ns);
  const bucket = bucketOf(at);
  h.buckets[bucket] = (h.buckets[bucket] as number) + 1;
  h.sumSeconds += at / 1e9;
  h.count++;
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
  /** On the main thread: the fronts' counters, whose hot-index hits count as their shards' L1 gets and hits. */
  #fronts: FrontTotals | null = null;

  constructor(shards: number, buffer?: SharedArrayBuffer, origins = 0) {
    this.layout = layoutFor(shards, origins);
    this.buffer = buffer ?? new SharedArrayBuffer(this.layout.total * 8);
    if (this.buffer.byteLength !== this.layout.total * 8) {
      throw new RangeError(`counters buffer is ${this.buffer.byteLength} bytes, layout needs ${this.layout.total * 8}`);
    }
    this.#slots = new BigUint64Array(this.buffer);
  }

  /** Adds the fronts' hot-index hits to the shards' L1 gets and hits as this view reads them. */
  includeFronts(fronts: FrontTotals): void {
    this.#fronts = fronts;
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
    const own = Number(Atomics.load(this.#slots, shard * SHARD_SLOTS + slot));
    const fronts = this.#fronts;
    if (fronts === null || (slot !== SHARD_SLOT.L1_GETS && slot !== SHARD_SLOT.L1_HITS)) return own;
    return own + fronts.hotHits(shard);
  }

  /** Sum of a shard slot over all shards. */
  total(slot: number): number {
    let sum = 0;
    for (let s = 0; s < this.layout.shards; s++) sum += this.shard(s, slot);
    return sum;
  }

  /** Records `count` observations of `ns` each into shard `shard`'s histogram for `op`. */
  observeShard(shard: number, op: HistOp, ns: number, count = 1): void {
    this.#observe(this.#shardHistBase(shard, op), ns, count);
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
    return this.#histogram(this.#shardHistBase(shard, op));
  }

  /** `op`'s histogram summed over every shard: the node's. */
  totalHistogram(op: HistOp): HistogramSnapshot {
    return readHistogram((i) => {
      let n = 0;
      for (let s = 0; s < this.layout.shards; s++) n += Number(Atomics.load(this.#slots, this.#shardHistBase(s, op) + i));
      return n;
    });
  }

  #shardHistBase(shard: number, op: HistOp): number {
    return this.layout.shardHistBase + (shard * HIST_OPS.length + HIST_OP_INDEX[op]) * HIST_SLOTS;
  }

  /**
   * Publishes shard `shard`'s hot keys (its worker only): as many of `keys`
   * (highest first) as fit on its board, as JSON `[[key, estimate, error], …]`,
   * between two increments of the board's sequence word (a seqlock: odd while
   * writing), so a reader never takes a half-written list.
   */
  publishHotKeys(shard: number, keys: readonly HotKey[]): void {
    const { words, bytes } = this.#board(shard);
    let json = '[';
    for (const k of keys) {
      const key = k.key.length > MAX_SHOWN_KEY_CHARS ? `${k.key.slice(0, MAX_SHOWN_KEY_CHARS)}…` : k.key;
      const item = `${json.length > 1 ? ',' : ''}${JSON.stringify([key, k.estimate, k.error])}`;
      if (Buffer.byteLength(json) + Buffer.byteLength(item) + 1 > bytes.byteLength) break;
      json += item;
    }
    json += ']';
    // Odd from here: a dead predecessor may have left the word odd, so it is set, not incremented.
    const seq = Atomics.load(words, 0);
    const writing = seq % 2 === 0 ? seq + 1 : seq + 2;
    Atomics.store(words, 0, writing);
    const { written } = new TextEncoder().encodeInto(json, bytes);
    Atomics.store(words, 1, written);
    Atomics.store(words, 0, writing + 1);
  }

  /** Shard `shard`'s last published hot keys ([] before the first, or if the board kept changing while read). */
  hotKeys(shard: number): HotKey[] {
    const { words, bytes } = this.#board(shard);
    for (let attempt = 0; attempt < 4; attempt++) {
      const before = Atomics.load(words, 0);
      if (before % 2 === 1) continue;
      const length = Atomics.load(words, 1);
      const copy = bytes.slice(0, Math.min(length, bytes.byteLength));
      if (Atomics.load(words, 0) !== before) continue;
      if (length === 0) return [];
      // The bytes are read without ordering against the sequence stores (plain reads): on a weakly ordered
      // CPU a torn copy could pass the check, so bytes that do not parse count as a board that changed.
      try {
        const items = JSON.parse(new TextDecoder().decode(copy)) as [string, number, number][];
        return items.map(([key, estimate, error]) => ({ key, estimate, error }));
      } catch {}
    }
    return [];
  }

  #board(shard: number): { words: Int32Array; bytes: Uint8Array } {
    const at = (this.layout.hotKeysBase + shard * HOT_KEYS_BOARD_SLOTS) * 8;
    return { words: new Int32Array(this.buffer, at, 2), bytes: new Uint8Array(this.buffer, at + 8, HOT_KEYS_BOARD_SLOTS * 8 - 8) };
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

/** The fronts' shared buffer for `fronts` fronts of a node with `shards` shards. */
export function allocateFrontCounters(fronts: number, shards: number): SharedArrayBuffer {
  return new SharedArrayBuffer(fronts * frontLayoutFor(shards).perFront * 8);
}

/**
 * One front's counters: its region of the fronts' buffer (layout.ts). While
 * the front runs only it writes them, with plain stores: one request costs no
 * Atomics. Once its thread has ended the supervisor clears its gauges (exited()).
 */
export class FrontCounters {
  readonly #slots: Float64Array;
  readonly #layout: FrontLayout;

  constructor(buffer: SharedArrayBuffer, front: number, shards: number) {
    this.#layout = frontLayoutFor(shards);
    const per = this.#layout.perFront;
    if (buffer.byteLength < (front + 1) * per * 8) throw new RangeError(`fronts buffer has no region for front ${front}`);
    this.#slots = new Float64Array(buffer, front * per * 8, per);
  }

  /** Marks the region as a new thread's: requests in flight of a dead predecessor no longer count. */
  started(threadId: number): void {
    const slots = this.#slots;
    slots[FRONT_SLOT.ACTIVE] = 0;
    slots[FRONT_SLOT.UTILIZATION] = 0;
    slots[FRONT_SLOT.LOOP_DELAY_P99] = 0;
    slots[FRONT_SLOT.THREAD_ID] = threadId;
    slots[FRONT_SLOT.STARTS] = (slots[FRONT_SLOT.STARTS] as number) + 1;
  }

  /** The front's thread has ended: nothing is in flight there any more (the supervisor calls this; the thread is gone). */
  exited(): void {
    const slots = this.#slots;
    slots[FRONT_SLOT.ACTIVE] = 0;
    slots[FRONT_SLOT.UTILIZATION] = 0;
    slots[FRONT_SLOT.LOOP_DELAY_P99] = 0;
  }

  /** Requests begun and not yet answered or aborted. */
  get active(): number {
    return this.#slots[FRONT_SLOT.ACTIVE] as number;
  }

  begin(): void {
    this.#slots[FRONT_SLOT.ACTIVE] = (this.#slots[FRONT_SLOT.ACTIVE] as number) + 1;
  }

  end(): void {
    this.#slots[FRONT_SLOT.ACTIVE] = (this.#slots[FRONT_SLOT.ACTIVE] as number) - 1;
  }

  /** The last second's event-loop utilization (0–1) and 99th-percentile event-loop delay (seconds). */
  setLoop(utilization: number, delayP99Seconds: number): void {
    this.#slots[FRONT_SLOT.UTILIZATION] = utilization;
    this.#slots[FRONT_SLOT.LOOP_DELAY_P99] = delayP99Seconds;
  }

  /** The front's V8 heap now: live, reserved and off-heap bytes. */
  setHeap(used: number, total: number, external: number): void {
    const slots = this.#slots;
    slots[FRONT_SLOT.HEAP_USED_BYTES] = used;
    slots[FRONT_SLOT.HEAP_TOTAL_BYTES] = total;
    slots[FRONT_SLOT.EXTERNAL_BYTES] = external;
  }

  /** A key request answered by its owner node through this front. */
  forwarded(): void {
    this.#bump(FRONT_SLOT.FORWARDED);
  }

  /** A key request the ring sent to another node, served here instead, and why. */
  forwardFallback(reason: FallbackReason): void {
    this.#bump(FALLBACK_SLOT[reason]);
  }

  /** A key request another node forwarded here. */
  servedForPeer(): void {
    this.#bump(FRONT_SLOT.SERVED_FOR_PEERS);
  }

  #bump(slot: number): void {
    this.#slots[slot] = (this.#slots[slot] as number) + 1;
  }

  /** One GET answered from shard `shard`'s hot-read index: an L1 get and hit of that shard. */
  hotHit(shard: number): void {
    const i = this.#layout.hotBase + shard * FRONT_HOT_SLOTS;
    this.#slots[i] = (this.#slots[i] as number) + 1;
  }

  /** Counts one answered request. */
  countRequest(route: Route, status: number, ns: number): void {
    const base = this.#layout.routeBase + ROUTE_INDEX[route] * ROUTE_SLOTS;
    const code = base + (status >= 0 && status < 600 ? (STATUS_INDEX[status] as number) : STATUS_LABELS.length - 1);
    const slots = this.#slots;
    const h = base + STATUS_LABELS.length;
    const bucket = h + bucketOf(ns);
    slots[code] = (slots[code] as number) + 1;
    slots[bucket] = (slots[bucket] as number) + 1;
    slots[h + HIST_SUM] = (slots[h + HIST_SUM] as number) + ns;
    slots[h + HIST_COUNT] = (slots[h + HIST_COUNT] as number) + 1;
  }
}

/** One front as the supervisor reports it. */
export interface FrontSnapshot {
  readonly front: number;
  readonly starts: number;
  readonly threadId: number;
  readonly utilization: number;
  /** The 99th percentile of its event-loop delay over the last second, seconds. */
  readonly loopDelayP99Seconds: number;
  readonly requestsInFlight: number;
  /** Requests this front answered (every route). */
  readonly requests: number;
  /** GETs it answered from the hot-read indexes. */
  readonly hotHits: number;
}

/** The main thread's reader of every front's region: sums for /metrics and /v1/stats, and each front apart. */
export class FrontTotals {
  readonly fronts: number;
  readonly #slots: Float64Array;
  readonly #layout: FrontLayout;

  constructor(buffer: SharedArrayBuffer, fronts: number, shards: number) {
    this.fronts = fronts;
    this.#layout = frontLayoutFor(shards);
    this.#slots = new Float64Array(buffer, 0, fronts * this.#layout.perFront);
  }

  /** Answers by route and status label, every front summed; routes and statuses with none left out. */
  requestCounts(): Partial<Record<Route, Record<string, number>>> {
    const out: Partial<Record<Route, Record<string, number>>> = {};
    for (const route of ROUTES) {
      STATUS_LABELS.forEach((code, i) => {
        const n = this.requests(route, i);
        if (n > 0) (out[route] ??= {})[code] = n;
      });
    }
    return out;
  }

  #sum(offset: number): number {
    const { perFront } = this.#layout;
    let sum = 0;
    for (let f = 0; f < this.fronts; f++) sum += this.#slots[f * perFront + offset] as number;
    return sum;
  }

  /** Requests in flight on every front. */
  get active(): number {
    return this.#sum(FRONT_SLOT.ACTIVE);
  }

  /** The fronts' V8 heaps, summed. */
  heap(): { used: number; total: number; external: number } {
    return { used: this.#sum(FRONT_SLOT.HEAP_USED_BYTES), total: this.#sum(FRONT_SLOT.HEAP_TOTAL_BYTES), external: this.#sum(FRONT_SLOT.EXTERNAL_BYTES) };
  }

  /** Requests on a route answered with a status (index into STATUS_LABELS), all fronts. */
  requests(route: Route, statusIndex: number): number {
    return this.#sum(this.#layout.routeBase + ROUTE_INDEX[route] * ROUTE_SLOTS + statusIndex);
  }

  routeHistogram(route: Route): HistogramSnapshot {
    const h = this.#layout.routeBase + ROUTE_INDEX[route] * ROUTE_SLOTS + STATUS_LABELS.length;
    return readHistogram((i) => this.#sum(h + i));
  }

  /** Owner forwarding, all fronts: forwarded and answered, served here in the owner's place (by reason), served for other nodes. */
  forwarding(): { forwarded: number; fallbacks: Record<FallbackReason, number>; servedForPeers: number } {
    return {
      forwarded: this.#sum(FRONT_SLOT.FORWARDED),
      fallbacks: {
        breaker: this.#sum(FALLBACK_SLOT.breaker),
        unreachable: this.#sum(FALLBACK_SLOT.unreachable),
        timeout: this.#sum(FALLBACK_SLOT.timeout),
      },
      servedForPeers: this.#sum(FRONT_SLOT.SERVED_FOR_PEERS),
    };
  }

  /** Hot-index hits of a shard's entries, all fronts (each one L1 get and hit). */
  hotHits(shard: number): number {
    return this.#sum(this.#layout.hotBase + shard * FRONT_HOT_SLOTS);
  }

  /** One front's gauges and totals. */
  front(f: number): FrontSnapshot {
    const { perFront, routeBase, hotBase, shards } = this.#layout;
    const base = f * perFront;
    const slot = (i: number) => this.#slots[base + i] as number;
    let requests = 0;
    for (let r = 0; r < ROUTES.length; r++) for (let s = 0; s < STATUS_LABELS.length; s++) requests += slot(routeBase + r * ROUTE_SLOTS + s);
    let hotHits = 0;
    for (let s = 0; s < shards; s++) hotHits += slot(hotBase + s * FRONT_HOT_SLOTS);
    return {
      front: f,
      starts: slot(FRONT_SLOT.STARTS),
      threadId: slot(FRONT_SLOT.THREAD_ID),
      utilization: slot(FRONT_SLOT.UTILIZATION),
      loopDelayP99Seconds: slot(FRONT_SLOT.LOOP_DELAY_P99),
      requestsInFlight: slot(FRONT_SLOT.ACTIVE),
      requests,
      hotHits,
    };
  }
}

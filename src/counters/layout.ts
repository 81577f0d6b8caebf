/**
 * Slot layouts of the two SharedArrayBuffers that hold the node's counters.
 *
 * The shards' buffer: one region per shard, written by that shard's worker
 * (and per-origin slots every shard adds to); all slots are 64-bit unsigned
 * (BigUint64Array) written with Atomics, so counters never wrap in practice.
 *
 * The fronts' buffer: one region per front (FRONT_SLOT gauges, then per
 * route the answers by status and a duration histogram, then the L1 hits the
 * front answered from each shard's hot-read index). Each region has one
 * writer at a time, its front (the supervisor clears the gauges of a front
 * whose thread has ended), which adds with plain Float64 stores (exact to 2^53; an
 * aligned 8-byte store is not torn on the platforms Node runs on), one per
 * request without Atomics. Readers on the main thread (metrics, stats) sum
 * the regions at scrape.
 */

/** Per-shard cache slots. Counters only grow; ITEMS and BYTES are gauges the shard stores. */
export const SHARD_SLOT = {
  /** GET/HEAD/mget lookups that reached this shard. */
  L1_GETS: 0,
  /** Lookups answered from L1. */
  L1_HITS: 1,
  /** Lookups that found nothing live in L1. */
  L1_MISSES: 2,
  /** Values stored (PUT). */
  L1_SETS: 3,
  /** Entries removed by DELETE or invalidate (present or not). */
  L1_DELETES: 4,
  /** Entries dropped to keep L1 under its byte budget. */
  L1_EVICTIONS: 5,
  /** Entries dropped because their TTL ran out. */
  L1_EXPIRATIONS: 6,
  /** Gauge: live entries in this shard's L1. */
  L1_ITEMS: 7,
  /** Gauge: bytes this shard's L1 charges against its budget. */
  L1_BYTES: 8,
  /** Batches (one per shard per front event-loop turn) the shard processed. */
  BATCHES: 9,
  /** Operations carried by those batches. */
  BATCH_OPS: 10,
  /** Nanoseconds the shard spent processing batches (utilization numerator). */
  BUSY_NS: 11,
  /** Times a worker started for this shard (1 + restarts). */
  WORKER_STARTS: 12,
  /** L1 misses this shard looked up in the L2 (one per key, coalesced or not). */
  L2_GETS: 13,
  /** L2 lookups that found a value. */
  L2_HITS: 14,
  /** L2 lookups that found nothing. */
  L2_MISSES: 15,
  /** Values written to the L2 (PUT). */
  L2_SETS: 16,
  /** L1 misses that joined an L2 read already in flight for the same key. */
  LOADS_COALESCED: 17,
  /** L2 failures by kind, in L2_ERROR_KINDS order (5 slots). */
  L2_ERRORS: 18,
  /** Gauge: 1 while this shard's L2 client is connected and ready. */
  L2_READY: 23,
  /** Gauge: this shard's L2 circuit breaker, 0 closed, 1 half-open, 2 open. */
  L2_BREAKER: 24,
  /** Invalidation messages this shard published on the bus. */
  BUS_SENT: 25,
  /** L1 entries dropped because another node invalidated them or the bus had a gap. */
  L1_REMOTE_DROPS: 26,
  /** Values from (or written to) the L2 that TinyLFU admission kept out of L1. */
  L1_ADMISSION_REJECTS: 27,
  /** Gauge: bytes of live objects in the shard worker's V8 heap (sampled once a second). */
  HEAP_USED_BYTES: 28,
  /** Gauge: bytes the shard worker's V8 heap has reserved (live objects, garbage and free space). */
  HEAP_TOTAL_BYTES: 29,
  /** Gauge: off-heap bytes the shard worker's V8 heap accounts for: chiefly the values its L1 holds. */
  EXTERNAL_BYTES: 30,
  /** Gauge: bytes of the hot-read arena the worker has written so far (the pages it touched). */
  HOT_ARENA_TOUCHED_BYTES: 31,
  /** Gauge: bytes of the TinyLFU frequency sketch (0 with lru admission). */
  SKETCH_BYTES: 32,
  /** Answers with a stale value (x-cache: STALE): stale-while-revalidate, stale-if-error, soft timeouts, lease waiters. */
  STALE_ANSWERS: 33,
  /** Refreshes started early by XFetch, before the value expired. */
  EARLY_REFRESHES: 34,
  /** Background refreshes of a stale value started (stale-while-revalidate, a soft timeout's load going on). */
  REFRESHES: 35,
  /** Reads that joined a load or lease wait already in flight for their key on this shard (in-node single-flight). */
  LOADS_JOINED: 36,
  /** Key locks this shard took: a load, or a lease handed to a client. */
  LOCKS_ACQUIRED: 37,
  /** Times this shard found a key's lock held elsewhere and waited for the fill. */
  LOCK_WAITS: 38,
  /** Locks taken over after the holder released or lost them without a fill (a dead or failed holder). */
  LOCK_TAKEOVERS: 39,
  /** Fills refused because the lock was no longer held (fencing: expired and taken over, or voided). */
  LOCKS_LOST: 40,
  /** Leases handed to cache-aside clients. */
  LEASES_GRANTED: 41,
  /** Lease fills stored. */
  LEASES_FILLED: 42,
  /** Lease fills refused with 409 E_LEASE_LOST (deleted or invalidated since, or expired). */
  LEASES_VOIDED: 43,
  /** Waits for another caller's fill that ended without one (lease waiters: 404 with Retry-After). */
  WAIT_TIMEOUTS: 44,
  /** Waits that ended with another holder's fill (often another node's). */
  REMOTE_FILLS: 45,
  /** Gauge: the shard worker's Linux thread id (0 elsewhere), for per-thread CPU from /proc. */
  THREAD_ID: 46,
  /** Gauge: the worker's event-loop utilization over its last second, in millionths (slots are integers). */
  LOOP_UTILIZATION_PPM: 47,
} as const;

/** Slots per shard; room is left for counters still to come. */
export const SHARD_SLOTS = 48;

/** L2 failure kinds, in slot order from SHARD_SLOT.L2_ERRORS (the `kind` label). */
export const L2_ERROR_KINDS = ['timeout', 'connection', 'cluster', 'reply', 'breaker'] as const;

/** Operations with their own latency histogram; `l2` is one L2 round trip (read, write or delete) as the shard saw it. */
export const HIST_OPS = ['get', 'put', 'delete', 'l2'] as const;
export type HistOp = (typeof HIST_OPS)[number];
export const HIST_OP_INDEX: Readonly<Record<HistOp, number>> = { get: 0, put: 1, delete: 2, l2: 3 };

/**
 * Histogram buckets: bucket i counts observations ≤ 2^i µs (1 µs … 2^23 µs ≈ 8.4 s),
 * bucket HIST_BUCKETS counts the rest; then the sum in ns and the count.
 */
export const HIST_BUCKETS = 24;
export const HIST_SUM = HIST_BUCKETS + 1;
export const HIST_COUNT = HIST_BUCKETS + 2;
export const HIST_SLOTS = HIST_BUCKETS + 3;

/** Front routes with their own request counters and duration histogram. */
export const ROUTES = ['get', 'head', 'put', 'delete', 'mget', 'invalidate', 'health', 'metrics', 'stats', 'cluster', 'dashboard', 'other'] as const;
export type Route = (typeof ROUTES)[number];
export const ROUTE_INDEX = Object.fromEntries(ROUTES.map((r, i) => [r, i])) as Readonly<Record<Route, number>>;

/** HTTP statuses counted per route (the `code` label); anything else counts as the last, "other". */
export const STATUS_CODES = [200, 204, 303, 304, 400, 401, 404, 405, 409, 413, 500, 502, 503, 504] as const;
export const STATUS_LABELS = [...STATUS_CODES.map(String), 'other'] as const;
/** Index into STATUS_LABELS by status code (0..599). */
export const STATUS_INDEX: Readonly<Int8Array> = (() => {
  const index = new Int8Array(600).fill(STATUS_CODES.length);
  STATUS_CODES.forEach((code, i) => {
    index[code] = i;
  });
  return index;
})();

/** Per-origin slots (one set per origin rule, written by every shard with Atomics). */
export const ORIGIN_SLOT = {
  /** Requests sent to the origin to read a value (loads and refreshes). */
  LOADS: 0,
  /** Loads answered with a value (200). */
  VALUES: 1,
  /** Conditional refreshes answered 304: the cached value was kept. */
  NOT_MODIFIED: 2,
  /** Loads answered 404/410 (cached as absent for negativeTtl). */
  NOT_FOUND: 3,
  /** Loads that failed: 5xx, an unexpected status, a value too large, no connection. */
  ERRORS: 4,
  /** Loads past timeoutMs. */
  TIMEOUTS: 5,
  /** Loads not started because maxConcurrent were in flight (503 E_ORIGIN_BUSY unless a stale copy served). */
  BUSY: 6,
  /** Write-through requests. */
  WRITES: 7,
  /** Write-through requests that failed (the cache was left untouched). */
  WRITE_ERRORS: 8,
} as const;
export const ORIGIN_SLOTS = 12;
/** The slot of each origin request outcome (the `result` label of strata_origin_requests_total). */
export const ORIGIN_RESULT_SLOTS = {
  value: ORIGIN_SLOT.VALUES,
  not_modified: ORIGIN_SLOT.NOT_MODIFIED,
  not_found: ORIGIN_SLOT.NOT_FOUND,
  error: ORIGIN_SLOT.ERRORS,
  timeout: ORIGIN_SLOT.TIMEOUTS,
  busy: ORIGIN_SLOT.BUSY,
} as const;

/**
 * Per shard, a board of bytes where its worker publishes its hot keys once a
 * second (counters.ts: a sequence word, a length word, then JSON), read by the
 * main thread for /v1/stats. 4 KiB: the top keys that fit.
 */
export const HOT_KEYS_BOARD_SLOTS = 512;

/** Where each region of the shared buffer starts, in slots, for a node with `shards` shards and `origins` origin rules. */
export function layoutFor(shards: number, origins = 0) {
  const shardBase = 0;
  const shardHistBase = shardBase + shards * SHARD_SLOTS;
  const originBase = shardHistBase + shards * HIST_OPS.length * HIST_SLOTS;
  const originHistBase = originBase + origins * ORIGIN_SLOTS;
  const hotKeysBase = originHistBase + origins * HIST_SLOTS;
  const total = hotKeysBase + shards * HOT_KEYS_BOARD_SLOTS;
  return { shards, origins, shardBase, shardHistBase, originBase, originHistBase, hotKeysBase, total } as const;
}

/** Slots per route in a front's region: answers by status, then a histogram. */
export const ROUTE_SLOTS = STATUS_LABELS.length + HIST_SLOTS;

/** Gauges and counters at the start of each front's region. */
export const FRONT_SLOT = {
  /** Gauge: requests begun and not yet answered or aborted (shutdown waits for 0). */
  ACTIVE: 0,
  /** Times a thread started as this front (1 + replacements). */
  STARTS: 1,
  /** Gauge: event-loop utilization over the last second, 0–1. */
  UTILIZATION: 2,
  /** Gauge: the front's Linux thread id (0 elsewhere), for per-thread CPU from /proc. */
  THREAD_ID: 3,
  /** Gauges: the front's V8 heap, bytes of live objects, reserved, and off-heap (sampled once a second). */
  HEAP_USED_BYTES: 4,
  HEAP_TOTAL_BYTES: 5,
  EXTERNAL_BYTES: 6,
  /** Key requests this front forwarded to their owner node and relayed its answer (docs/cluster.md). */
  FORWARDED: 7,
  /** Key requests the ring sent to another node but this one served: the owner's breaker was open… */
  FORWARD_BREAKER: 8,
  /** … the owner could not be reached … */
  FORWARD_UNREACHABLE: 9,
  /** … or did not answer within the forward deadline. */
  FORWARD_TIMEOUT: 10,
  /** Key requests another node forwarded here (x-strata-hop), served here. */
  SERVED_FOR_PEERS: 11,
  /** Gauge: the 99th percentile of the front's event-loop delay over the last second, seconds (timers late by that much). */
  LOOP_DELAY_P99: 12,
} as const;
const FRONT_GAUGES = 16;
/** The slot of each reason a forward fell back to serving here. */
export const FALLBACK_SLOT = {
  breaker: FRONT_SLOT.FORWARD_BREAKER,
  unreachable: FRONT_SLOT.FORWARD_UNREACHABLE,
  timeout: FRONT_SLOT.FORWARD_TIMEOUT,
} as const;
/** Why a key read the ring sends elsewhere was served here instead (the `result` of strata_forward_requests_total). */
export type FallbackReason = keyof typeof FALLBACK_SLOT;
/** Slots per shard in a front's region: the GETs it answered from that shard's hot-read index (each an L1 get and hit). */
export const FRONT_HOT_SLOTS = 1;

/** 64-byte cache lines of 8-byte slots. */
const SLOTS_PER_CACHE_LINE = 8;

/** Where each part of a front's region starts, in slots, for a node with `shards` shards. */
export function frontLayoutFor(shards: number) {
  const routeBase = FRONT_GAUGES;
  const hotBase = routeBase + ROUTES.length * ROUTE_SLOTS;
  // Each region starts on a cache line of its own: no front's per-request stores share a line with another's.
  const perFront = Math.ceil((hotBase + shards * FRONT_HOT_SLOTS) / SLOTS_PER_CACHE_LINE) * SLOTS_PER_CACHE_LINE;
  return { shards, routeBase, hotBase, perFront } as const;
}
export type FrontLayout = ReturnType<typeof frontLayoutFor>;
export type Layout = ReturnType<typeof layoutFor>;

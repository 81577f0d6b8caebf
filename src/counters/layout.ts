/**
 * Slot layout of the SharedArrayBuffer that holds the shards' counters. One
 * writer per region: shard s's worker writes region s. Readers on the main
 * thread (metrics, stats) use Atomics.load and need no message. The front's own
 * request counters live in a plain array on the main thread (FrontCounters).
 *
 * All slots are 64-bit unsigned (BigUint64Array): counters never wrap in practice.
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
} as const;

export const SHARD_SLOTS = 16;

/** Operations with their own latency histogram. */
export const HIST_OPS = ['get', 'put', 'delete'] as const;
export type HistOp = (typeof HIST_OPS)[number];
export const HIST_OP_INDEX: Readonly<Record<HistOp, number>> = { get: 0, put: 1, delete: 2 };

/**
 * Histogram buckets: bucket i counts observations ≤ 2^i µs (1 µs … 2^23 µs ≈ 8.4 s),
 * bucket HIST_BUCKETS counts the rest; then the sum in ns and the count.
 */
export const HIST_BUCKETS = 24;
export const HIST_SUM = HIST_BUCKETS + 1;
export const HIST_COUNT = HIST_BUCKETS + 2;
export const HIST_SLOTS = HIST_BUCKETS + 3;

/** Front routes with their own request counters and duration histogram. */
export const ROUTES = ['get', 'head', 'put', 'delete', 'mget', 'invalidate', 'health', 'metrics', 'stats', 'other'] as const;
export type Route = (typeof ROUTES)[number];
export const ROUTE_INDEX = Object.fromEntries(ROUTES.map((r, i) => [r, i])) as Readonly<Record<Route, number>>;

/** HTTP statuses counted per route (the `code` label); anything else counts as the last, "other". */
export const STATUS_CODES = [200, 204, 304, 400, 401, 404, 405, 413, 500, 503] as const;
export const STATUS_LABELS = [...STATUS_CODES.map(String), 'other'] as const;
/** Index into STATUS_LABELS by status code (0..599). */
export const STATUS_INDEX: Readonly<Int8Array> = (() => {
  const index = new Int8Array(600).fill(STATUS_CODES.length);
  STATUS_CODES.forEach((code, i) => {
    index[code] = i;
  });
  return index;
})();

/** Where each region of the shared buffer starts, in slots, for a node with `shards` shards. */
export function layoutFor(shards: number) {
  const shardBase = 0;
  const shardHistBase = shardBase + shards * SHARD_SLOTS;
  const total = shardHistBase + shards * HIST_OPS.length * HIST_SLOTS;
  return { shards, shardBase, shardHistBase, total } as const;
}

/** Slots of the front's own counters (main thread only, not shared): per route, statuses then a histogram. */
export const ROUTE_SLOTS = STATUS_LABELS.length + HIST_SLOTS;
export type Layout = ReturnType<typeof layoutFor>;

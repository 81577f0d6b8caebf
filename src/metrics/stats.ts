import { performance } from 'node:perf_hooks';
import type { StrataConfig } from '../config/schema.js';
import type { Counters, FrontSnapshot, FrontTotals, HistogramSnapshot } from '../counters/counters.js';
import { bucketBoundSeconds } from '../counters/counters.js';
import { HIST_BUCKETS, L2_ERROR_KINDS, ORIGIN_SLOT, ROUTES, SHARD_SLOT } from '../counters/layout.js';
import type { PostgresStatus } from '../invalidation/postgres.js';
import type { BusCounts, L2Status } from '../l2/node-link.js';
import type { OriginSlots } from '../origin/slots.js';
import { linuxThreadId } from '../thread-id.js';
import { VERSION } from '../version.js';

/** L1 counters of one shard or of the node. */
export interface LevelStats {
  gets: number;
  hits: number;
  misses: number;
  /** hits / gets, 0 when there were none. */
  hitRate: number;
  sets: number;
  deletes: number;
  evictions: number;
  expirations: number;
  items: number;
  bytes: number;
}

/** L2 counters of one shard or of the node. */
export interface L2LevelStats {
  /** L1 misses looked up in the L2 (one read per key; joined misses not counted again). */
  gets: number;
  hits: number;
  misses: number;
  /** hits / gets, 0 when there were none. */
  hitRate: number;
  sets: number;
  /** L1 misses that joined an L2 read already in flight. */
  coalesced: number;
  /** Values from the L2 that admission kept out of a full L1. */
  admissionRejects: number;
  errors: Record<string, number>;
}

function l2LevelOf(read: (slot: number) => number): L2LevelStats {
  const gets = read(SHARD_SLOT.L2_GETS);
  const hits = read(SHARD_SLOT.L2_HITS);
  return {
    gets,
    hits,
    misses: read(SHARD_SLOT.L2_MISSES),
    hitRate: gets === 0 ? 0 : hits / gets,
    sets: read(SHARD_SLOT.L2_SETS),
    coalesced: read(SHARD_SLOT.LOADS_COALESCED),
    admissionRejects: read(SHARD_SLOT.L1_ADMISSION_REJECTS),
    errors: Object.fromEntries(L2_ERROR_KINDS.map((kind, i) => [kind, read(SHARD_SLOT.L2_ERRORS + i)])),
  };
}

/**
 * A latency histogram as /v1/stats reports it: the count, the mean and
 * percentiles in seconds (interpolated within the power-of-two bucket that
 * holds them, so within a factor of 2; past the last bound, that bound), and
 * the buckets themselves (non-cumulative counts; bucket i holds observations
 * up to `2^i` µs, the last one the rest) so a reader can take percentiles of
 * the difference of two snapshots: the latency of a window.
 */
export interface LatencyStats {
  count: number;
  meanSeconds: number;
  p50Seconds: number;
  p90Seconds: number;
  p99Seconds: number;
  p999Seconds: number;
  buckets: number[];
}

/** The q-quantile (0..1) of a histogram's non-cumulative bucket counts, in seconds; 0 when it is empty. */
export function quantileSeconds(buckets: readonly number[], q: number): number {
  let count = 0;
  for (const b of buckets) count += b;
  if (count === 0) return 0;
  const rank = q * count;
  let seen = 0;
  for (let i = 0; i < buckets.length; i++) {
    const n = buckets[i] as number;
    if (n > 0 && seen + n >= rank) {
      if (i >= HIST_BUCKETS) return bucketBoundSeconds(HIST_BUCKETS - 1);
      const low = i === 0 ? 0 : bucketBoundSeconds(i - 1);
      return low + (bucketBoundSeconds(i) - low) * ((rank - seen) / n);
    }
    seen += n;
  }
  return bucketBoundSeconds(HIST_BUCKETS - 1);
}

export function latencyOf(h: HistogramSnapshot): LatencyStats {
  return {
    count: h.count,
    meanSeconds: h.count === 0 ? 0 : h.sumSeconds / h.count,
    p50Seconds: quantileSeconds(h.buckets, 0.5),
    p90Seconds: quantileSeconds(h.buckets, 0.9),
    p99Seconds: quantileSeconds(h.buckets, 0.99),
    p999Seconds: quantileSeconds(h.buckets, 0.999),
    buckets: h.buckets,
  };
}

/** Hot keys /v1/stats lists, over every shard. */
const HOT_KEYS_LISTED = 20;

/** A per-second rate sample of one shard. */
interface Rate {
  opsPerSecond: number;
  /** Share of wall time the shard spent on batches, 0..1. */
  utilization: number;
}

function levelOf(read: (slot: number) => number): LevelStats {
  const gets = read(SHARD_SLOT.L1_GETS);
  const hits = read(SHARD_SLOT.L1_HITS);
  return {
    gets,
    hits,
    misses: read(SHARD_SLOT.L1_MISSES),
    hitRate: gets === 0 ? 0 : hits / gets,
    sets: read(SHARD_SLOT.L1_SETS),
    deletes: read(SHARD_SLOT.L1_DELETES),
    evictions: read(SHARD_SLOT.L1_EVICTIONS),
    expirations: read(SHARD_SLOT.L1_EXPIRATIONS),
    items: read(SHARD_SLOT.L1_ITEMS),
    bytes: read(SHARD_SLOT.L1_BYTES),
  };
}

/** What the stats are read from. */
export interface StatsOptions {
  readonly counters: Counters;
  readonly fronts: FrontTotals;
  /** Whether a shard has a live worker now. */
  readonly pool: { isUp(shard: number): boolean };
  readonly config: StrataConfig;
  /** The L2's state now. @default not configured */
  readonly l2Status?: () => L2Status;
  /** Bus counts of the main thread's subscription; null without an L2. @default null */
  readonly bus?: BusCounts | null;
  /** Shared memory of one shard's hot-read index (arena, slots, touch ring), allocated per worker. */
  readonly hotIndexBytesPerShard: number;
  /** How often rates are sampled, ms. @default 1000 */
  readonly sampleMs?: number;
  /** In-flight origin requests per rule. @default null */
  readonly originSlots?: OriginSlots | null;
  /** The PostgreSQL invalidation listener, if configured. @default null */
  readonly postgres?: { status(): PostgresStatus } | null;
  /** This node's id (config.nodeId, or the one derived from host name and port). @default config.nodeId */
  readonly nodeId?: string;
}

/** V8 heap figures of one thread (or a sum of threads), bytes. */
export interface HeapStats {
  /** Live objects. */
  used: number;
  /** Reserved by the heap: live objects, garbage not yet collected and free space. */
  total: number;
  /** Off-heap memory the heap accounts for (ArrayBuffers: the L1's values in a shard worker). */
  external: number;
}

/**
 * Where the node's memory goes, as far as it can count it (docs/memory.md).
 * `rssBytes` is what the OS charges the process; the parts below are
 * measured, not estimated, and overlap: a value in L1 is in `l1ChargedBytes`
 * and in the shard heaps' `external`.
 */
export interface MemoryStats {
  /** Resident memory of the whole process (all threads). */
  rssBytes: number;
  /** The configured L1 budget (l1MaxBytes). */
  l1BudgetBytes: number;
  /** What the L1 partitions charge against it now: keys, values, header blocks and a fixed overhead per entry. */
  l1ChargedBytes: number;
  /** Hot-read indexes: shared memory reserved, and the part written so far (only that is resident). */
  hotIndex: { reservedBytes: number; touchedBytes: number };
  /** TinyLFU frequency sketches. */
  sketchBytes: number;
  /** V8 heaps: the main thread's (the supervisor), the fronts' summed, and the shard workers' summed. */
  heap: { main: HeapStats; fronts: HeapStats; shards: HeapStats };
}

/**
 * Reads the shared counters into /v1/stats JSON, and samples them once a
 * second for rates (ops/s, shard utilization, front event-loop utilization).
 */
export class StatsReporter {
  readonly #counters: Counters;
  readonly #pool: { isUp(shard: number): boolean };
  readonly #config: StrataConfig;
  readonly #fronts: FrontTotals;
  readonly #mainThreadId = linuxThreadId();
  /** When the node started, ms since the Unix epoch. */
  readonly startedMs = Date.now();
  readonly #timer: NodeJS.Timeout;
  #lastAt = performance.now();
  #lastOps: number[];
  #lastBusyNs: number[];
  #rates: Rate[];

  readonly #l2Status: () => L2Status;
  readonly #bus: BusCounts | null;
  readonly #hotIndexBytes: number;
  readonly #originSlots: OriginSlots | null;
  readonly #postgres: { status(): PostgresStatus } | null;
  readonly #nodeId: string;

  constructor(options: StatsOptions) {
    const { counters, fronts, pool, config, sampleMs = 1000 } = options;
    this.#l2Status = options.l2Status ?? (() => ({ configured: false, up: false }));
    this.#bus = options.bus ?? null;
    this.#hotIndexBytes = options.hotIndexBytesPerShard;
    this.#originSlots = options.originSlots ?? null;
    this.#postgres = options.postgres ?? null;
    this.#nodeId = options.nodeId ?? config.nodeId;
    this.#counters = counters;
    this.#fronts = fronts;
    this.#pool = pool;
    this.#config = config;
    const n = config.shards;
    this.#lastOps = Array.from({ length: n }, (_, s) => counters.shard(s, SHARD_SLOT.BATCH_OPS));
    this.#lastBusyNs = Array.from({ length: n }, (_, s) => counters.shard(s, SHARD_SLOT.BUSY_NS));
    this.#rates = Array.from({ length: n }, () => ({ opsPerSecond: 0, utilization: 0 }));
    this.#timer = setInterval(() => this.sample(), sampleMs);
    this.#timer.unref();
  }

  /** Takes a rate sample now. */
  sample(): void {
    const now = performance.now();
    const seconds = (now - this.#lastAt) / 1000;
    if (seconds <= 0) return;
    for (let s = 0; s < this.#config.shards; s++) {
      const ops = this.#counters.shard(s, SHARD_SLOT.BATCH_OPS);
      const busy = this.#counters.shard(s, SHARD_SLOT.BUSY_NS);
      this.#rates[s] = {
        opsPerSecond: (ops - (this.#lastOps[s] as number)) / seconds,
        utilization: Math.min(1, (busy - (this.#lastBusyNs[s] as number)) / 1e9 / seconds),
      };
      this.#lastOps[s] = ops;
      this.#lastBusyNs[s] = busy;
    }
    this.#lastAt = now;
  }

  /** Each front: requests, requests in flight, event-loop utilization over the last second. */
  #frontSnapshots(): FrontSnapshot[] {
    return Array.from({ length: this.#fronts.fronts }, (_, f) => this.#fronts.front(f));
  }

  /** Utilization of each shard over the last sample period. */
  shardUtilization(): readonly number[] {
    return this.#rates.map((r) => r.utilization);
  }

  snapshot() {
    const c = this.#counters;
    const shards = Array.from({ length: this.#config.shards }, (_, s) => ({
      shard: s,
      up: this.#pool.isUp(s),
      workerStarts: c.shard(s, SHARD_SLOT.WORKER_STARTS),
      batches: c.shard(s, SHARD_SLOT.BATCHES),
      opsPerBatch: c.shard(s, SHARD_SLOT.BATCH_OPS) / Math.max(1, c.shard(s, SHARD_SLOT.BATCHES)),
      opsPerSecond: Math.round((this.#rates[s] as Rate).opsPerSecond),
      utilization: (this.#rates[s] as Rate).utilization,
      /** The worker's event-loop utilization over its last second (batches, L2 and origin callbacks, timers). */
      eventLoopUtilization: c.shard(s, SHARD_SLOT.LOOP_UTILIZATION_PPM) / 1e6,
      l1: levelOf((slot) => c.shard(s, slot)),
      ...(this.#bus === null ? {} : { l2: l2LevelOf((slot) => c.shard(s, slot)), l2Breaker: c.shard(s, SHARD_SLOT.L2_BREAKER) }),
    }));
    const total = levelOf((slot) => c.total(slot));
    const fronts = this.#frontSnapshots();
    const l2 = this.#l2Status();
    const main = process.memoryUsage();
    const memory: MemoryStats = {
      rssBytes: main.rss,
      l1BudgetBytes: this.#config.l1MaxBytes,
      l1ChargedBytes: total.bytes,
      hotIndex: { reservedBytes: this.#hotIndexBytes * this.#config.shards, touchedBytes: c.total(SHARD_SLOT.HOT_ARENA_TOUCHED_BYTES) },
      sketchBytes: c.total(SHARD_SLOT.SKETCH_BYTES),
      heap: {
        main: { used: main.heapUsed, total: main.heapTotal, external: main.external },
        fronts: this.#fronts.heap(),
        shards: { used: c.total(SHARD_SLOT.HEAP_USED_BYTES), total: c.total(SHARD_SLOT.HEAP_TOTAL_BYTES), external: c.total(SHARD_SLOT.EXTERNAL_BYTES) },
      },
    };
    const shardOp = (op: 'get' | 'put' | 'delete' | 'l2') => latencyOf(c.totalHistogram(op));
    /** Answers by route and status (routes and statuses with none left out). */
    const requests = this.#fronts.requestCounts();
    let requestsTotal = 0;
    for (const codes of Object.values(requests)) for (const n of Object.values(codes)) requestsTotal += n;
    const latency = {
      /** From request to response, by route (the front's view). */
      routes: Object.fromEntries(ROUTES.map((route) => [route, latencyOf(this.#fronts.routeHistogram(route))])),
      /** From the front batching an op to its shard finishing it. */
      shardOps: { get: shardOp('get'), put: shardOp('put'), delete: shardOp('delete') },
      /** One L2 operation as the shards saw it. */
      l2: shardOp('l2'),
      origins: Object.fromEntries(this.#config.origins.map((rule, o) => [rule.name, latencyOf(c.originHistogram(o))])),
    };
    return {
      /** When the snapshot was taken, ms since the Unix epoch (rates are differences of two snapshots over their times). */
      timeMs: Date.now(),
      uptimeSeconds: Math.floor((Date.now() - this.startedMs) / 1000),
      /** `startedMs` tells one run of the node from the next (the id stays across restarts). */
      node: { id: this.#nodeId, version: VERSION, startedMs: this.startedMs },
      config: { fronts: this.#config.fronts, shards: this.#config.shards, l1MaxBytes: this.#config.l1MaxBytes, l2: l2.configured ? l2.mode : null },
      levels: this.#bus === null ? { L1: total } : { L1: total, L2: l2LevelOf((slot) => c.total(slot)) },
      l2:
        this.#bus === null
          ? l2
          : {
              ...l2,
              bus: {
                received: this.#bus.received,
                gaps: this.#bus.gaps,
                sent: c.total(SHARD_SLOT.BUS_SENT),
                l1Drops: c.total(SHARD_SLOT.L1_REMOTE_DROPS),
                /** From publishing to receiving back, this node's own messages. */
                delay: latencyOf(this.#bus.delay),
              },
            },
      /** Answers since start, every route and status. */
      requestsTotal,
      requests,
      latency,
      opsPerSecond: shards.reduce((sum, s) => sum + s.opsPerSecond, 0),
      /** Requests begun and not yet answered, on every front, this one included. */
      requestsInFlight: this.#fronts.active,
      /** Mean event-loop utilization of the fronts over the last second. */
      frontUtilization: fronts.reduce((sum, f) => sum + f.utilization, 0) / Math.max(1, fronts.length),
      origins: this.#config.origins.map((rule, o) => ({
        name: rule.name,
        prefix: rule.prefix,
        loads: c.origin(o, ORIGIN_SLOT.LOADS),
        values: c.origin(o, ORIGIN_SLOT.VALUES),
        notModified: c.origin(o, ORIGIN_SLOT.NOT_MODIFIED),
        notFound: c.origin(o, ORIGIN_SLOT.NOT_FOUND),
        errors: c.origin(o, ORIGIN_SLOT.ERRORS),
        timeouts: c.origin(o, ORIGIN_SLOT.TIMEOUTS),
        busy: c.origin(o, ORIGIN_SLOT.BUSY),
        writes: c.origin(o, ORIGIN_SLOT.WRITES),
        writeErrors: c.origin(o, ORIGIN_SLOT.WRITE_ERRORS),
        inFlight: this.#originSlots?.inFlight(o) ?? 0,
      })),
      coordination: {
        staleAnswers: c.total(SHARD_SLOT.STALE_ANSWERS),
        earlyRefreshes: c.total(SHARD_SLOT.EARLY_REFRESHES),
        refreshes: c.total(SHARD_SLOT.REFRESHES),
        loadsJoined: c.total(SHARD_SLOT.LOADS_JOINED),
        remoteFills: c.total(SHARD_SLOT.REMOTE_FILLS),
        locks: {
          acquired: c.total(SHARD_SLOT.LOCKS_ACQUIRED),
          waited: c.total(SHARD_SLOT.LOCK_WAITS),
          takeovers: c.total(SHARD_SLOT.LOCK_TAKEOVERS),
          lost: c.total(SHARD_SLOT.LOCKS_LOST),
        },
        leases: {
          granted: c.total(SHARD_SLOT.LEASES_GRANTED),
          filled: c.total(SHARD_SLOT.LEASES_FILLED),
          voided: c.total(SHARD_SLOT.LEASES_VOIDED),
          waitTimeouts: c.total(SHARD_SLOT.WAIT_TIMEOUTS),
        },
      },
      ...(this.#postgres === null ? {} : { postgres: this.#postgres.status() }),
      memory,
      /**
       * The most read keys lately, over every shard, highest first (a random
       * sample of the reads each shard sees, space-saving counters: within
       * the sample `estimate` may overcount by `error`, never under; see
       * docs/dashboard.md for the reads a shard does not see). /v1/stats is
       * guarded by the tokens when the node has them, so keys are shown to
       * their holders only.
       */
      hotKeys: shards
        .flatMap((s) => c.hotKeys(s.shard).map((k) => ({ ...k, shard: s.shard })))
        .sort((a, b) => b.estimate - a.estimate)
        .slice(0, HOT_KEYS_LISTED),
      fronts: fronts.map(({ threadId: _, ...front }) => front),
      shards,
      /** Linux thread ids (0 where unknown), for per-thread CPU from /proc/PID/task/TID/stat. */
      threads: {
        main: this.#mainThreadId,
        fronts: fronts.map((f) => f.threadId),
        shards: shards.map((s) => c.shard(s.shard, SHARD_SLOT.THREAD_ID)),
      },
    };
  }

  close(): void {
    clearInterval(this.#timer);
  }
}

/**
 * The many-core projection of bench:cores: from the CPU one request costs
 * each role of the node, the throughput of F fronts and S shards on N cores.
 *
 * Model. A request costs c_f CPU-seconds on a front, c_s on a shard and c_o
 * elsewhere in the process (the main thread, V8's GC and compiler threads,
 * libuv). Fronts share the load evenly, and so do shards; each front and each
 * shard has at most one core, and all the process's threads together have N:
 *
 *   throughput(F, S, N) = min(F / c_f, S / c_s, N / (c_f + c_s + c_o)),  F ≥ 1, S ≥ 1, F + S ≤ N
 *
 * (with N = 1 the one front and one shard share the core: 1 / (c_f + c_s + c_o),
 * the measured requests per CPU-second). The best split is the F, S with the
 * highest throughput, the fewest threads among equals.
 *
 * Assumed: costs per request do not change with N (linear scaling); no limit
 * from memory bandwidth, the NIC, the kernel's accept and network stack, or
 * the load generator; no contention between fronts in the lock-free hot-read
 * index; connections spread evenly over the fronts (SO_REUSEPORT hashes
 * connections, not requests); Redis is not the limit (see redisCeiling).
 */

import { defaultFrontsFor, defaultShardsFor } from '../src/config/schema.js';

/** CPU-seconds one request costs, by where it is spent. */
export interface RequestCost {
  front: number;
  shard: number;
  /** Main thread, V8 helper threads, libuv and other threads of the process. */
  other: number;
}

export interface Split {
  cores: number;
  fronts: number;
  shards: number;
  requestsPerSecond: number;
  /** Which term of the min() binds. */
  limit: 'fronts' | 'shards' | 'cores';
}

/** Throughput of `fronts` fronts and `shards` shards on `cores` cores, and what limits it. */
export function throughput(cost: RequestCost, cores: number, fronts: number, shards: number): Split {
  const byFronts = cost.front > 0 ? fronts / cost.front : Number.POSITIVE_INFINITY;
  const byShards = cost.shard > 0 ? shards / cost.shard : Number.POSITIVE_INFINITY;
  const byCores = cores / (cost.front + cost.shard + cost.other);
  const requestsPerSecond = Math.min(byFronts, byShards, byCores);
  const limit = requestsPerSecond === byCores ? 'cores' : requestsPerSecond === byFronts ? 'fronts' : 'shards';
  return { cores, fronts, shards, requestsPerSecond, limit };
}

/** The best split of `cores` cores into fronts and shards (F + S ≤ cores; on one core one of each, sharing it). */
export function bestSplit(cost: RequestCost, cores: number): Split {
  if (cores < 1 || !Number.isInteger(cores)) throw new RangeError(`cores must be a positive integer, got ${cores}`);
  if (cores === 1) return throughput(cost, 1, 1, 1);
  let best = throughput(cost, cores, 1, 1);
  // By thread count first, so that among equal throughputs the fewest threads win.
  for (let threads = 3; threads <= cores; threads++) {
    for (let fronts = 1; fronts < threads; fronts++) {
      const split = throughput(cost, cores, fronts, threads - fronts);
      if (split.requestsPerSecond > best.requestsPerSecond * (1 + 1e-9)) best = split;
    }
  }
  return best;
}

/**
 * The node's default split on `cores` cores (src/config/schema.ts: fronts
 * max(1, round(0.6 × cores)), shards max(1, cores − 1)). It oversubscribes
 * (F + S > N): idle threads sleep, so the same min() applies, with each
 * thread still at most one core.
 */
export function defaultSplit(cost: RequestCost, cores: number): Split {
  return throughput(cost, cores, defaultFrontsFor(cores), defaultShardsFor(cores));
}

/** What one single-threaded redis-server can serve, from its CPU-seconds per request; Infinity when the load does not reach it. */
export function redisCeiling(redisSecondsPerRequest: number): number {
  return redisSecondsPerRequest > 1e-9 ? 1 / redisSecondsPerRequest : Number.POSITIVE_INFINITY;
}

/** The model as text, for the benchmark's output. */
export const MODEL_TEXT = [
  'model: a request costs c_f CPU-s on a front, c_s on a shard, c_o elsewhere (main, V8 helpers, libuv), measured per thread from /proc;',
  '  with F fronts and S shards on N cores: throughput = min(F / c_f, S / c_s, N / (c_f + c_s + c_o)), F + S <= N, best F/S per load.',
  '  assumes linear scaling, no memory-bandwidth, NIC, kernel-accept or load-generator limit, no contention in the hot-read index,',
  '  connections spread evenly over fronts; a single redis-server caps L2 hits and PUTs at 1 / (its CPU-s per request), shown apart.',
].join('\n');

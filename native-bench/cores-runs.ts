/** What bench:cores measures and projects, shared by the benchmark (cores.ts) and its figure (cores-figure.ts). */
import type { Measured } from './harness.js';
import type { RequestCost, Split } from './projection.js';
import type { Role } from './threads.js';

export type LoadName = 'GET hits' | 'L2 hits' | 'PUTs';
export const LOADS: readonly LoadName[] = ['GET hits', 'L2 hits', 'PUTs'];

/** fronts × shards. */
export interface Config {
  fronts: number;
  shards: number;
}

export const configName = (c: Config) => `${c.fronts}×${c.shards}`;

/** One load measured on one configuration. */
export interface LoadRun extends Config, Measured {
  load: LoadName;
  round: number;
  /** Server CPU per request by thread role, µs. */
  usPerRequest: Record<Role, number>;
  /** CPU per request of each front thread and of each shard thread, µs (how evenly the work spread). */
  perThreadUs: { fronts: number[]; shards: number[] };
  /** Operations per batch the shards took: how many requests one hop from a front carried. */
  opsPerBatch: number;
  /** redis-server's CPU per request, µs. */
  redisUsPerRequest: number;
  /** L1 hits / GETs during the run (GET loads). */
  l1HitRatio: number | null;
  /**
   * GETs the node counted / requests wrk completed (GET loads): about 1 when
   * /v1/stats sees every front's hits; far below, the hit ratio is not to be trusted.
   */
  getsCounted: number | null;
  threadRoles: string;
  rolesReported: boolean;
  /** Shard workers replaced during the run (after a shard missed its deadline); the new threads had no role. */
  workersReplaced: number;
  /** L2 errors by kind during the run (/v1/stats levels.L2.errors). */
  l2Errors: Record<string, number>;
  /** Why the run does not count (no request completed, errors, a worker replaced), or null. */
  invalid: string | null;
}

/** The projection of one load from one configuration's median costs. */
export interface Projection extends Config {
  load: LoadName;
  costUs: RequestCost;
  /** Best split and throughput for every core count 1…64. */
  curve: Split[];
  /** The node's default split (round(0.6 N) fronts, N − 1 shards) at the same core counts. */
  defaults: Split[];
  redisCeiling: number;
}

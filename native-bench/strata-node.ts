/** A Strata node started by a benchmark from dist/src/cli.js, pinned to the server CPU, and what its /v1/stats tells. */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { getJson, SERVER_CPU, type Server, startProcess } from './harness.js';
import { type ReportedThreads, type Role, threadRoles } from './threads.js';

const root = new URL('../../', import.meta.url).pathname;
const CLI = join(root, 'dist/src/cli.js');

/** What a benchmark reads from /v1/stats (fields a node may not have yet are optional). */
export interface StrataStats {
  config: { shards: number; fronts?: number };
  levels: { L1: { gets: number; hits: number; items: number }; L2?: { gets: number; hits: number; sets: number; errors: Record<string, number> } };
  shards: { batches: number; opsPerBatch: number; workerStarts: number }[];
  /** Each front; `hotHits`: GETs it answered from the hot-read index (nodes from before several fronts lack it). */
  fronts?: { hotHits: number }[];
  threads?: ReportedThreads;
}

export interface StrataNode extends Server {
  fronts: number;
  shards: number;
  roles: Map<number, Role>;
  /** Whether the roles came from the node's own `threads` in /v1/stats. */
  rolesReported: boolean;
}

/**
 * Starts a node with `fronts` fronts and `shards` shards, `--redis-url`, and
 * `extra` flags, with the main thread's young generation as `npm start` sets
 * it and `nodeArgs` (e.g. --cpu-prof) for node itself; then reads which
 * thread does what while it is idle.
 */
export async function startStrata(options: { fronts: number; shards: number; redisUrl: string; extra: string[]; nodeArgs?: string[] }): Promise<StrataNode> {
  const { fronts, shards } = options;
  const argv = [
    '--max-semi-space-size=2',
    ...(options.nodeArgs ?? []),
    CLI,
    '--port',
    '$PORT',
    '--fronts',
    String(fronts),
    '--shards',
    String(shards),
    '--redis-url',
    options.redisUrl,
    ...options.extra,
  ];
  const server = await startProcess(argv, {}, SERVER_CPU);
  const node: StrataNode = { ...server, fronts, shards, roles: new Map(), rolesReported: false };
  await readRoles(node);
  return node;
}

/** (Re)reads which thread does what, while the node is idle: again after a shard worker was replaced (its thread is new). */
export async function readRoles(node: StrataNode): Promise<void> {
  const stats = await reportedThreads(node.port);
  const reported = stats.threads ?? null;
  node.roles = await threadRoles(node.child.pid as number, reported, stats.config.shards);
  node.rolesReported = reported !== null;
}

/** L2 errors by kind (timeout, connection, breaker, …) between two /v1/stats readings. */
export function l2Errors(before: StrataStats, after: StrataStats): Record<string, number> {
  const was = before.levels.L2?.errors ?? {};
  return Object.fromEntries(Object.entries(after.levels.L2?.errors ?? {}).map(([kind, n]) => [kind, n - (was[kind] ?? 0)]));
}

/** Shard workers started between two /v1/stats readings beyond the first of each (a worker that timed out is replaced). */
export function workersReplaced(before: StrataStats, after: StrataStats): number {
  const starts = (s: StrataStats) => s.shards.reduce((sum, shard) => sum + shard.workerStarts, 0);
  return starts(after) - starts(before);
}

/** /v1/stats once every thread it lists has told its id (0 until a thread has started), or after ~2 s. */
async function reportedThreads(port: number): Promise<StrataStats> {
  for (let attempt = 0; ; attempt++) {
    const stats = await getJson<StrataStats>(`http://127.0.0.1:${port}/v1/stats`);
    const t = stats.threads;
    if (t === undefined || (t.main !== 0 && ![...t.fronts, ...t.shards].includes(0))) return stats;
    if (attempt === 100) throw new Error(`/v1/stats threads still has unknown (0) thread ids: ${JSON.stringify(t)}`);
    await sleep(20);
  }
}

/** Operations per batch the shards took (one hop from a front carries one batch) between two /v1/stats readings; 0 without batches. */
export function opsPerBatch(before: StrataStats, after: StrataStats): number {
  const ops = (s: StrataStats) => s.shards.reduce((sum, shard) => sum + shard.batches * shard.opsPerBatch, 0);
  const batches = (s: StrataStats) => s.shards.reduce((sum, shard) => sum + shard.batches, 0);
  const n = batches(after) - batches(before);
  return n === 0 ? 0 : (ops(after) - ops(before)) / n;
}

/** L1 lookups (GETs) and hits between two /v1/stats readings. */
export function l1Delta(before: StrataStats, after: StrataStats): { gets: number; hits: number } {
  return { gets: after.levels.L1.gets - before.levels.L1.gets, hits: after.levels.L1.hits - before.levels.L1.hits };
}

/** GETs the fronts answered from their hot-read indexes between two /v1/stats readings (0 for a node that does not say). */
export function hotHitsDelta(before: StrataStats, after: StrataStats): number {
  const hot = (s: StrataStats) => (s.fronts ?? []).reduce((sum, front) => sum + front.hotHits, 0);
  return hot(after) - hot(before);
}

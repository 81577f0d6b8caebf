/**
 * bench:cores section 3: Zipf reads against the alternative a user would pick
 * (node:cluster, cluster-alternative.ts) and against Strata with the same
 * total L1 budget. Both read the same Redis: Strata's values in its layout,
 * the cluster's as plain bytes under their own prefix.
 *
 * The budget is 10 % of the keyspace as Strata's L1 charges entries (key,
 * value, head and a fixed overhead each); the cluster's workers charge theirs
 * the same, so both hold the same number of values in total (≈ 10,000 of
 * 100,000). Each run starts with Redis loaded and every L1 empty, fills for a
 * few seconds, warms, then measures. Hit ratio = L1 hits / GETs, from each
 * server's own counters.
 */
import { join } from 'node:path';
import { entryBytes } from '../src/l1/partition.js';
import { freePort, type RedisServer } from '../test/helpers/redis.js';
import type { WorkerCounters } from './cluster-alternative.js';
import { type Config, configName } from './cores-runs.js';
import { cpuOf, getJson, type Measured, measured, rssOf, runWrk, SERVER_CPU, type Server, startProcess, stop } from './harness.js';
import { L2_VALUE_HEAD_BYTES, zipfL1Budget, zipfScript, zipfStaticOptimum } from './load-scripts.js';
import { preloadPlain } from './preload.js';
import { type StrataStats, startStrata } from './strata-node.js';

const root = new URL('../../', import.meta.url).pathname;
const CLUSTER_PREFIX = 'ca:';
const ZIPF_S = 0.99;

export interface ZipfRun extends Measured {
  kind: 'cluster' | 'strata';
  label: string;
  round: number;
  l1HitRatio: number;
  /** GETs the server counted / requests wrk completed: about 1 when its counters see every request. */
  getsCounted: number;
  redisUsPerRequest: number;
  /** Values in the server's L1 (all workers or shards) after the run. */
  l1Entries: number;
  /** RSS of the server's processes summed, after the run. */
  rssBytes: number;
  /** For the cluster: CPU per request of the primary (accepting, handing out connections) and of the workers, µs. */
  usPerRequestByProcess?: { primary: number; workers: number };
}

export interface ZipfComparison {
  s: number;
  keys: number;
  l1BudgetBytes: number;
  entriesInBudget: number;
  staticOptimum: number;
  runs: ZipfRun[];
}

interface Options {
  redis: RedisServer;
  dir: string;
  strata: Config;
  clusterWorkers: number;
  keys: number;
  valueBytes: number;
  seconds: number;
  warmSeconds: number;
  fillSeconds: number;
  rounds: number;
  connections: number;
  step: (message: string) => void;
}

async function clusterCounters(adminPort: number): Promise<WorkerCounters[]> {
  return (await getJson<{ workers: WorkerCounters[] }>(`http://127.0.0.1:${adminPort}/stats`)).workers;
}

/** One server's run: what it is, where, and how to read its threads and counters. */
interface RunTarget {
  label: string;
  kind: ZipfRun['kind'];
  server: Server;
  script: string;
  round: number;
  pids: () => Promise<number[]>;
  counters: () => Promise<{ gets: number; hits: number; entries: number }>;
}

/** Fills the L1, warms, and measures one run; `target.counters` reads the server's GETs and hits. */
async function run(o: Options, target: RunTarget): Promise<ZipfRun> {
  const { label, server, script } = target;
  o.step(`  ${label}: filling the L1 (${o.fillSeconds} s), warm-up (${o.warmSeconds} s), measuring (${o.seconds} s)`);
  runWrk(server.port, script, o.fillSeconds, o.connections);
  for (let attempt = 1; ; attempt++) {
    runWrk(server.port, script, o.warmSeconds, o.connections);
    const result = await measureOnce(o, target);
    // On a shared host a stall can make a run fail (errors, nothing completed): measure again, as cores.ts does.
    const bad = result.requests === 0 || result.errors > result.requests / 100;
    if (!bad || attempt === 3) return result;
    o.step(`  ${label}: discarded (${result.errors} errors in ${result.requests} requests); measuring again`);
  }
}

async function measureOnce(o: Options, target: RunTarget): Promise<ZipfRun> {
  const { label, kind, server, script, round, pids, counters } = target;
  const all = await pids();
  const c0 = await counters();
  const before = all.map((pid) => cpuOf(pid).total);
  const redisBefore = cpuOf(o.redis.pid as number).total;
  const wrk = runWrk(server.port, script, o.seconds, o.connections);
  const after = all.map((pid) => cpuOf(pid).total);
  const redisSeconds = cpuOf(o.redis.pid as number).total - redisBefore;
  const c1 = await counters();
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const cpuSeconds = sum(after) - sum(before);
  const gets = c1.gets - c0.gets;
  const result: ZipfRun = {
    kind,
    label,
    round,
    ...measured(wrk, cpuSeconds),
    l1HitRatio: gets === 0 ? 0 : (c1.hits - c0.hits) / gets,
    getsCounted: gets / wrk.requests,
    l1Entries: c1.entries,
    redisUsPerRequest: (redisSeconds / wrk.requests) * 1e6,
    rssBytes: all.reduce((sum, pid) => sum + rssOf(pid), 0),
  };
  if (kind === 'cluster') {
    const primary = (after[0] as number) - (before[0] as number);
    result.usPerRequestByProcess = { primary: (primary / wrk.requests) * 1e6, workers: ((cpuSeconds - primary) / wrk.requests) * 1e6 };
  }
  o.step(`  ${label}: ${Math.round(wrk.rps)} req/s, ${Math.round(result.perCpuSecond)} req per CPU-s, L1 hit ratio ${(result.l1HitRatio * 100).toFixed(1)}%`);
  return result;
}

/** Zipf reads: node:cluster ×N, Strata (default tinylfu admission) and Strata with lru admission, alternating per round. */
export async function compareWithCluster(o: Options): Promise<ZipfComparison> {
  const { l1Bytes: l1BudgetBytes, capacity: entriesInBudget } = zipfL1Budget(o.keys, o.valueBytes);
  const staticOptimum = zipfStaticOptimum(o.keys, entriesInBudget, ZIPF_S);
  o.step(
    `Zipf s=${ZIPF_S}: ${o.keys} keys, L1 budget ${(l1BudgetBytes / 1048576).toFixed(1)} MiB (~${entriesInBudget} entries); the best static choice serves ${(staticOptimum * 100).toFixed(1)}% of reads`,
  );
  o.step(`writing ${o.keys} plain values for the cluster alternative`);
  await preloadPlain(o.redis.url, CLUSTER_PREFIX, o.keys, o.valueBytes);
  const script = zipfScript(o.dir, { keys: o.keys, s: ZIPF_S, putShare: 0, valueBytes: o.valueBytes });
  const runs: ZipfRun[] = [];
  for (let round = 0; round < o.rounds; round++) {
    const clusterLabel = `node:cluster ×${o.clusterWorkers} (node:http + lru-cache, cache-aside)`;
    o.step(`starting ${clusterLabel}`);
    const adminPort = await freePort();
    const cluster = await startProcess(
      [
        join(root, 'dist/native-bench/cluster-alternative.js'),
        '--port',
        '$PORT',
        '--admin-port',
        String(adminPort),
        '--workers',
        String(o.clusterWorkers),
        '--redis-url',
        o.redis.url,
        '--l1-max-bytes',
        String(l1BudgetBytes),
        '--entry-overhead-bytes',
        String(entryBytes('', 0, L2_VALUE_HEAD_BYTES)),
        '--key-prefix',
        CLUSTER_PREFIX,
      ],
      {},
      SERVER_CPU,
    );
    try {
      const pids = async () => [cluster.child.pid as number, ...(await clusterCounters(adminPort)).map((w) => w.pid)];
      const counters = async () => {
        const workers = await clusterCounters(adminPort);
        const sum = (field: 'gets' | 'hits' | 'entries') => workers.reduce((s, w) => s + w[field], 0);
        return { gets: sum('gets'), hits: sum('hits'), entries: sum('entries') };
      };
      runs.push(await run(o, { label: clusterLabel, kind: 'cluster', server: cluster, script, round, pids, counters }));
    } finally {
      await stop(cluster);
    }
    for (const admission of ['tinylfu', 'lru'] as const) {
      const label = `Strata ${configName(o.strata)}, ${admission}${admission === 'tinylfu' ? ' (default)' : ''}`;
      o.step(`starting ${label}`);
      const node = await startStrata({ ...o.strata, redisUrl: o.redis.url, extra: ['--l1-max-bytes', String(l1BudgetBytes), '--l1-admission', admission] });
      try {
        const counters = async () => {
          const { gets, hits, items } = (await getJson<StrataStats>(`http://127.0.0.1:${node.port}/v1/stats`)).levels.L1;
          return { gets, hits, entries: items };
        };
        runs.push(await run(o, { label, kind: 'strata', server: node, script, round, pids: async () => [node.child.pid as number], counters }));
      } finally {
        await stop(node);
      }
    }
  }
  return { s: ZIPF_S, keys: o.keys, l1BudgetBytes, entriesInBudget, staticOptimum, runs };
}

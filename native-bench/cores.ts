/**
 * Where a Strata node's CPU goes, by thread role, and what that projects to on
 * many cores; and the alternative a user would pick, side by side.
 *
 * 1. fronts × shards ∈ {1×1, 2×1, 1×2, 2×2}, each under three loads:
 *    GET hits (1 KiB values, 10,000 keys, warmed: answered by the fronts from
 *    the hot-read index), L2 hits (100,000 keys in Redis read uniformly through
 *    a 1 MiB L1 that takes every value in: 99 % L1 misses, as l2.ts section 1)
 *    and PUTs (1 KiB). For each: requests/s, p50/p99, requests per server
 *    CPU-second, and each thread's CPU per request by role (front, shard, main,
 *    V8 helpers, other; threads.ts), and Redis's.
 * 2. From those costs, the throughput of the best fronts/shards split on 16,
 *    32 and 64 cores (projection.ts states the model and its assumptions).
 * 3. Zipf reads (s = 0.99, 100,000 keys of 1 KiB in Redis, L1 ≈ 10 % of the
 *    keyspace): node:cluster with N workers, each node:http + lru-cache of a
 *    1/N budget over Redis (cluster-alternative.ts), against Strata with the
 *    same total budget: L1 hit ratio and requests per server CPU-second.
 *
 * Servers are pinned to CPU 0, wrk and Redis to CPU 1: every thread of a
 * server shares one core, so req/s is one core's worth, and requests per
 * CPU-second and CPU per request are what compare. Only ratios within one run
 * mean anything on a shared host. Writes native-bench/results/cores.json and
 * the figure native-bench/figures/cores.svg (a --quick run: both as
 * results/cores-quick.*).
 *
 *   npm run bench:cores [-- --seconds 5 --rounds 1 --quick]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { RedisServer } from '../test/helpers/redis.js';
import { compareWithCluster, type ZipfRun } from './cluster-comparison.js';
import { coresPanels } from './cores-figure.js';
import { type Config, configName, LOADS, type LoadName, type LoadRun, type Projection } from './cores-runs.js';
import { cpuOf, fmt, getJson, measured, median, pct, requireWrk, runWrk, SERVER_CPU, stop, WRK_CPU } from './harness.js';
import { uniformGetScript, uniformPutScript } from './load-scripts.js';
import { preloadStrataLayout } from './preload.js';
import { bestSplit, defaultSplit, MODEL_TEXT, type RequestCost, redisCeiling, type Split } from './projection.js';
import { Progress, Report } from './report.js';
import { l1Delta, l2Errors, opsPerBatch, readRoles, type StrataNode, type StrataStats, startStrata, workersReplaced } from './strata-node.js';
import { cpuByRole, describeRoles, ROLES, type Role } from './threads.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '1' },
    quick: { type: 'boolean', default: false },
    connections: { type: 'string', default: '50' },
    configs: { type: 'string', default: '1x1,2x1,1x2,2x2' },
    'zipf-config': { type: 'string', default: '2x1' },
    'cluster-workers': { type: 'string', default: '2' },
  },
});
const QUICK = args.quick;
const SECONDS = QUICK ? 1 : Number(args.seconds);
const ROUNDS = QUICK ? 1 : Number(args.rounds);
const WARM_SECONDS = QUICK ? 1 : 2;
const CONNECTIONS = Number(args.connections);
const HOT_KEYS = QUICK ? 1000 : 10_000;
const L2_KEYS = QUICK ? 10_000 : 100_000;
const VALUE_BYTES = 1024;
const PROJECTED_CORES = [16, 32, 64];
// A quick run is a smoke test: its figure must not replace the one the README shows (Report keeps it in results/).
const results = new Report('cores', { quick: QUICK });
let progress: Progress;
const preloadStep = () => `redis-server: writing ${fmt(L2_KEYS)} values in Strata's layout`;
const hotStep = (config: Config, round: number) => `round ${round + 1}, ${configName(config)}: GET hits and PUTs`;
const coldStep = (config: Config, round: number) => `round ${round + 1}, ${configName(config)}: L2 hits`;
const zipfStep = () => 'Zipf reads: node:cluster against Strata';

const started = performance.now();
function step(message: string): void {
  const s = Math.round((performance.now() - started) / 1000);
  console.log(`[${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}] ${message}`);
}

function parseConfig(text: string): Config {
  const m = /^(\d+)[x×](\d+)$/.exec(text.trim());
  if (m === null) throw new Error(`a configuration is FxS (fronts x shards), got '${text}'`);
  return { fronts: Number(m[1]), shards: Number(m[2]) };
}

/**
 * PUTs keys k0 … through the node. A 503 (the L2 or a shard late: on this
 * shared host Redis can be starved of CPU for longer than l2TimeoutMs, and
 * the L2 breaker opens) is tried again, up to 8 times a key with a growing
 * pause; how many were is printed.
 */
async function preloadByPut(port: number, keys: number): Promise<void> {
  const value = new Uint8Array(VALUE_BYTES).fill(120);
  let next = 0;
  let retried = 0;
  const worker = async () => {
    while (next < keys) {
      const k = next++;
      for (let attempt = 1; ; attempt++) {
        const res = await fetch(`http://127.0.0.1:${port}/v1/keys/k${k}?ttl=3600`, { method: 'PUT', body: value });
        if (res.status === 204) break;
        const body = await res.text();
        if (res.status !== 503 || attempt === 8) throw new Error(`preload PUT k${k}: ${res.status} ${body}`);
        retried++;
        // An open L2 breaker probes Redis before it closes again: back off up to 2 s.
        await sleep(Math.min(2000, 50 * 2 ** attempt));
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  if (retried > 0) step(`  preload: ${retried} PUTs answered 503 and were tried again`);
}

/** Runs wrk once against `node` and reads CPU per thread role, Redis's CPU and the L1 counters around it. */
async function measure(node: StrataNode, redisPid: number, load: LoadName, script: string, round: number): Promise<LoadRun> {
  const pid = node.child.pid as number;
  const url = `http://127.0.0.1:${node.port}/v1/stats`;
  const s0 = await getJson<StrataStats>(url);
  const before = cpuOf(pid);
  const redisBefore = cpuOf(redisPid).total;
  const wrk = runWrk(node.port, script, SECONDS, CONNECTIONS);
  const after = cpuOf(pid);
  const redisSeconds = cpuOf(redisPid).total - redisBefore;
  const s1 = await getJson<StrataStats>(url);
  const byRole = cpuByRole(before, after, node.roles);
  const usPerRequest = Object.fromEntries(ROLES.map((r) => [r, (byRole[r] / wrk.requests) * 1e6])) as Record<Role, number>;
  const threadUs = (role: Role) =>
    [...node.roles]
      .filter(([, r]) => r === role)
      .map(([tid]) => (((after.threads.get(tid)?.[1] ?? 0) - (before.threads.get(tid)?.[1] ?? 0)) / wrk.requests) * 1e6);
  const cpuSeconds = after.total - before.total;
  const l1 = l1Delta(s0, s1);
  return {
    load,
    round,
    fronts: node.fronts,
    shards: node.shards,
    ...measured(wrk, cpuSeconds),
    usPerRequest,
    perThreadUs: { fronts: threadUs('front'), shards: threadUs('shard') },
    opsPerBatch: opsPerBatch(s0, s1),
    redisUsPerRequest: (redisSeconds / wrk.requests) * 1e6,
    l1HitRatio: load === 'PUTs' ? null : l1.hits / Math.max(1, l1.gets),
    getsCounted: load === 'PUTs' ? null : l1.gets / wrk.requests,
    threadRoles: describeRoles(node.roles),
    rolesReported: node.rolesReported,
    workersReplaced: workersReplaced(s0, s1),
    l2Errors: l2Errors(s0, s1),
    invalid: null,
  };
}

/** Why a run does not count, or null: nothing completed, more than 1 % errors, or a shard worker replaced meanwhile. */
function invalidity(run: LoadRun): string | null {
  if (run.requests === 0) return 'no request completed';
  if (run.errors > run.requests / 100) {
    const l2 = Object.entries(run.l2Errors)
      .filter(([, n]) => n > 0)
      .map(([kind, n]) => `${kind} ${n}`)
      .join(', ');
    return `${fmt(run.errors)} errors in ${fmt(run.requests)} requests${l2 === '' ? '' : `; L2 errors: ${l2}`}`;
  }
  if (run.workersReplaced > 0) return `${run.workersReplaced} shard worker(s) replaced`;
  return null;
}

const ATTEMPTS = 3;

/**
 * measure(), tried again (after a pause and a new warm-up) while the run does
 * not count: on a shared host a stall can time a shard out (the node replaces
 * it) or open the L2 breaker (503s). After ATTEMPTS the last run is kept,
 * marked invalid, and left out of medians and the projection.
 */
async function measureValid(node: StrataNode, redisPid: number, load: LoadName, script: string, round: number): Promise<LoadRun> {
  for (let attempt = 1; ; attempt++) {
    const run = await measure(node, redisPid, load, script, round);
    run.invalid = invalidity(run);
    report(run);
    if (run.invalid === null || attempt === ATTEMPTS) return run;
    step(`  ${load} on ${configName(node)}: discarded (${run.invalid}); measuring again`);
    await sleep(1000);
    if (run.workersReplaced > 0) await readRoles(node);
    runWrk(node.port, script, WARM_SECONDS, CONNECTIONS);
  }
}

function report(run: LoadRun): void {
  const us = ROLES.map((r) => `${r} ${run.usPerRequest[r].toFixed(1)}`).join(', ');
  const each = (xs: number[]) => (xs.length > 1 ? ` (${xs.map((x) => x.toFixed(1)).join('/')})` : '');
  step(
    `  ${run.load} on ${configName(run)}: ${fmt(run.rps)} req/s, ${fmt(run.perCpuSecond)} req per CPU-s, µs/req ${us}, Redis ${run.redisUsPerRequest.toFixed(1)}; each front${each(run.perThreadUs.fronts) || ' –'}, each shard${each(run.perThreadUs.shards) || ' –'}; ops/batch ${run.opsPerBatch.toFixed(1)}`,
  );
}

/** Every load on one configuration: GET hits then PUTs on one node, L2 hits on another with a cold L1. */
async function measureConfig(config: Config, redis: RedisServer, scripts: Record<LoadName, string>, round: number): Promise<LoadRun[]> {
  const runs: LoadRun[] = [];
  const redisPid = redis.pid as number;
  progress.start(hotStep(config, round));
  step(`${configName(config)}: starting (GET hits and PUTs), preloading ${fmt(HOT_KEYS)} keys`);
  const hot = await startStrata({ ...config, redisUrl: redis.url, extra: ['--l1-max-bytes', '1g'] });
  try {
    step(`  threads: ${describeRoles(hot.roles)}${hot.rolesReported ? ' (from /v1/stats threads)' : ' (inferred: /v1/stats has no threads)'}`);
    await preloadByPut(hot.port, HOT_KEYS);
    // Not measured: JIT, and each key's first read, which goes through its shard and publishes it to the hot-read index.
    runWrk(hot.port, scripts['GET hits'], WARM_SECONDS, CONNECTIONS);
    runs.push(await measureValid(hot, redisPid, 'GET hits', scripts['GET hits'], round));
    runWrk(hot.port, scripts.PUTs, WARM_SECONDS, CONNECTIONS);
    runs.push(await measureValid(hot, redisPid, 'PUTs', scripts.PUTs, round));
  } finally {
    await stop(hot);
  }
  progress.start(coldStep(config, round));
  step(`${configName(config)}: starting (L2 hits: 1 MiB L1, lru admission)`);
  // lru admission: every L2 value is taken in (and soon evicted), the worst case for an L1 this small.
  const cold = await startStrata({ ...config, redisUrl: redis.url, extra: ['--l1-max-bytes', '1m', '--l1-admission', 'lru', '--max-value-bytes', '4k'] });
  try {
    runWrk(cold.port, scripts['L2 hits'], WARM_SECONDS, CONNECTIONS);
    runs.push(await measureValid(cold, redisPid, 'L2 hits', scripts['L2 hits'], round));
  } finally {
    await stop(cold);
  }
  return runs;
}

/** Median per-role cost of each (load, configuration), projected on 1…64 cores. */
function project(runs: LoadRun[], configs: Config[]): Projection[] {
  const projections: Projection[] = [];
  for (const load of LOADS) {
    for (const config of configs) {
      const mine = runs.filter((r) => r.invalid === null && r.load === load && r.fronts === config.fronts && r.shards === config.shards);
      if (mine.length === 0) continue;
      const us = (role: Role) => median(mine.map((r) => r.usPerRequest[role]));
      const costUs: RequestCost = { front: us('front'), shard: us('shard'), other: us('main') + us('v8') + us('other') };
      const cost: RequestCost = { front: costUs.front / 1e6, shard: costUs.shard / 1e6, other: costUs.other / 1e6 };
      const curve = Array.from({ length: 64 }, (_, i) => bestSplit(cost, i + 1));
      const defaults = Array.from({ length: 64 }, (_, i) => defaultSplit(cost, i + 1));
      // GET hits never reach Redis: what it spends meanwhile (its own timers, the bus) is no ceiling.
      const redisUs = load === 'GET hits' ? 0 : median(mine.map((r) => r.redisUsPerRequest));
      projections.push({ load, ...config, costUs, curve, defaults, redisCeiling: redisCeiling(redisUs / 1e6) });
    }
  }
  return projections;
}

/** The configuration whose costs the headline projection uses: the most threads of both kinds measured. */
function basisConfig(configs: Config[]): Config {
  return [...configs].sort((a, b) => b.fronts * b.shards - a.fronts * a.shards || b.fronts - a.fronts)[0] as Config;
}

function printRuns(runs: LoadRun[]): void {
  console.log(
    '\n| load | F×S | round | req/s | p50 ms | p99 ms | req per CPU-s | vs 1×1 | µs/req front | shard | main | V8 helpers | other | total | ops/batch | Redis µs/req | L1 hit ratio | GETs counted | errors |',
  );
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of runs) {
    const base = runs.find((b) => b.invalid === null && b.load === r.load && b.round === r.round && b.fronts === 1 && b.shards === 1);
    const total = ROLES.reduce((sum, role) => sum + r.usPerRequest[role], 0);
    const u = (role: Role) => fmt(r.usPerRequest[role], 1);
    console.log(
      `| ${r.load} | ${configName(r)} | ${r.round + 1} | ${fmt(r.rps)} | ${fmt(r.p50ms, 3)} | ${fmt(r.p99ms, 3)} | ${fmt(r.perCpuSecond)} | ${base ? (r.perCpuSecond / base.perCpuSecond).toFixed(3) : '–'} | ${u('front')} | ${u('shard')} | ${u('main')} | ${u('v8')} | ${u('other')} | ${fmt(total, 1)} | ${fmt(r.opsPerBatch, 1)} | ${fmt(r.redisUsPerRequest, 1)} | ${pct(r.l1HitRatio)} | ${pct(r.getsCounted)} | ${r.errors}${r.invalid === null ? '' : ` (not counted: ${r.invalid})`} |`,
    );
  }
}

/** Median over rounds of requests per CPU-second, each configuration against 1×1. */
function printMedians(runs: LoadRun[], configs: Config[]): void {
  const valid = runs.filter((r) => r.invalid === null);
  console.log(`\nMedian over rounds, requests per server CPU-second (ratio to 1×1):\n`);
  console.log(`| load | ${configs.map(configName).join(' | ')} |`);
  console.log(`|---|${configs.map(() => '---:|').join('')}`);
  for (const load of LOADS) {
    const of = (c: Config) => valid.filter((r) => r.load === load && r.fronts === c.fronts && r.shards === c.shards).map((r) => r.perCpuSecond);
    const base = of({ fronts: 1, shards: 1 });
    const cells = configs.map((c) => {
      const mine = of(c);
      if (mine.length === 0) return '–';
      return `${fmt(median(mine))}${base.length === 0 ? '' : ` (${(median(mine) / median(base)).toFixed(2)})`}`;
    });
    console.log(`| ${load} | ${cells.join(' | ')} |`);
  }
}

function printProjections(projections: Projection[], basis: Config): void {
  console.log(`\n${MODEL_TEXT}`);
  console.log(`\nProjection from the ${configName(basis)} costs (median over rounds):\n`);
  console.log(`| load | c_f µs | c_s µs | c_o µs | ${PROJECTED_CORES.map((n) => `${n} cores: F/S, req/s, limit`).join(' | ')} | one Redis caps at |`);
  console.log(`|---|---:|---:|---:|${PROJECTED_CORES.map(() => '---|').join('')}---:|`);
  for (const p of projections.filter((q) => q.fronts === basis.fronts && q.shards === basis.shards)) {
    const cells = PROJECTED_CORES.map((n) => {
      const s = p.curve[n - 1] as Split;
      return `${s.fronts}/${s.shards}, ${fmt(s.requestsPerSecond)}, ${s.limit}`;
    });
    const cap = Number.isFinite(p.redisCeiling) ? `${fmt(p.redisCeiling)} req/s` : '–';
    console.log(`| ${p.load} | ${fmt(p.costUs.front, 1)} | ${fmt(p.costUs.shard, 1)} | ${fmt(p.costUs.other, 1)} | ${cells.join(' | ')} | ${cap} |`);
  }
  console.log(`\nThe node's default split (--fronts round(0.6 N), --shards N − 1) in the same model, ${configName(basis)} costs:\n`);
  console.log(`| load | ${PROJECTED_CORES.map((n) => `${n} cores: req/s, limit, of best`).join(' | ')} |`);
  console.log(`|---|${PROJECTED_CORES.map(() => '---|').join('')}`);
  for (const p of projections.filter((q) => q.fronts === basis.fronts && q.shards === basis.shards)) {
    const cells = PROJECTED_CORES.map((n) => {
      const d = p.defaults[n - 1] as Split;
      return `${fmt(d.requestsPerSecond)}, ${d.limit}, ${(d.requestsPerSecond / (p.curve[n - 1] as Split).requestsPerSecond).toFixed(2)}`;
    });
    console.log(`| ${p.load} | ${cells.join(' | ')} |`);
  }
  console.log("\nThe same at 64 cores from each configuration's costs (how much the basis matters):\n");
  console.log('| load | from | c_f µs | c_s µs | c_o µs | 64 cores: F/S | req/s |');
  console.log('|---|---|---:|---:|---:|---|---:|');
  for (const p of projections) {
    const s = p.curve[63] as Split;
    console.log(
      `| ${p.load} | ${configName(p)} | ${fmt(p.costUs.front, 1)} | ${fmt(p.costUs.shard, 1)} | ${fmt(p.costUs.other, 1)} | ${s.fronts}/${s.shards} | ${fmt(s.requestsPerSecond)} |`,
    );
  }
}

function printZipf(runs: ZipfRun[]): void {
  console.log(
    '\n| server | round | req/s | p50 ms | p99 ms | req per CPU-s | vs cluster | L1 hit ratio | L1 entries | GETs counted | Redis µs/req | server RSS MiB | errors |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of runs) {
    const base = runs.find((b) => b.round === r.round && b.kind === 'cluster');
    console.log(
      `| ${r.label} | ${r.round + 1} | ${fmt(r.rps)} | ${fmt(r.p50ms, 3)} | ${fmt(r.p99ms, 3)} | ${fmt(r.perCpuSecond)} | ${base ? (r.perCpuSecond / base.perCpuSecond).toFixed(3) : '–'} | ${pct(r.l1HitRatio)} | ${fmt(r.l1Entries)} | ${pct(r.getsCounted)} | ${fmt(r.redisUsPerRequest, 1)} | ${fmt(r.rssBytes / 1048576)} | ${r.errors} |`,
    );
  }
}

function printZipfMedians(runs: ZipfRun[]): void {
  const labels = [...new Set(runs.map((r) => r.label))];
  const cluster = runs.filter((r) => r.kind === 'cluster').map((r) => r.perCpuSecond);
  console.log('\nMedian over rounds:\n');
  console.log('| server | req per CPU-s | vs cluster | L1 hit ratio | Redis µs/req |');
  console.log('|---|---:|---:|---:|---:|');
  for (const label of labels) {
    const mine = runs.filter((r) => r.label === label);
    const perCpu = median(mine.map((r) => r.perCpuSecond));
    console.log(
      `| ${label} | ${fmt(perCpu)} | ${cluster.length === 0 ? '–' : (perCpu / median(cluster)).toFixed(2)} | ${pct(median(mine.map((r) => r.l1HitRatio)))} | ${fmt(median(mine.map((r) => r.redisUsPerRequest)), 1)} |`,
    );
  }
}

async function main(): Promise<void> {
  requireWrk();
  const configs = args.configs.split(',').map(parseConfig);
  const zipfConfig = parseConfig(args['zipf-config']);
  const clusterWorkers = Number(args['cluster-workers']);
  const measuredSeconds = WARM_SECONDS + SECONDS;
  progress = new Progress([
    { name: preloadStep(), seconds: L2_KEYS / 30_000 },
    ...Array.from({ length: ROUNDS }, (_, round) =>
      configs.flatMap((c) => [
        // A start, the preload by PUTs (~5,000/s), and two loads.
        { name: hotStep(c, round), seconds: 1 + HOT_KEYS / 5000 + 2 * measuredSeconds },
        { name: coldStep(c, round), seconds: 1 + measuredSeconds },
      ]),
    ).flat(),
    // The cluster's plain values, then per round three servers: a start, the fill, the warm-up and the run.
    { name: zipfStep(), seconds: L2_KEYS / 30_000 + ROUNDS * 3 * (1 + (QUICK ? 1 : 5) + measuredSeconds) },
  ]);

  console.log(
    `machine: ${cpus()[0]?.model ?? '?'} x${availableParallelism()}, node ${process.version}; servers on cpu ${SERVER_CPU}, wrk and redis-server on cpu ${WRK_CPU}`,
  );
  console.log(
    `${SECONDS}s per run, ${ROUNDS} round${ROUNDS === 1 ? '' : 's'}, ${CONNECTIONS} connections; configurations ${configs.map(configName).join(', ')}${QUICK ? ' (quick)' : ''}`,
  );
  const loadAtStart = loadavg()[0] as number;
  console.log(`load average (1 min) at start: ${loadAtStart.toFixed(2)}: other work on this host moves every absolute figure`);

  const dir = mkdtempSync(join(tmpdir(), 'strata-cores-bench-'));
  const scripts: Record<LoadName, string> = {
    'GET hits': uniformGetScript(dir, HOT_KEYS),
    'L2 hits': uniformGetScript(dir, L2_KEYS),
    PUTs: uniformPutScript(dir, HOT_KEYS, VALUE_BYTES),
  };
  const redis = await RedisServer.start();
  execFileSync('taskset', ['-pc', WRK_CPU, String(redis.pid)], { stdio: 'ignore' });
  try {
    progress.start(preloadStep());
    step(`redis-server on port ${redis.port}; writing ${fmt(L2_KEYS)} values in Strata's layout`);
    await preloadStrataLayout(redis.url, L2_KEYS, VALUE_BYTES);
    const runs: LoadRun[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const config of configs) runs.push(...(await measureConfig(config, redis, scripts, round)));
    }
    progress.start(zipfStep());
    const zipf = await compareWithCluster({
      redis,
      dir,
      strata: zipfConfig,
      clusterWorkers,
      keys: L2_KEYS,
      valueBytes: VALUE_BYTES,
      seconds: SECONDS,
      warmSeconds: WARM_SECONDS,
      fillSeconds: QUICK ? 1 : 5,
      rounds: ROUNDS,
      connections: CONNECTIONS,
      step,
    });

    progress.end();
    const projections = project(runs, configs);
    const basis = basisConfig(configs);
    printRuns(runs);
    printMedians(runs, configs);
    printProjections(projections, basis);
    console.log(
      `\nZipf s = 0.99 reads over ${fmt(L2_KEYS)} keys of 1 KiB (L1 ≈ 10 % of the keyspace): node:cluster ×${clusterWorkers} against Strata ${configName(zipfConfig)}`,
    );
    printZipf(zipf.runs);
    printZipfMedians(zipf.runs);

    const machine = {
      cpu: cpus()[0]?.model ?? '?',
      cores: availableParallelism(),
      node: process.version,
      date: new Date().toISOString(),
      loadAverageAtStart: loadAtStart,
      loadAverageAtEnd: loadavg()[0] as number,
    };
    const options = { seconds: SECONDS, rounds: ROUNDS, connections: CONNECTIONS, quick: QUICK };
    const atProjected = (splits: Split[]) => splits.filter((s) => PROJECTED_CORES.includes(s.cores));
    const projectionsOut = projections.map((p) => ({ ...p, curve: atProjected(p.curve), defaults: atProjected(p.defaults) }));
    results.json({ machine, options, model: MODEL_TEXT, basis: configName(basis), runs, projections: projectionsOut, zipf });
    results.figure(
      'cores',
      'Strata: CPU per request and p99 by fronts × shards, projected throughput on many cores, and Zipf reads against node:cluster',
      coresPanels({ runs, projections, basis, configs, zipf: zipf.runs }),
      {
        columns: 2,
        notes: [
          `${SECONDS} s per run, ${ROUNDS} round(s), wrk -c${CONNECTIONS}; every server pinned to CPU ${SERVER_CPU}, wrk and Redis to CPU ${WRK_CPU}; bars: medians over rounds; model: min(F/c_f, S/c_s, N/(c_f+c_s+c_o))`,
        ],
      },
    );
    step(`wrote ${results.written().join(', ')}; load average (1 min) now ${machine.loadAverageAtEnd.toFixed(2)}`);
  } finally {
    progress.end();
    await redis.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

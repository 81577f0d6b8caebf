/**
 * L2 benchmarks, each against a baseline measured in the same run:
 *
 * 1. L2 hits (L1 cold): Strata serving GETs whose values are only in Redis,
 *    against a bare uWebSockets.js server that answers each GET with one
 *    auto-pipelined ioredis GET (bare-redis-server.ts). Requests per server
 *    CPU-second; Redis's own CPU reported beside.
 * 2. Zipf: s = 0.99 over 100,000 keys of 1 KiB, L1 budget ≈ 10% of the
 *    keyspace's bytes, 95% GET / 5% PUT; for LRU and for TinyLFU admission:
 *    the L1 hit ratio and the share of requests that reached Redis.
 * 3. Invalidation window: node A acknowledges a PUT; how long until node B,
 *    which held the old value in L1, answers the new one.
 * 4. Zipf mix against the bare proxy: the workload of 2 (TinyLFU) against
 *    bare-redis-server.ts (GET → one GET, PUT → one SET) on the same keys,
 *    alternating, Redis preloaded before each run: requests per server
 *    CPU-second and their ratio, CPU per request by thread role (threads.ts),
 *    the share of Strata's GETs its front answered from the hot-read index,
 *    ops per batch and L2 reads per request; and both servers again on the
 *    same keys without the PUTs, which gives what one PUT costs each.
 *
 * Servers are pinned to CPU 0, wrk and Redis to CPU 1. Writes
 * native-bench/results/l2.json and a figure per section run:
 * figures/l2-hits.svg, l2-admission.svg, l2-window.svg and l2-mix.svg.
 *
 *   npm run bench:l2 [-- --seconds 10 --rounds 3 --sections hits,zipf,window,mix --put-share 0.05]
 *   ('--strata-node-args=--cpu-prof --cpu-prof-dir=/tmp/prof' profiles every thread of section 4's Strata runs)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RedisServer } from '../test/helpers/redis.js';
import {
  cpuOf,
  fmt,
  getJson,
  type Measured,
  measured,
  median,
  pct,
  requireWrk,
  runWrk,
  SERVER_CPU,
  type Server,
  startProcess,
  stop,
  WRK_CPU,
} from './harness.js';
import { uniformGetScript, zipfL1Budget, zipfScript, zipfStaticOptimum } from './load-scripts.js';
import { type BarGroup, barChart, efficiencyPanels, percent } from './plot.js';
import { preloadStrataLayout } from './preload.js';
import { Progress, Report } from './report.js';
import { hotHitsDelta, l1Delta, opsPerBatch, type StrataStats, startStrata as startStrataNode } from './strata-node.js';
import { cpuByRole, ROLES, type Role, threadRoles } from './threads.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    connections: { type: 'string', default: '50' },
    'window-samples': { type: 'string', default: '300' },
    /** Which sections to run, comma-separated. */
    sections: { type: 'string', default: 'hits,zipf,window,mix' },
    /** Share of the Zipf workload's requests that are PUTs (sections 2 and 4). */
    'put-share': { type: 'string', default: '0.05' },
    /** Flags for node itself in section 4's Strata runs, space-separated (e.g. --cpu-prof). */
    'strata-node-args': { type: 'string', default: '' },
  },
});
const SECTIONS = new Set(args.sections.split(','));
const PUT_SHARE = Number(args['put-share']);
const STRATA_NODE_ARGS = args['strata-node-args'] === '' ? [] : args['strata-node-args'].split(' ');
const SECONDS = Number(args.seconds);
const ROUNDS = Number(args.rounds);
const CONNECTIONS = Number(args.connections);
const WINDOW_SAMPLES = Number(args['window-samples']);
const KEYS = 100_000;
const VALUE_BYTES = 1024;
const ZIPF_S = 0.99;
const root = new URL('../../', import.meta.url).pathname;
/** Planned seconds of one preload of KEYS values into Redis, and of a server's start. */
const PRELOAD_SECONDS = 3;
const START_SECONDS = 1;
const ADMISSIONS = ['lru', 'tinylfu'] as const;
/** Section 4's loads: the Zipf mix, and the same keys without its PUTs. */
const MIX_LOADS = [
  { name: 'mix', putShare: PUT_SHARE },
  { name: 'GETs only', putShare: 0 },
] as const;

/** Every step of the run, with the seconds it should take: the progress line's plan. */
function plan(): { name: string; seconds: number }[] {
  const steps = [{ name: `preload Redis: ${fmt(KEYS)} values`, seconds: PRELOAD_SECONDS }];
  const measured = 2 + SECONDS;
  for (let round = 0; round < ROUNDS; round++) {
    if (!SECTIONS.has('hits')) break;
    steps.push({ name: hitsStep('bare', round), seconds: START_SECONDS + measured }, { name: hitsStep('strata', round), seconds: START_SECONDS + measured });
  }
  for (let round = 0; round < ROUNDS; round++) {
    if (!SECTIONS.has('zipf')) break;
    for (const admission of ADMISSIONS) steps.push({ name: zipfStep(admission, round), seconds: PRELOAD_SECONDS + START_SECONDS + 5 + measured });
  }
  if (SECTIONS.has('window')) steps.push({ name: windowStep(), seconds: 2 + WINDOW_SAMPLES * 0.01 });
  for (let round = 0; round < ROUNDS; round++) {
    if (!SECTIONS.has('mix')) break;
    for (const load of MIX_LOADS) {
      steps.push({ name: mixStep(load.name, 'bare', round), seconds: PRELOAD_SECONDS + START_SECONDS + measured });
      steps.push({ name: mixStep(load.name, 'strata', round), seconds: PRELOAD_SECONDS + START_SECONDS + 5 + measured });
    }
  }
  return steps;
}
const hitsStep = (server: 'bare' | 'strata', round: number) => `§1 L2 hits, ${server === 'bare' ? 'bare proxy' : 'Strata'}, round ${round + 1}`;
const zipfStep = (admission: string, round: number) => `§2 Zipf, ${admission} admission, round ${round + 1}`;
const windowStep = () => `§3 invalidation window, ${WINDOW_SAMPLES} writes`;
const mixStep = (load: string, server: 'bare' | 'strata', round: number) =>
  `§4 Zipf ${load}, ${server === 'bare' ? 'bare proxy' : 'Strata'}, round ${round + 1}`;

let progress: Progress;

function startStrata(redisUrl: string, extra: string[], cpu: string | null = SERVER_CPU): Promise<Server> {
  return startProcess([join(root, 'dist/src/cli.js'), '--port', '$PORT', '--shards', '1', '--max-value-bytes', '4k', ...extra], { REDIS_URL: redisUrl }, cpu);
}

/** bare-redis-server.ts, the baseline: one Redis GET per GET, one SET per PUT. */
function startBareProxy(redisUrl: string): Promise<Server> {
  return startProcess([join(root, 'dist/native-bench/bare-redis-server.js'), '$PORT', redisUrl], {}, SERVER_CPU);
}

/** Writes every key's envelope straight into Redis (what a PUT through Strata would leave there). */
function preloadRedis(url: string): Promise<void> {
  return preloadStrataLayout(url, KEYS, VALUE_BYTES);
}

interface Run extends Measured {
  label: string;
  redisCpuShare: number;
  l1HitRatio?: number;
  redisShare?: number;
  l2Reads?: number;
  /** Server CPU per request by thread role, µs (servers measured with roles). */
  usPerRequest?: Record<Role, number>;
  /** Of Strata's GETs: the share its fronts answered from the hot-read index. */
  hotShare?: number;
  /** Ops the shards took per batch. */
  opsPerBatch?: number;
}

/** A server under measure(), with the role of each of its threads when they are known. */
type MeasuredServer = Server & { roles?: Map<number, Role> };

/** Runs wrk against a server, with server CPU from /proc and, for Strata, the L1/L2 counters. */
async function measure(label: string, server: MeasuredServer, redisPid: number, script: string, strata: boolean): Promise<Run> {
  runWrk(server.port, script, 2, CONNECTIONS); // warm-up, not measured
  const pid = server.child.pid as number;
  const s0 = strata ? await getJson<StrataStats>(`http://127.0.0.1:${server.port}/v1/stats`) : null;
  const before = cpuOf(pid);
  const redisBefore = cpuOf(redisPid).total;
  const wrk = runWrk(server.port, script, SECONDS, CONNECTIONS);
  const after = cpuOf(pid);
  const cpu = after.total - before.total;
  const redisCpu = cpuOf(redisPid).total - redisBefore;
  const run: Run = { label, ...measured(wrk, cpu), redisCpuShare: redisCpu / SECONDS };
  if (server.roles !== undefined) {
    const byRole = cpuByRole(before, after, server.roles);
    run.usPerRequest = Object.fromEntries(ROLES.map((r) => [r, (byRole[r] / wrk.requests) * 1e6])) as Record<Role, number>;
  }
  if (s0 !== null) {
    const s1 = await getJson<StrataStats>(`http://127.0.0.1:${server.port}/v1/stats`);
    const l1 = l1Delta(s0, s1);
    const l2Reads = (s1.levels.L2?.gets ?? 0) - (s0.levels.L2?.gets ?? 0);
    const l2Writes = (s1.levels.L2?.sets ?? 0) - (s0.levels.L2?.sets ?? 0);
    run.l1HitRatio = l1.hits / l1.gets;
    run.l2Reads = l2Reads;
    // Requests that made Strata call Redis: L2 reads (coalesced misses count once) and writes.
    run.redisShare = (l2Reads + l2Writes) / wrk.requests;
    // A hot-index hit counts as an L1 get and hit too.
    run.hotShare = hotHitsDelta(s0, s1) / l1.gets;
    run.opsPerBatch = opsPerBatch(s0, s1);
  }
  return run;
}

function table(runs: Run[]): void {
  console.log('| run | req/s | p50 ms | p99 ms | req per server CPU-s | Redis CPU | L1 hit ratio | requests reaching Redis | errors |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of runs) {
    console.log(
      `| ${r.label} | ${fmt(r.rps)} | ${fmt(r.p50ms, 3)} | ${fmt(r.p99ms, 3)} | ${fmt(r.perCpuSecond)} | ${pct(r.redisCpuShare)} | ${pct(r.l1HitRatio)} | ${pct(r.redisShare)} | ${r.errors} |`,
    );
  }
}

/** One line: strata/bare by round, and the median. */
function printRatios(what: string, ratios: number[]): void {
  console.log(`\n${what}, req per server CPU-second, strata/bare by round: ${ratios.map((r) => r.toFixed(3)).join(', ')}; median ${median(ratios).toFixed(3)}`);
}

/** Section 1's results. */
interface HitsResult {
  runs: Run[];
  ratios: number[];
}

async function l2Hits(redis: RedisServer, dir: string): Promise<HitsResult> {
  const script = uniformGetScript(dir, KEYS);
  const runs: Run[] = [];
  const ratios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    progress.start(hitsStep('bare', round));
    const bare = await startBareProxy(redis.url);
    const b = await measure('bare uWS + ioredis GET', bare, redis.pid as number, script, false);
    await stop(bare);
    progress.start(hitsStep('strata', round));
    // lru admission: every L2 value is taken in (and soon evicted), the worst case for an L1 this small.
    const strata = await startStrata(redis.url, ['--l1-max-bytes', '1m', '--l1-admission', 'lru']);
    const s = await measure('strata L2 hit', strata, redis.pid as number, script, true);
    await stop(strata);
    runs.push(b, s);
    ratios.push(s.perCpuSecond / b.perCpuSecond);
  }
  return { runs, ratios };
}

function printHits({ runs, ratios }: HitsResult): void {
  console.log('\n## 1. L2 hits, L1 cold (1 MiB L1, 100,000 keys read uniformly)\n');
  table(runs);
  printRatios('L2 hits', ratios);
}

/** The L1 budget of the Zipf sections. */
const zipfL1 = () => zipfL1Budget(KEYS, VALUE_BYTES);

/** Section 2's results: the L1 budget, what the best static choice of keys would serve, every run, and the medians by admission. */
interface ZipfResult {
  l1Bytes: number;
  capacity: number;
  staticOptimum: number;
  runs: Run[];
  medians: Record<(typeof ADMISSIONS)[number], { l1HitRatio: number; redisShare: number; perCpuSecond: number; p99ms: number }>;
}

async function zipf(redis: RedisServer, dir: string): Promise<ZipfResult> {
  const s = ZIPF_S;
  const { l1Bytes, capacity } = zipfL1();
  const script = zipfScript(dir, { keys: KEYS, s, putShare: PUT_SHARE, valueBytes: VALUE_BYTES });
  const runs: Run[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const admission of ADMISSIONS) {
      progress.start(zipfStep(admission, round));
      await preloadRedis(redis.url);
      const strata = await startStrata(redis.url, ['--l1-max-bytes', String(l1Bytes), '--l1-admission', admission]);
      // Fill L1 first: one pass of the workload not measured (beyond measure()'s own warm-up).
      runWrk(strata.port, script, 5, CONNECTIONS);
      runs.push(await measure(`strata ${admission}`, strata, redis.pid as number, script, true));
      await stop(strata);
    }
  }
  const medianOf = (admission: string) => {
    const mine = runs.filter((r) => r.label === `strata ${admission}`);
    return {
      l1HitRatio: median(mine.map((r) => r.l1HitRatio ?? 0)),
      redisShare: median(mine.map((r) => r.redisShare ?? 0)),
      perCpuSecond: median(mine.map((r) => r.perCpuSecond)),
      p99ms: median(mine.map((r) => r.p99ms)),
    };
  };
  const medians = { lru: medianOf('lru'), tinylfu: medianOf('tinylfu') };
  return { l1Bytes, capacity, staticOptimum: zipfStaticOptimum(KEYS, capacity, s), runs, medians };
}

function printZipf(z: ZipfResult): void {
  console.log(
    `\n## 2. Zipf s=${ZIPF_S}, ${fmt(KEYS)} keys x ${VALUE_BYTES} B, L1 ${fmt(z.l1Bytes / 1048576, 1)} MiB (~${fmt(z.capacity)} entries, 10% of the keyspace), ${mixName()}\n`,
  );
  console.log(`best static choice of ${fmt(z.capacity)} keys would serve ${(z.staticOptimum * 100).toFixed(1)}% of reads\n`);
  table(z.runs);
  for (const admission of ADMISSIONS) {
    const m = z.medians[admission];
    console.log(`${admission}: L1 hit ratio median ${(m.l1HitRatio * 100).toFixed(1)}%, requests reaching Redis median ${(m.redisShare * 100).toFixed(1)}%`);
  }
}

/** "95% GET / 5% PUT" for --put-share. */
function mixName(): string {
  const puts = Math.round(PUT_SHARE * 1000) / 10;
  return `${Math.round((100 - puts) * 10) / 10}% GET / ${puts}% PUT`;
}

/**
 * Section 4: the Zipf mix of section 2 (TinyLFU) against the bare proxy on
 * the same keys, GETs and PUTs, alternating, Redis preloaded before each run
 * (the PUTs of the run before changed it). Requests per server CPU-second is
 * what compares; both servers are one process on CPU 0. Each round also runs
 * both servers on the same key sequence without its PUTs, so that what the
 * PUTs cost each of them shows beside the mix.
 */
/**
 * Section 4's results: each load's runs, a bare and a Strata run per round;
 * Strata/bare per round by load, and what one PUT costs each server (µs, per round).
 */
interface MixResult {
  loads: { name: string; putShare: number; rounds: { bare: Run; strata: Run }[] }[];
  ratios: Record<string, number[]>;
  putCostUs: { bare: number[]; strata: number[] } | null;
}

async function zipfMix(redis: RedisServer, dir: string): Promise<MixResult> {
  const { l1Bytes } = zipfL1();
  const loads = MIX_LOADS.map((l) => ({ ...l, rounds: [] as { bare: Run; strata: Run }[] }));
  const redisPid = redis.pid as number;
  for (let round = 0; round < ROUNDS; round++) {
    for (const load of loads) {
      const script = zipfScript(dir, { keys: KEYS, s: ZIPF_S, putShare: load.putShare, valueBytes: VALUE_BYTES });
      progress.start(mixStep(load.name, 'bare', round));
      await preloadRedis(redis.url);
      const bareServer = await startBareProxy(redis.url);
      // The proxy has no shards: its main thread is its one front, the rest V8's threads and libuv's.
      const bareRoles = await threadRoles(bareServer.child.pid as number, null, 0);
      const bare = await measure(`bare uWS + ioredis, ${load.name}`, { ...bareServer, roles: bareRoles }, redisPid, script, false);
      await stop(bareServer);
      progress.start(mixStep(load.name, 'strata', round));
      await preloadRedis(redis.url);
      const node = await startStrataNode({
        fronts: 1,
        shards: 1,
        redisUrl: redis.url,
        extra: ['--max-value-bytes', '4k', '--l1-max-bytes', String(l1Bytes), '--l1-admission', 'tinylfu'],
        nodeArgs: STRATA_NODE_ARGS,
      });
      runWrk(node.port, script, 5, CONNECTIONS); // fill L1, not measured
      const strata = await measure(`strata, ${load.name}`, node, redisPid, script, true);
      await stop(node);
      load.rounds.push({ bare, strata });
    }
  }
  const ratios = Object.fromEntries(loads.map((l) => [l.name, l.rounds.map(({ bare, strata }) => strata.perCpuSecond / bare.perCpuSecond)]));
  const [mix, getsOnly] = loads as [(typeof loads)[number], (typeof loads)[number]];
  // What one PUT costs a server, from the same round's two loads: (µs/req of the mix − (1 − p) · µs/req without PUTs) / p.
  const putCost = (side: 'bare' | 'strata') =>
    mix.rounds.map((m, i) => (1e6 / m[side].perCpuSecond - (1 - PUT_SHARE) * (1e6 / (getsOnly.rounds[i] as typeof m)[side].perCpuSecond)) / PUT_SHARE);
  return { loads, ratios, putCostUs: PUT_SHARE > 0 ? { bare: putCost('bare'), strata: putCost('strata') } : null };
}

function printMix({ loads, ratios, putCostUs }: MixResult): void {
  const { l1Bytes, capacity } = zipfL1();
  console.log(
    `\n## 4. Zipf mix (s=${ZIPF_S}, ${mixName()}, L1 ${fmt(l1Bytes / 1048576, 1)} MiB ~${fmt(capacity)} entries, tinylfu) vs the bare uWS + ioredis proxy\n`,
  );
  const ratiosOf = (load: (typeof loads)[number]) => ratios[load.name] ?? [];
  const runs = Array.from({ length: ROUNDS }, (_, i) => loads.flatMap((l) => [l.rounds[i]?.bare, l.rounds[i]?.strata] as Run[])).flat();
  table(runs);
  console.log(`\n| round | ${loads.map((l) => `strata/bare, ${l.name}`).join(' | ')} |`);
  console.log(`|---:|${loads.map(() => '---:|').join('')}`);
  for (let round = 0; round < ROUNDS; round++) {
    console.log(`| ${round + 1} | ${loads.map((l) => (ratiosOf(l)[round] ?? 0).toFixed(3)).join(' | ')} |`);
  }
  console.log(`\n| run | ${ROLES.map((r) => `${r} µs/req`).join(' | ')} | GETs from the hot-read index | ops/batch | L2 reads/req |`);
  console.log(`|---|${ROLES.map(() => '---:|').join('')}---:|---:|---:|`);
  const num = (x: number | undefined, d: number) => (x === undefined ? '–' : fmt(x, d));
  for (const r of runs) {
    const us = ROLES.map((role) => num(r.usPerRequest?.[role], 1)).join(' | ');
    console.log(
      `| ${r.label} | ${us} | ${pct(r.hotShare)} | ${num(r.opsPerBatch, 1)} | ${num(r.l2Reads === undefined ? undefined : r.l2Reads / r.requests, 3)} |`,
    );
  }
  if (putCostUs !== null) {
    const us = (xs: number[]) => xs.map((x) => fmt(x)).join(', ');
    console.log(`\nserver CPU per PUT in the mix (from each round's two loads), µs: bare ${us(putCostUs.bare)}; strata ${us(putCostUs.strata)}`);
  }
  for (const load of loads) printRatios(`Zipf ${load.name}`, ratiosOf(load));
}

/** A keep-alive GET that returns the body as text. */
async function body(url: string): Promise<string> {
  const res = await fetch(url);
  return res.text();
}

/** p50, p99 and the largest of a sample, ms. */
interface Spread {
  p50: number;
  p99: number;
  max: number;
}

/** Section 3's results: per write, how long after A's ack B answered the old value, and when its first new answer arrived. */
interface WindowResult {
  samples: number;
  writesWithStale: number;
  lastStaleMs: Spread;
  firstFreshMs: Spread;
  roundTripP50Ms: number;
  perWrite: { lastStaleMs: number[]; firstFreshMs: number[] };
}

async function invalidationWindow(redis: RedisServer): Promise<WindowResult> {
  progress.start(windowStep());
  const a = await startStrata(redis.url, [], null);
  const b = await startStrata(redis.url, [], null);
  try {
    // Per write: how long after A's ack B still answered the old value (a lower bound of the window),
    // and when B's first new answer arrived (an upper bound: it includes that GET's own round trip).
    const lastStale: number[] = [];
    const firstFresh: number[] = [];
    let writesWithStale = 0;
    for (let i = 0; i < WINDOW_SAMPLES; i++) {
      if (i % 10 === 0) progress.update(`write ${i + 1} of ${WINDOW_SAMPLES}`, i / WINDOW_SAMPLES);
      const key = `w${i % 10}`;
      const old = `old-${i}`;
      const fresh = `new-${i}`;
      await fetch(`http://127.0.0.1:${a.port}/v1/keys/${key}`, { method: 'PUT', body: old });
      // B holds the old value in L1 (and, after the second read, in the front's hot index).
      while ((await body(`http://127.0.0.1:${b.port}/v1/keys/${key}`)) !== old);
      await body(`http://127.0.0.1:${b.port}/v1/keys/${key}`);
      // A reader polls B back to back while A writes.
      const log: { sent: number; received: number; value: string }[] = [];
      let polling = true;
      const poller = (async () => {
        while (polling) {
          const sent = performance.now();
          const value = await body(`http://127.0.0.1:${b.port}/v1/keys/${key}`);
          log.push({ sent, received: performance.now(), value });
          if (value === fresh) polling = false;
        }
      })();
      await fetch(`http://127.0.0.1:${a.port}/v1/keys/${key}`, { method: 'PUT', body: fresh });
      const acked = performance.now();
      await poller;
      const stale = log.filter((r) => r.value === old && r.sent > acked);
      if (stale.length > 0) writesWithStale++;
      lastStale.push(stale.length === 0 ? 0 : Math.max(...stale.map((r) => r.sent - acked)));
      firstFresh.push((log.find((r) => r.value === fresh)?.received ?? acked) - acked);
    }
    const rtt: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await body(`http://127.0.0.1:${b.port}/v1/keys/w0`);
      rtt.push(performance.now() - t);
    }
    const spread = (xs: number[]): Spread => ({ p50: quantile(xs, 0.5), p99: quantile(xs, 0.99), max: quantile(xs, 1) });
    return {
      samples: WINDOW_SAMPLES,
      writesWithStale,
      lastStaleMs: spread(lastStale),
      firstFreshMs: spread(firstFresh),
      roundTripP50Ms: quantile(rtt, 0.5),
      perWrite: { lastStaleMs: lastStale, firstFreshMs: firstFresh },
    };
  } finally {
    await Promise.all([stop(a), stop(b)]);
  }
}

const quantile = (xs: number[], p: number) => [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(p * xs.length))] as number;

function printWindow(w: WindowResult): void {
  console.log(`\n## 3. Invalidation window (${w.samples} writes, nodes idle otherwise, not pinned)\n`);
  const row = (x: Spread) => `p50 ${x.p50.toFixed(3)} ms, p99 ${x.p99.toFixed(3)} ms, max ${x.max.toFixed(3)} ms`;
  console.log(
    `B answered the old value to a GET sent after A's ack in ${w.writesWithStale} of ${w.samples} writes; latest such GET sent after the ack: ${row(w.lastStaleMs)}`,
  );
  console.log(`B's first new answer arrived after A's ack: ${row(w.firstFreshMs)}`);
  console.log(`for scale, one GET round trip to B (L1 hit): p50 ${w.roundTripP50Ms.toFixed(3)} ms`);
}

/** What every section that ran measured. */
interface Results {
  hits?: HitsResult;
  zipf?: ZipfResult;
  window?: WindowResult;
  mix?: MixResult;
}

/** A figure per section that ran. */
function drawFigures(report: Report, r: Results): void {
  const where = `servers on CPU ${SERVER_CPU}, wrk and redis-server on CPU ${WRK_CPU}; wrk -c${CONNECTIONS} for ${SECONDS} s per run; medians over ${ROUNDS} round(s)`;
  const med = (runs: Run[], field: 'perCpuSecond' | 'p99ms') => median(runs.map((x) => x[field]));
  if (r.hits !== undefined) {
    const { runs } = r.hits;
    const groups = (field: 'perCpuSecond' | 'p99ms'): BarGroup[] => [
      {
        label: 'GETs of values only in Redis',
        bars: [
          {
            label: 'bare uWS + ioredis GET',
            value: med(
              runs.filter((x) => x.label.startsWith('bare')),
              field,
            ),
          },
          {
            label: 'Strata (L2 hit, 1 MiB L1)',
            value: med(
              runs.filter((x) => x.label.startsWith('strata')),
              field,
            ),
          },
        ],
      },
    ];
    report.figure('l2-hits', 'bench:l2 §1: L2 hits with a cold L1, against a bare uWS + ioredis proxy', [...efficiencyPanels(groups, 340)], {
      notes: [`${fmt(KEYS)} keys × ${fmt(VALUE_BYTES)} B in Redis read uniformly; ${where}`],
    });
  }
  if (r.zipf !== undefined) {
    const z = r.zipf;
    const name = (a: string) => (a === 'lru' ? 'LRU' : 'TinyLFU');
    const per = (field: 'perCpuSecond' | 'p99ms'): BarGroup[] => [
      { label: 'Zipf mix through Strata', bars: ADMISSIONS.map((a) => ({ label: name(a), value: z.medians[a][field] })) },
    ];
    report.figure(
      'l2-admission',
      'bench:l2 §2: L1 hit ratio and requests reaching Redis by admission policy (LRU vs TinyLFU)',
      [
        barChart({
          title: 'L1 hit ratio and Redis share by admission',
          yLabel: 'share of requests (%)',
          width: 460,
          height: 320,
          format: percent,
          groups: [
            {
              label: 'L1 hit ratio',
              bars: [...ADMISSIONS.map((a) => ({ label: name(a), value: z.medians[a].l1HitRatio })), { label: 'best static choice', value: z.staticOptimum }],
            },
            { label: 'requests reaching Redis', bars: ADMISSIONS.map((a) => ({ label: name(a), value: z.medians[a].redisShare })) },
          ],
        }),
        ...efficiencyPanels(per, 300),
      ],
      {
        notes: [
          `Zipf s = ${ZIPF_S} over ${fmt(KEYS)} keys × ${fmt(VALUE_BYTES)} B, ${mixName()}; L1 ${fmt(z.l1Bytes / 1048576, 1)} MiB (~${fmt(z.capacity)} entries, 10 % of the keyspace); best static choice: the ${fmt(z.capacity)} most frequent keys; ${where}`,
        ],
      },
    );
  }
  if (r.window !== undefined) {
    const w = r.window;
    report.figure(
      'l2-window',
      'bench:l2 §3: invalidation window between two nodes',
      [
        barChart({
          title: 'After node A acknowledged a PUT, node B answered…',
          yLabel: 'ms after the ack',
          width: 560,
          height: 320,
          groups: [
            { label: 'the old value, at the latest', bars: (['p50', 'p99', 'max'] as const).map((q) => ({ label: q, value: w.lastStaleMs[q] })) },
            { label: 'the new value, first', bars: (['p50', 'p99', 'max'] as const).map((q) => ({ label: q, value: w.firstFreshMs[q] })) },
          ],
        }),
      ],
      {
        notes: [
          `${w.samples} writes, a reader polling B back to back; B answered the old value after the ack in ${w.writesWithStale} of them; one GET round trip to B: p50 ${w.roundTripP50Ms.toFixed(3)} ms; nodes idle otherwise, not pinned`,
        ],
      },
    );
  }
  if (r.mix !== undefined) {
    const { loads } = r.mix;
    const groups = (field: 'perCpuSecond' | 'p99ms'): BarGroup[] =>
      loads.map((l) => ({
        label: l.name === 'mix' ? mixName() : 'GETs only',
        bars: [
          {
            label: 'bare uWS + ioredis',
            value: med(
              l.rounds.map((x) => x.bare),
              field,
            ),
          },
          {
            label: 'Strata (TinyLFU)',
            value: med(
              l.rounds.map((x) => x.strata),
              field,
            ),
          },
        ],
      }));
    report.figure('l2-mix', 'bench:l2 §4: the Zipf mix against the bare uWS + ioredis proxy', [...efficiencyPanels(groups, 420)], {
      notes: [`Zipf s = ${ZIPF_S} over ${fmt(KEYS)} keys × ${fmt(VALUE_BYTES)} B, Redis preloaded before each run; ${where}`],
    });
  }
}

async function main(): Promise<void> {
  requireWrk();
  const report = new Report('l2');
  progress = new Progress(plan());
  const dir = mkdtempSync(join(tmpdir(), 'strata-l2-bench-'));
  const redis = await RedisServer.start();
  execFileSync('taskset', ['-pc', WRK_CPU, String(redis.pid)], { stdio: 'ignore' });
  console.log(
    `machine: ${cpus()[0]?.model ?? '?'} x${availableParallelism()}, node ${process.version}; server on cpu ${SERVER_CPU}, wrk and redis-server on cpu ${WRK_CPU}`,
  );
  console.log(`${CONNECTIONS} connections, ${SECONDS}s per run, ${ROUNDS} rounds`);
  const results: Results = {};
  try {
    progress.start(`preload Redis: ${fmt(KEYS)} values`);
    await preloadRedis(redis.url);
    // Each section's tables as soon as it is done (the progress line steps aside).
    if (SECTIONS.has('hits')) printHits((results.hits = await l2Hits(redis, dir)));
    if (SECTIONS.has('zipf')) printZipf((results.zipf = await zipf(redis, dir)));
    if (SECTIONS.has('window')) printWindow((results.window = await invalidationWindow(redis)));
    if (SECTIONS.has('mix')) printMix((results.mix = await zipfMix(redis, dir)));
  } finally {
    progress.end();
    await redis.stop();
  }
  const options = {
    seconds: SECONDS,
    rounds: ROUNDS,
    connections: CONNECTIONS,
    sections: [...SECTIONS],
    putShare: PUT_SHARE,
    windowSamples: WINDOW_SAMPLES,
    keys: KEYS,
    valueBytes: VALUE_BYTES,
    zipfS: ZIPF_S,
  };
  report.json({ options, ...results });
  drawFigures(report, results);
  console.log(report.summary());
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

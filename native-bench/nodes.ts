/**
 * Many nodes: owner forwarding against serving every key where it lands.
 *
 * Three Strata nodes (one front and one shard each, a static ring of the
 * three, registry off) share one redis-server and sit behind HAProxy in
 * round robin (keep-alive to the nodes, `http-reuse always`), so that each
 * request reaches any node. The cluster runs once with `--routing owner`
 * (a GET for a key another node owns is forwarded to it, one hop) and once
 * with `--routing local` (every node serves every key), restarted in
 * between over the same Redis data, under three loads:
 *
 * - Zipf GETs: s = 0.99 over 100,000 keys of 1 KiB preloaded in Redis in
 *   Strata's layout; each node's L1 budget is what one node gets for 10 %
 *   of the keyspace (zipfL1Budget), so the three L1s together can hold 30 %
 *   of it, if each key is cached once;
 * - Zipf mix: the same with 5 % PUTs;
 * - hot keys: a few keys (k0 … k29) read uniformly, all of them L1 hits on
 *   every node in both modes, so that the only difference between the modes
 *   is the forward hop: its CPU is (node CPU with forwarding − the CPU the
 *   same requests cost locally) / forwards.
 *
 * The first load of each mode warms by requests (1.2× the keyspace), not by
 * time, and every wrk run draws its own key sequence (see reseeded); the
 * measured runs of both modes draw the same one.
 *
 * Per run: requests/s and latency (wrk through HAProxy), the cluster's L1
 * hit ratio (each lookup counts at the node whose shard did it: the owner
 * with forwarding), Redis calls per request (INFO commandstats), requests
 * per CPU-second of the three nodes (/proc, every thread), and HAProxy's
 * and Redis's CPU beside them, outside the ratio.
 *
 * Nodes are pinned to CPU 0; wrk, HAProxy and redis-server to CPU 1: on
 * this 2-core host the three nodes share one core, so requests/s is not
 * a multi-host figure; CPU per request is what compares. Writes
 * native-bench/results/nodes.json and the figure figures/nodes.svg.
 *
 *   npm run bench:nodes [-- --seconds 8 --connections 50 --rounds 1 --hot-keys 30 --loads zipf,mix,hot --modes owner,local]
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Ring } from '../src/cluster/ring.js';
import { until } from '../test/helpers/node.js';
import { freePort, RedisServer } from '../test/helpers/redis.js';
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
import { type BarGroup, barChart, percent } from './plot.js';
import { preloadStrataLayout } from './preload.js';
import { Progress, Report } from './report.js';
import { l1Delta, readRoles, type StrataNode, type StrataStats } from './strata-node.js';
import { cpuByRole, ROLES, type Role } from './threads.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '8' },
    connections: { type: 'string', default: '50' },
    /** Rounds of (owner, local); more than one alternates the modes. */
    rounds: { type: 'string', default: '1' },
    /** Keys of the hot load (all L1 hits). */
    'hot-keys': { type: 'string', default: '30' },
    /** Which loads, in which order, comma-separated: zipf, mix, hot (the first one fills the L1s for longer). */
    loads: { type: 'string', default: 'zipf,mix,hot' },
    /** Which routings, in which order, comma-separated: owner, local. */
    modes: { type: 'string', default: 'owner,local' },
  },
});
const SECONDS = Number(args.seconds);
const CONNECTIONS = Number(args.connections);
const ROUNDS = Number(args.rounds);
const HOT_KEYS = Number(args['hot-keys']);
const NODES = 3;
const KEYS = 100_000;
const VALUE_BYTES = 1024;
const ZIPF_S = 0.99;
const PUT_SHARE = 0.05;
type Routing = 'owner' | 'local';
const MODES = args.modes.split(',').map((m) => {
  if (m !== 'owner' && m !== 'local') throw new Error(`--modes: ${m} is neither owner nor local`);
  return m as Routing;
});
const CLI = new URL('../src/cli.js', import.meta.url).pathname;
const startStep = (round: number, routing: Routing) => `round ${round}, ${routing}: preload Redis, start ${NODES} nodes and HAProxy`;
const loadStep = (round: number, routing: Routing, load: string) => `round ${round}, ${routing}: ${load}`;
let progress: Progress;

/** /v1/stats as this bench reads it: each front also says how many requests it answered. */
type NodeStats = Omit<StrataStats, 'fronts'> & { fronts?: { hotHits: number; requests: number }[] };

/** What the bench reads from GET /v1/cluster. */
interface ClusterView {
  ring: { fingerprint: string; members: { id: string }[] };
  forwarding: { forwarded: number; fallbacks: Record<string, number>; servedForPeers: number };
}

/** The three nodes of one mode, their ids in order, and the balancer in front of them. */
interface Cluster {
  routing: Routing;
  nodes: (StrataNode & { id: string })[];
  haproxy: Server;
}

/**
 * One load: its wrk script, and what runs unmeasured first: at least
 * `warmRequests` requests, in runs of WARM_CHUNK_SECONDS (the first load of
 * a mode fills the cold L1s: by requests, not by time, because forwarding
 * changes the request rate, and an L1 fills per request).
 */
interface Load {
  name: string;
  script: string;
  warmRequests: number;
}

/** Each unmeasured run's length, s; a load's warm-up is as many as it takes to reach its requests, at most MAX_WARM_SECONDS. */
const WARM_CHUNK_SECONDS = 3;
const MAX_WARM_SECONDS = 36;
/** The seed of every measured run: both modes measure the same key sequence. */
const MEASURED_SEED = 99;

/**
 * The script at `path` with its own random seed. The shared scripts seed
 * every run alike, so a measured run would replay the keys its warm-up just
 * read (and each warm-up run the one before): a short run would then look
 * better than the steady state. Every run here gets its own seed instead.
 */
function reseeded(path: string, seed: number): string {
  const text = readFileSync(path, 'utf8');
  if (!/math\.randomseed\(\d+\)/.test(text)) throw new Error(`${path} does not seed its generator`);
  const out = path.replace(/\.lua$/, `-seed${seed}.lua`);
  writeFileSync(out, text.replace(/math\.randomseed\(\d+\)/, `math.randomseed(${seed})`));
  return out;
}

/** Everything read before and after a measured run. */
interface Snapshot {
  stats: NodeStats[];
  views: ClusterView[];
  cpu: ReturnType<typeof cpuOf>[];
  haproxyCpu: number;
  redisCpu: number;
  redisCalls: number;
  cpus: { busy: number; total: number }[];
}

interface Run extends Measured {
  round: number;
  routing: Routing;
  load: string;
  /** Requests of the unmeasured runs before it. */
  warmRequests: number;
  /** L1 lookups and hits, summed over the nodes. */
  l1Gets: number;
  l1Hits: number;
  /** L2 reads the shards made (an MGET of several keys counts each key), summed over the nodes. */
  l2Gets: number;
  /** Commands Redis executed (INFO commandstats, the bench's INFO left out). */
  redisCalls: number;
  forwarded: number;
  /** Reads the ring sent elsewhere that were served here instead (breaker, unreachable, timeout). */
  fallbacks: number;
  servedForPeers: number;
  /** Requests the nodes' fronts answered, summed (a forwarded read counts at both nodes). */
  frontRequests: number;
  /** L1 lookups per node, n1 … n3. */
  l1GetsByNode: number[];
  haproxyCpuSeconds: number;
  redisCpuSeconds: number;
  /** The nodes' CPU by thread role, seconds. */
  cpuByRole: Record<Role, number>;
  /** How busy the nodes' CPU and the load's CPU were (everything on them, other processes included), 0–1. */
  serverCpuBusy: number;
  loadCpuBusy: number;
}

function requireHaproxy(): void {
  try {
    execFileSync('haproxy', ['-v'], { stdio: 'ignore' });
  } catch {
    console.error('haproxy is required: apt-get install haproxy');
    process.exit(1);
  }
}

/** Busy and total jiffies of each CPU so far (/proc/stat; idle and iowait are not busy). */
function cpuTimes(): { busy: number; total: number }[] {
  const out: { busy: number; total: number }[] = [];
  for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
    const m = /^cpu(\d+) (.*)$/.exec(line);
    if (m === null) continue;
    const f = (m[2] as string).trim().split(/\s+/).map(Number);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    out[Number(m[1])] = { busy: total - (f[3] as number) - (f[4] as number), total };
  }
  return out;
}

/** Commands Redis has executed so far, every command but INFO (which the bench sends to read this). */
async function redisCalls(redis: RedisServer): Promise<number> {
  const info = await redis.cli('INFO', 'commandstats');
  let calls = 0;
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (m[1] !== 'info') calls += Number(m[2]);
  return calls;
}

/** `n` distinct free ports. */
async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port (a process that exited fails it). */
async function listening(port: number, child: Server['child']): Promise<void> {
  await until(async () => {
    if (child.exitCode !== null) throw new Error(`the process for port ${port} exited with ${child.exitCode}`);
    return new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
  }, 5000);
}

/** HAProxy on CPU 1, one thread, round robin over the nodes, keep-alive to them and connections shared between clients. */
async function startHaproxy(dir: string, nodePorts: readonly number[]): Promise<Server> {
  const port = await freePort();
  const config = join(dir, `haproxy-${port}.cfg`);
  writeFileSync(
    config,
    [
      'global',
      '  nbthread 1',
      '  maxconn 4096',
      'defaults',
      '  mode http',
      '  option http-keep-alive',
      '  http-reuse always',
      '  timeout connect 5s',
      '  timeout client 30s',
      '  timeout server 30s',
      'frontend strata',
      `  bind 127.0.0.1:${port}`,
      '  default_backend nodes',
      'backend nodes',
      '  balance roundrobin',
      ...nodePorts.map((p, i) => `  server n${i + 1} 127.0.0.1:${p}`),
      '',
    ].join('\n'),
  );
  const child = spawn('taskset', ['-c', WRK_CPU, 'haproxy', '-db', '-f', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  await listening(port, child);
  return { child, port };
}

/**
 * Starts the three nodes (n1 … n3 on a static ring, pinned to CPU 0) and
 * HAProxy, and checks that the nodes route as asked: with `owner`, all three
 * name the same node for a key, the one this process's Ring names; with
 * `local`, each names itself.
 */
async function startCluster(dir: string, redisUrl: string, routing: Routing, l1Bytes: number): Promise<Cluster> {
  const ports = await freePorts(NODES);
  const ids = ports.map((_, i) => `n${i + 1}`);
  const members = ports.map((p, i) => `${ids[i]}=http://127.0.0.1:${p}`).join(',');
  const started = await Promise.allSettled(
    ports.map(async (port, i) => {
      const argv = ['--max-semi-space-size=2', CLI, '--port', String(port), '--fronts', '1', '--shards', '1', '--redis-url', redisUrl];
      argv.push('--node-id', ids[i] as string, '--members', members, '--registry', 'off', '--routing', routing);
      argv.push('--l1-max-bytes', String(l1Bytes), '--l1-admission', 'tinylfu', '--max-value-bytes', '4k');
      // startProcess waits for the node's 'listening' line; the port is the one given here, not the one it drew for '$PORT'.
      const { child } = await startProcess(argv, {}, SERVER_CPU);
      const node = { child, port, id: ids[i] as string, fronts: 1, shards: 1, roles: new Map<number, Role>(), rolesReported: false };
      await readRoles(node);
      return node;
    }),
  );
  const nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failed = started.find((s) => s.status === 'rejected');
  if (failed !== undefined) {
    await Promise.all(nodes.map((n) => stop(n)));
    throw failed.reason;
  }
  const haproxy = await startHaproxy(dir, ports).catch(async (err: unknown) => {
    await Promise.all(nodes.map((n) => stop(n)));
    throw err;
  });
  const cluster: Cluster = { routing, nodes, haproxy };
  const ring = new Ring(ids.map((id) => ({ id, weight: 1 })));
  for (const view of await Promise.all(nodes.map((n) => getJson<ClusterView>(`http://127.0.0.1:${n.port}/v1/cluster`)))) {
    if (view.ring.fingerprint !== ring.fingerprint) throw new Error(`a node's ring ${view.ring.fingerprint} is not this process's ${ring.fingerprint}`);
  }
  for (const key of ['k0', 'k1', 'k2', 'k3']) {
    for (const node of nodes) {
      const res = await fetch(`http://127.0.0.1:${node.port}/v1/keys/${key}`);
      await res.arrayBuffer();
      const servedBy = res.headers.get('x-strata-node');
      const expected = routing === 'owner' ? ring.owner(key) : node.id;
      if (servedBy !== expected) throw new Error(`${key} through ${node.id} (routing ${routing}) was served by ${servedBy}, expected ${expected}`);
    }
  }
  return cluster;
}

async function stopCluster(cluster: Cluster): Promise<void> {
  await stop(cluster.haproxy);
  await Promise.all(cluster.nodes.map((n) => stop(n)));
}

async function snapshot(cluster: Cluster, redis: RedisServer, cpuLast: boolean): Promise<Snapshot> {
  const readHttp = async () => ({
    stats: await Promise.all(cluster.nodes.map((n) => getJson<NodeStats>(`http://127.0.0.1:${n.port}/v1/stats`))),
    views: await Promise.all(cluster.nodes.map((n) => getJson<ClusterView>(`http://127.0.0.1:${n.port}/v1/cluster`))),
    redisCalls: await redisCalls(redis),
  });
  const readCpu = () => ({
    cpu: cluster.nodes.map((n) => cpuOf(n.child.pid as number)),
    haproxyCpu: cpuOf(cluster.haproxy.child.pid as number).total,
    redisCpu: cpuOf(redis.pid as number).total,
    cpus: cpuTimes(),
  });
  // CPU is read closest to wrk's run: after the HTTP readings before it, before them after it.
  if (cpuLast) {
    const http = await readHttp();
    return { ...http, ...readCpu() };
  }
  const cpu = readCpu();
  return { ...cpu, ...(await readHttp()) };
}

function busyShare(before: Snapshot, after: Snapshot, cpu: number): number {
  const b = before.cpus[cpu];
  const a = after.cpus[cpu];
  return a === undefined || b === undefined ? Number.NaN : (a.busy - b.busy) / (a.total - b.total);
}

async function measure(cluster: Cluster, redis: RedisServer, load: Load, round: number): Promise<Run> {
  let warmed = 0;
  for (let seconds = 0; warmed < load.warmRequests && seconds < MAX_WARM_SECONDS; seconds += WARM_CHUNK_SECONDS) {
    if (load.warmRequests > 1) progress.update(`warm-up, ${fmt(warmed)} of ${fmt(load.warmRequests)} requests`);
    warmed += runWrk(cluster.haproxy.port, reseeded(load.script, 1000 + seconds), WARM_CHUNK_SECONDS, CONNECTIONS).requests;
  }
  progress.update(`measuring (${SECONDS} s)`);
  const s0 = await snapshot(cluster, redis, true);
  const wrk = runWrk(cluster.haproxy.port, reseeded(load.script, MEASURED_SEED), SECONDS, CONNECTIONS);
  const s1 = await snapshot(cluster, redis, false);
  const sum = (f: (i: number) => number) => cluster.nodes.reduce((total, _, i) => total + f(i), 0);
  const nodeCpu = sum((i) => (s1.cpu[i]?.total as number) - (s0.cpu[i]?.total as number));
  const l1 = cluster.nodes.map((_, i) => l1Delta(s0.stats[i] as NodeStats, s1.stats[i] as NodeStats));
  const view = (s: Snapshot, i: number) => (s.views[i] as ClusterView).forwarding;
  const stat = (s: Snapshot, i: number) => s.stats[i] as NodeStats;
  const byRole: Record<Role, number> = { front: 0, shard: 0, main: 0, v8: 0, other: 0 };
  cluster.nodes.forEach((node, i) => {
    const roles = cpuByRole(s0.cpu[i] as ReturnType<typeof cpuOf>, s1.cpu[i] as ReturnType<typeof cpuOf>, node.roles);
    for (const role of ROLES) byRole[role] += roles[role];
  });
  const fallbacksOf = (s: Snapshot, i: number) => Object.values(view(s, i).fallbacks).reduce((a, b) => a + b, 0);
  return {
    round,
    routing: cluster.routing,
    load: load.name,
    warmRequests: warmed,
    ...measured(wrk, nodeCpu),
    l1Gets: l1.reduce((a, d) => a + d.gets, 0),
    l1Hits: l1.reduce((a, d) => a + d.hits, 0),
    l2Gets: sum((i) => (stat(s1, i).levels.L2?.gets ?? 0) - (stat(s0, i).levels.L2?.gets ?? 0)),
    redisCalls: s1.redisCalls - s0.redisCalls,
    forwarded: sum((i) => view(s1, i).forwarded - view(s0, i).forwarded),
    fallbacks: sum((i) => fallbacksOf(s1, i) - fallbacksOf(s0, i)),
    servedForPeers: sum((i) => view(s1, i).servedForPeers - view(s0, i).servedForPeers),
    frontRequests: sum((i) => (stat(s1, i).fronts ?? []).reduce((a, f) => a + f.requests, 0) - (stat(s0, i).fronts ?? []).reduce((a, f) => a + f.requests, 0)),
    l1GetsByNode: l1.map((d) => d.gets),
    haproxyCpuSeconds: s1.haproxyCpu - s0.haproxyCpu,
    redisCpuSeconds: s1.redisCpu - s0.redisCpu,
    cpuByRole: byRole,
    serverCpuBusy: busyShare(s0, s1, Number(SERVER_CPU)),
    loadCpuBusy: busyShare(s0, s1, Number(WRK_CPU)),
  };
}

const us = (seconds: number, requests: number) => fmt((seconds / requests) * 1e6, 1);

function printTables(runs: Run[], loads: readonly Load[], capacity: number): void {
  console.log('\n### Throughput through HAProxy (round robin)\n');
  console.log('| round | load | routing | req/s | p50 ms | p99 ms | errors |');
  console.log('|---:|---|---|---:|---:|---:|---:|');
  for (const r of runs) console.log(`| ${r.round} | ${r.load} | ${r.routing} | ${fmt(r.rps)} | ${fmt(r.p50ms, 3)} | ${fmt(r.p99ms, 3)} | ${r.errors} |`);

  console.log(`\n### The cluster's L1 and Redis (each node's L1 ≈ ${fmt(capacity)} entries, 10 % of the keyspace)\n`);
  console.log(
    '| round | load | routing | cluster L1 hit ratio | L1 lookups / request | forwarded / request | fallbacks | Redis calls / request | L2 key reads / request |',
  );
  console.log('|---:|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of runs) {
    console.log(
      `| ${r.round} | ${r.load} | ${r.routing} | ${pct(r.l1Hits / r.l1Gets)} | ${fmt(r.l1Gets / r.requests, 3)} | ${fmt(r.forwarded / r.requests, 3)} | ${r.fallbacks} | ${fmt(r.redisCalls / r.requests, 3)} | ${fmt(r.l2Gets / r.requests, 3)} |`,
    );
  }

  console.log('\n### CPU: the three nodes (every thread), and HAProxy and Redis beside them (not in the ratio)\n');
  console.log(
    `| round | load | routing | req per node CPU-s | node µs/req | ${ROLES.map((r) => `${r} µs`).join(' | ')} | HAProxy µs/req | Redis µs/req | CPU ${SERVER_CPU} busy (nodes) | CPU ${WRK_CPU} busy (wrk, HAProxy, Redis) |`,
  );
  console.log(`|---:|---|---|---:|---:|${ROLES.map(() => '---:|').join('')}---:|---:|---:|---:|`);
  for (const r of runs) {
    console.log(
      `| ${r.round} | ${r.load} | ${r.routing} | ${fmt(r.perCpuSecond)} | ${us(r.cpuSeconds, r.requests)} | ${ROLES.map((role) => us(r.cpuByRole[role], r.requests)).join(' | ')} | ${us(r.haproxyCpuSeconds, r.requests)} | ${us(r.redisCpuSeconds, r.requests)} | ${pct(r.serverCpuBusy)} | ${pct(r.loadCpuBusy)} |`,
    );
  }

  console.log('\n### owner / local, same round\n');
  console.log('| round | load | req per node CPU-s | L1 hit ratio (owner, local) | Redis calls / request | req/s |');
  console.log('|---:|---|---:|---|---:|---:|');
  for (let round = 1; round <= ROUNDS; round++) {
    for (const load of loads) {
      const owner = runs.find((r) => r.round === round && r.load === load.name && r.routing === 'owner');
      const local = runs.find((r) => r.round === round && r.load === load.name && r.routing === 'local');
      if (owner === undefined || local === undefined) continue;
      console.log(
        `| ${round} | ${load.name} | ${fmt(owner.perCpuSecond / local.perCpuSecond, 3)} | ${pct(owner.l1Hits / owner.l1Gets)}, ${pct(local.l1Hits / local.l1Gets)} | ${fmt(owner.redisCalls / owner.requests / (local.redisCalls / local.requests), 3)} | ${fmt(owner.rps / local.rps, 3)} |`,
      );
    }
  }

  console.log('\n### The forward hop, from the hot load (every read an L1 hit in both modes)\n');
  console.log(
    '| round | node µs/req, local | node µs/req, owner | forwarded / request | node µs per forward | of which front µs | HAProxy µs/req local, owner |',
  );
  console.log('|---:|---:|---:|---:|---:|---:|---|');
  for (let round = 1; round <= ROUNDS; round++) {
    const owner = runs.find((r) => r.round === round && r.load === 'hot keys' && r.routing === 'owner');
    const local = runs.find((r) => r.round === round && r.load === 'hot keys' && r.routing === 'local');
    if (owner === undefined || local === undefined) continue;
    // What the owner-mode requests would have cost served where they landed, taken from the local run.
    const extra = owner.cpuSeconds - (local.cpuSeconds / local.requests) * owner.requests;
    const extraFront = owner.cpuByRole.front - (local.cpuByRole.front / local.requests) * owner.requests;
    console.log(
      `| ${round} | ${us(local.cpuSeconds, local.requests)} | ${us(owner.cpuSeconds, owner.requests)} | ${fmt(owner.forwarded / owner.requests, 3)} | ${us(extra, owner.forwarded)} | ${us(extraFront, owner.forwarded)} | ${us(local.haproxyCpuSeconds, local.requests)}, ${us(owner.haproxyCpuSeconds, owner.requests)} |`,
    );
  }

  console.log('\nAccounting (each run): Σ L1 lookups and Σ front requests over the nodes against wrk requests; L1 lookups per node');
  for (const r of runs) {
    console.log(
      `- ${r.round} ${r.load} ${r.routing}: warm-up ${fmt(r.warmRequests)} requests, measured ${fmt(r.requests)}, L1 lookups ${fmt(r.l1Gets)} (${fmt(r.l1Gets / r.requests, 3)}), front requests ${fmt(r.frontRequests)} (${fmt(r.frontRequests / r.requests, 3)}), forwarded ${fmt(r.forwarded)}, served for peers ${fmt(r.servedForPeers)}, L1 lookups by node ${r.l1GetsByNode.map((n) => fmt(n)).join(' / ')}`,
    );
  }
}

function drawFigure(report: Report, runs: Run[], loads: readonly Load[], capacity: number): void {
  const med = (load: string, routing: Routing, value: (r: Run) => number) => median(runs.filter((r) => r.load === load && r.routing === routing).map(value));
  const groups = (value: (r: Run) => number): BarGroup[] =>
    loads.map((l) => ({ label: l.name, bars: MODES.map((routing) => ({ label: `--routing ${routing}`, value: med(l.name, routing, value) })) }));
  report.figure(
    'nodes',
    `bench:nodes: ${NODES} nodes behind round-robin HAProxy, owner forwarding against serving every key where it lands`,
    [
      barChart({
        title: 'Requests per node CPU-second',
        yLabel: 'requests per CPU-second of the nodes',
        width: 460,
        height: 320,
        groups: groups((r) => r.perCpuSecond),
      }),
      barChart({ title: 'p99 latency through HAProxy', yLabel: 'p99 latency (ms)', width: 460, height: 320, groups: groups((r) => r.p99ms) }),
      barChart({
        title: "The cluster's L1 hit ratio",
        yLabel: 'L1 hits / L1 lookups (%)',
        width: 460,
        height: 320,
        format: percent,
        groups: groups((r) => r.l1Hits / r.l1Gets),
      }),
      barChart({
        title: 'Redis calls per request',
        yLabel: 'Redis commands per request',
        width: 460,
        height: 320,
        groups: groups((r) => r.redisCalls / r.requests),
      }),
    ],
    {
      columns: 2,
      notes: [
        `Zipf s = ${ZIPF_S} over ${fmt(KEYS)} keys × ${fmt(VALUE_BYTES)} B (mix: ${PUT_SHARE * 100} % PUTs), each node's L1 ≈ ${fmt(capacity)} entries; hot keys: ${HOT_KEYS} keys, all L1 hits; ${NODES} nodes on CPU ${SERVER_CPU}, wrk -c${CONNECTIONS} (${SECONDS} s), HAProxy and Redis on CPU ${WRK_CPU}: CPU per request compares, not req/s; medians over ${ROUNDS} round(s)`,
      ],
    },
  );
}

async function main(): Promise<void> {
  requireWrk();
  requireHaproxy();
  const report = new Report('nodes');
  const dir = mkdtempSync(join(tmpdir(), 'strata-nodes-bench-'));
  const { l1Bytes, capacity } = zipfL1Budget(KEYS, VALUE_BYTES);
  const known: Record<string, Omit<Load, 'warmRequests'>> = {
    zipf: { name: 'Zipf GETs', script: zipfScript(dir, { keys: KEYS, s: ZIPF_S, putShare: 0, valueBytes: VALUE_BYTES }) },
    mix: { name: 'Zipf 95/5 mix', script: zipfScript(dir, { keys: KEYS, s: ZIPF_S, putShare: PUT_SHARE, valueBytes: VALUE_BYTES }) },
    hot: { name: 'hot keys', script: uniformGetScript(dir, HOT_KEYS) },
  };
  const loads: Load[] = args.loads.split(',').map((name, i) => {
    const load = known[name];
    if (load === undefined) throw new Error(`--loads: ${name} is not one of ${Object.keys(known).join(', ')}`);
    // The first load of a mode also fills the cold L1s: 1.2× the keyspace in requests; the others warm one run.
    return { ...load, warmRequests: i === 0 ? 1.2 * KEYS : 1 };
  });
  const steps: { name: string; seconds: number }[] = [];
  for (let round = 1; round <= ROUNDS; round++) {
    for (const routing of MODES) {
      steps.push({ name: startStep(round, routing), seconds: 6 });
      // The first load's warm-up is by requests (planned at ~8,000 req/s), the others' one run.
      for (const load of loads) {
        const warm =
          load.warmRequests > 1
            ? Math.min(MAX_WARM_SECONDS, Math.ceil(load.warmRequests / 8000 / WARM_CHUNK_SECONDS) * WARM_CHUNK_SECONDS)
            : WARM_CHUNK_SECONDS;
        steps.push({ name: loadStep(round, routing, load.name), seconds: warm + SECONDS + 1 });
      }
    }
  }
  progress = new Progress(steps);
  const redis = await RedisServer.start();
  execFileSync('taskset', ['-pc', WRK_CPU, String(redis.pid)], { stdio: 'ignore' });
  console.log(
    `machine: ${cpus()[0]?.model ?? '?'} x${availableParallelism()}, node ${process.version}; ${NODES} nodes on cpu ${SERVER_CPU}, wrk, HAProxy and redis-server on cpu ${WRK_CPU}`,
  );
  console.log(
    `${CONNECTIONS} connections, ${SECONDS}s per run; Zipf s=${ZIPF_S} over ${fmt(KEYS)} keys of ${VALUE_BYTES} B; L1 ${fmt(l1Bytes / 1048576, 1)} MiB per node (~${fmt(capacity)} entries); the best static choice of ${fmt(capacity)} keys serves ${pct(zipfStaticOptimum(KEYS, capacity, ZIPF_S))} of reads, of ${fmt(capacity * NODES)} keys ${pct(zipfStaticOptimum(KEYS, capacity * NODES, ZIPF_S))}`,
  );
  console.log(
    `loads in this order for each mode: ${loads.map((l) => l.name).join(', ')}; unmeasured first: ${fmt(loads[0]?.warmRequests ?? 0)} requests (${WARM_CHUNK_SECONDS}s runs, at most ${MAX_WARM_SECONDS}s) before the first, one ${WARM_CHUNK_SECONDS}s run before the others; Redis preloaded before each mode`,
  );
  const runs: Run[] = [];
  const startedMs = performance.now();
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const routing of MODES) {
        progress.start(startStep(round, routing));
        // The mix's PUTs changed Redis: every mode starts from the same data.
        await preloadStrataLayout(redis.url, KEYS, VALUE_BYTES);
        const cluster = await startCluster(dir, redis.url, routing, l1Bytes);
        try {
          for (const load of loads) {
            progress.start(loadStep(round, routing, load.name));
            const run = await measure(cluster, redis, load, round);
            console.log(
              `${fmt((performance.now() - startedMs) / 1000)}s: round ${round}, ${routing}, ${load.name}: ${fmt(run.warmRequests)} warm-up requests, ${fmt(run.rps)} req/s, ${fmt(run.perCpuSecond)} per node CPU-s, L1 hit ${pct(run.l1Hits / run.l1Gets)}`,
            );
            runs.push(run);
          }
        } finally {
          await stopCluster(cluster);
        }
      }
    }
  } finally {
    progress.end();
    await redis.stop();
  }
  printTables(runs, loads, capacity);
  const options = {
    seconds: SECONDS,
    connections: CONNECTIONS,
    rounds: ROUNDS,
    hotKeys: HOT_KEYS,
    loads: loads.map((l) => l.name),
    modes: MODES,
    nodes: NODES,
    keys: KEYS,
    valueBytes: VALUE_BYTES,
    zipfS: ZIPF_S,
    putShare: PUT_SHARE,
    l1Bytes,
    l1Entries: capacity,
  };
  report.json({ options, runs });
  drawFigure(report, runs, loads, capacity);
  console.log(report.summary());
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

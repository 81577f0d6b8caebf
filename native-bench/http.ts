/**
 * HTTP benchmark: Strata against a bare uWebSockets.js + Map server, in one run.
 *
 * Each server is pinned to one core (taskset -c SERVER_CPU) and wrk to the other
 * (WRK_CPU); 1 KiB values, 10,000 keys, 50 keep-alive connections. Reports
 * requests/s, p50/p99 latency and requests per server CPU-second (utime+stime
 * of every thread of the server process, from /proc), and the ratio of Strata
 * to bare. Rounds alternate bare and Strata so drift hits both alike.
 * Writes native-bench/results/http.json and the figure figures/http.svg
 * (requests per server CPU-second and p99 per server and workload).
 *
 *   npm run bench:http [-- --seconds 10 --rounds 2 --fronts 1 --shards 1]
 */
import { mkdtempSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuOf, fmt, getJson, type Measured, measured, median, requireWrk, runWrk, SERVER_CPU, type Server, startProcess, stop, WRK_CPU } from './harness.js';
import { uniformGetScript, uniformPutScript } from './load-scripts.js';
import { efficiencyPanels } from './plot.js';
import { Progress, Report } from './report.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '2' },
    shards: { type: 'string', default: '1' },
    fronts: { type: 'string', default: '1' },
    connections: { type: 'string', default: '50' },
    keys: { type: 'string', default: '10000' },
    'value-bytes': { type: 'string', default: '1024' },
  },
});
const SECONDS = Number(args.seconds);
const ROUNDS = Number(args.rounds);
const KEYS = Number(args.keys);
const VALUE_BYTES = Number(args['value-bytes']);
const CONNECTIONS = Number(args.connections);
const wrk = (port: number, script: string, seconds = SECONDS) => runWrk(port, script, seconds, CONNECTIONS);
const root = new URL('../../', import.meta.url).pathname;
/** Unmeasured seconds of each run: the start, the preload of KEYS values, and wrk's 2 s warm-up. */
const SETUP_SECONDS = 5;
const SERVERS = ['bare', 'strata'] as const;
const stepName = (kind: string, workload: string, round: number | null) => `${workload}, ${kind}${round === null ? '' : `, round ${round + 1}`}`;

function startServer(kind: 'bare' | 'strata'): Promise<Server> {
  const argv =
    kind === 'bare'
      ? [join(root, 'dist/native-bench/bare-server.js'), '$PORT']
      : [join(root, 'dist/src/cli.js'), '--port', '$PORT', '--fronts', String(args.fronts), '--shards', String(args.shards), '--l1-max-bytes', '1g'];
  return startProcess(argv, {}, SERVER_CPU);
}

async function preload(port: number): Promise<void> {
  const value = new Uint8Array(VALUE_BYTES).fill(120);
  let next = 0;
  const worker = async () => {
    while (next < KEYS) {
      const k = next++;
      const res = await fetch(`http://127.0.0.1:${port}/v1/keys/k${k}?ttl=3600`, { method: 'PUT', body: value });
      if (res.status !== 204) throw new Error(`preload PUT k${k}: ${res.status}`);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

interface Run extends Measured {
  kind: string;
  workload: string;
  threads: string;
  elu?: string;
}

async function measure(kind: 'bare' | 'strata', workload: 'GET' | 'PUT', script: string): Promise<Run> {
  const server = await startServer(kind);
  const { child, port } = server;
  try {
    await preload(port);
    // Warm-up, not measured: JIT, and for Strata the first read of each key (through its shard).
    wrk(port, script, 2);
    const pid = child.pid as number;
    const before = cpuOf(pid);
    if (kind === 'strata') await getJson(`http://127.0.0.1:${port}/v1/stats`);
    const result = wrk(port, script);
    const after = cpuOf(pid);
    const cpuSeconds = after.total - before.total;
    const busy = [...after.threads]
      .map(([tid, [name, s]]) => [name, (s - (before.threads.get(tid)?.[1] ?? 0)) / SECONDS] as const)
      .filter(([, share]) => share >= 0.01)
      .sort((a, b) => b[1] - a[1])
      .map(([name, share]) => `${name} ${(share * 100).toFixed(0)}%`)
      .join(', ');
    let elu: string | undefined;
    if (kind === 'strata') {
      const stats = await getJson<{ frontUtilization: number; shards: { utilization: number; opsPerBatch: number }[] }>(`http://127.0.0.1:${port}/v1/stats`);
      elu = `front ${(stats.frontUtilization * 100).toFixed(0)}%, shards ${stats.shards.map((s) => `${(s.utilization * 100).toFixed(0)}%`).join('/')}; ops/batch ${stats.shards.map((s) => s.opsPerBatch.toFixed(1)).join('/')}`;
    }
    return { kind, workload, ...measured(result, cpuSeconds), threads: busy, ...(elu === undefined ? {} : { elu }) };
  } finally {
    await stop(server);
  }
}

/** Median over rounds of `field`, for one server and workload. */
function medianOf(results: Run[], kind: string, workload: string, field: 'perCpuSecond' | 'p99ms' | 'rps'): number {
  return median(results.filter((r) => r.kind === kind && r.workload === workload).map((r) => r[field]));
}

function drawFigure(report: Report, results: Run[]): void {
  const groups = (field: 'perCpuSecond' | 'p99ms') =>
    (['GET', 'PUT'] as const).map((workload) => ({
      label: workload === 'GET' ? 'GET hits' : 'PUTs',
      bars: SERVERS.map((kind) => ({ label: kind === 'bare' ? 'bare uWS + Map' : 'Strata', value: medianOf(results, kind, workload, field) })),
    }));
  report.figure('http', 'bench:http: Strata against a bare uWebSockets.js + Map server', [...efficiencyPanels(groups, 420)], {
    notes: [
      `${fmt(KEYS)} keys × ${fmt(VALUE_BYTES)} B, wrk -c${CONNECTIONS} for ${SECONDS} s per run; server on CPU ${SERVER_CPU}, wrk on CPU ${WRK_CPU}; GET: median over ${ROUNDS} round(s), PUT: one run`,
    ],
  });
}

async function main(): Promise<void> {
  requireWrk();
  const report = new Report('http');
  const plan = [
    ...Array.from({ length: ROUNDS }, (_, round) => SERVERS.map((kind) => stepName(kind, 'GET', round))).flat(),
    ...SERVERS.map((kind) => stepName(kind, 'PUT', null)),
  ].map((name) => ({ name, seconds: SECONDS + SETUP_SECONDS }));
  const progress = new Progress(plan);
  const dir = mkdtempSync(join(tmpdir(), 'strata-bench-'));
  const scripts = { get: uniformGetScript(dir, KEYS), put: uniformPutScript(dir, KEYS, VALUE_BYTES) };
  console.log(`machine: ${cpus()[0]?.model ?? '?'} x${availableParallelism()}, node ${process.version}; server on cpu ${SERVER_CPU}, wrk on cpu ${WRK_CPU}`);
  console.log(
    `workload: ${KEYS} keys x ${VALUE_BYTES} B, ${CONNECTIONS} connections, ${SECONDS}s per run, ${ROUNDS} rounds, strata fronts=${args.fronts} shards=${args.shards}\n`,
  );
  const results: Run[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of SERVERS) results.push(await progress.run(stepName(kind, 'GET', round), () => measure(kind, 'GET', scripts.get)));
  }
  for (const kind of SERVERS) results.push(await progress.run(stepName(kind, 'PUT', null), () => measure(kind, 'PUT', scripts.put)));
  progress.end();

  console.log('| server | workload | req/s | p50 ms | p99 ms | server CPU-s | req per CPU-s | errors | busiest threads |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|---|');
  for (const r of results) {
    console.log(
      `| ${r.kind} | ${r.workload} | ${fmt(r.rps)} | ${fmt(r.p50ms, 3)} | ${fmt(r.p99ms, 3)} | ${fmt(r.cpuSeconds, 2)} | ${fmt(r.perCpuSecond)} | ${r.errors} | ${r.threads}${r.elu ? `; ELU ${r.elu}` : ''} |`,
    );
  }
  // Each round's ratio compares two back-to-back runs, so drift on the host largely cancels out.
  const ratios = (workload: string) => {
    const bare = results.filter((r) => r.kind === 'bare' && r.workload === workload);
    const strata = results.filter((r) => r.kind === 'strata' && r.workload === workload);
    return strata.map((s, i) => s.perCpuSecond / (bare[i] as Run).perCpuSecond);
  };
  const get = ratios('GET');
  console.log(`\nGET hits, req per server CPU-second, strata/bare by round: ${get.map((r) => r.toFixed(3)).join(', ')}; median ${median(get).toFixed(3)}`);
  console.log(
    `PUT, req per server CPU-second, strata/bare: ${ratios('PUT')
      .map((r) => r.toFixed(3))
      .join(', ')}`,
  );
  const options = { seconds: SECONDS, rounds: ROUNDS, keys: KEYS, valueBytes: VALUE_BYTES, connections: CONNECTIONS, fronts: args.fronts, shards: args.shards };
  report.json({ options, runs: results, getRatios: get, getRatioMedian: median(get), putRatios: ratios('PUT') });
  drawFigure(report, results);
  console.log(report.summary());
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

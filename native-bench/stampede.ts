/**
 * Stampede benchmark: how many requests reach a slow origin (50 ms) when Zipf
 * keys with a short TTL (2 s) keep expiring under load, with each layer of
 * protection added in turn, against the unprotected baseline measured in the
 * same run:
 *
 *   none        three naive cache-aside proxies (naive-proxy.ts): a miss or an
 *               expiry asks the origin once per request
 *   in-node     three Strata nodes without an L2: one load per key per node
 *   cross-node  three Strata nodes sharing Redis: one load per key (the lock)
 *   +SWR        … with stale-while-revalidate (30 s): expired keys are answered stale
 *   +early      … with XFetch early refresh (β = 1): hot keys refreshed before expiry
 *
 * and the CPU cost of a lease cycle (GET ?lease= → 404 + token, PUT with the
 * token) against a plain cache-aside cycle (GET → 404, PUT), per request.
 *
 * Servers are pinned to CPU 0; wrk (three processes, one per node), the
 * origin and Redis to CPU 1. Writes native-bench/results/stampede.json and
 * the figure figures/stampede.svg.
 *
 *   npm run bench:stampede [-- --seconds 10 --keys 200 --connections 32]
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { freePort, RedisServer } from '../test/helpers/redis.js';
import { cpuOf, fmt, getJson, parseLatency, requireWrk, SERVER_CPU, WRK_CPU } from './harness.js';
import { barChart, horizontalBarChart } from './plot.js';
import { Progress, Report } from './report.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    keys: { type: 'string', default: '200' },
    connections: { type: 'string', default: '32' },
    'latency-ms': { type: 'string', default: '50' },
    'ttl-s': { type: 'string', default: '2' },
  },
});
const SECONDS = Number(args.seconds);
const KEYS = Number(args.keys);
const CONNECTIONS = Number(args.connections);
const LATENCY_MS = Number(args['latency-ms']);
const TTL_S = Number(args['ttl-s']);
const root = new URL('../../', import.meta.url).pathname;
const run = promisify(execFile);
/** Each layer: its name, how its three servers start, and whether they are Strata nodes. */
const LAYERS = [
  'none (naive cache-aside ×3)',
  'in-node (3 nodes, no L2)',
  'cross-node (3 nodes + Redis lock)',
  '+ stale-while-revalidate 30 s',
  '+ early refresh (XFetch, β = 1)',
] as const;
const leaseStep = (kind: 'plain' | 'lease') => `lease CPU cost: ${kind === 'plain' ? 'plain cache-aside cycle' : 'lease cycle'}`;
let progress: Progress;

interface Proc {
  child: ChildProcess;
  port: number;
}

async function start(script: string, argv: (port: number) => string[], cpu: string, env: Record<string, string> = {}): Promise<Proc> {
  const port = await freePort();
  const child = spawn('taskset', ['-c', cpu, process.execPath, join(root, script), ...argv(port)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    cwd: tmpdir(),
    env: { ...process.env, STRATA_CONFIG: '', REDIS_URL: '', ...env },
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('listening on')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`${script} exited with ${code}: ${out}`)));
  });
  return { child, port };
}

async function stop(procs: Proc[]): Promise<void> {
  await Promise.all(
    procs.map(async ({ child }) => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }),
  );
}

/** A wrk Lua script: GETs of item:<id>, id Zipf-distributed (s = 1) over KEYS keys. */
function zipfScript(dir: string, seed: number): string {
  const file = join(dir, `zipf-${seed}.lua`);
  writeFileSync(
    file,
    `local n, cdf = ${KEYS}, {}
init = function()
  math.randomseed(${seed})
  local h = 0
  for i = 1, n do h = h + 1 / i end
  local acc = 0
  for i = 1, n do acc = acc + 1 / i / h; cdf[i] = acc end
end
request = function()
  local r, lo, hi = math.random(), 1, n
  while lo < hi do local mid = math.floor((lo + hi) / 2); if cdf[mid] < r then lo = mid + 1 else hi = mid end end
  return wrk.format("GET", "/v1/keys/item:" .. lo)
end
`,
  );
  return file;
}

interface WrkOut {
  requests: number;
  p50: number;
  p99: number;
  errors: number;
}

async function wrk(port: number, script: string, seconds: number): Promise<WrkOut> {
  const { stdout } = await run(
    'taskset',
    ['-c', WRK_CPU, 'wrk', '-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-s', script, `http://127.0.0.1:${port}`],
    {
      maxBuffer: 1 << 20,
    },
  );
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  return {
    requests: Number(/(\d+) requests in/.exec(stdout)?.[1]),
    p50: parseLatency(stdout, '50'),
    p99: parseLatency(stdout, '99'),
    errors: non2xx + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0),
  };
}

interface Row {
  layer: string;
  rps: number;
  originPerS: number;
  originPeak: number;
  p50: number;
  p99: number;
  stale: number;
  errors: number;
}

async function measure(layer: string, nodes: Proc[], origin: Proc, scripts: string[], strata: boolean): Promise<Row> {
  // Warm-up (not measured): the hot keys loaded once.
  await Promise.all(nodes.map((n, i) => wrk(n.port, scripts[i] as string, 2)));
  const staleBefore = strata ? await staleAnswers(nodes) : 0;
  await getJson(`http://127.0.0.1:${origin.port}/__count?reset`);
  const runs = await Promise.all(nodes.map((n, i) => wrk(n.port, scripts[i] as string, SECONDS)));
  const count = await getJson<{ served: number; peak: number }>(`http://127.0.0.1:${origin.port}/__count?reset`);
  const requests = runs.reduce((s, r) => s + r.requests, 0);
  return {
    layer,
    rps: requests / SECONDS,
    originPerS: count.served / SECONDS,
    originPeak: count.peak,
    p50: runs.reduce((s, r) => s + r.p50, 0) / runs.length,
    p99: Math.max(...runs.map((r) => r.p99)),
    stale: strata ? ((await staleAnswers(nodes)) - staleBefore) / Math.max(1, requests) : 0,
    errors: runs.reduce((s, r) => s + r.errors, 0),
  };
}

async function staleAnswers(nodes: Proc[]): Promise<number> {
  const all = await Promise.all(nodes.map((n) => getJson<{ coordination: { staleAnswers: number } }>(`http://127.0.0.1:${n.port}/v1/stats`)));
  return all.reduce((s, st) => s + st.coordination.staleAnswers, 0);
}

async function strataNodes(origin: Proc, redisUrl: string, swr: number, beta: number, dir: string): Promise<Proc[]> {
  const config = join(dir, `strata-${swr}-${beta}-${redisUrl === '' ? 'l1' : 'l2'}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      shards: 1,
      earlyRefreshBeta: beta,
      ...(redisUrl === '' ? {} : { redisUrl }),
      origins: [{ prefix: 'item:', url: `http://127.0.0.1:${origin.port}/items/{id}`, ttl: TTL_S, staleWhileRevalidate: swr, timeoutMs: 2000 }],
    }),
  );
  return Promise.all([0, 1, 2].map(() => start('dist/src/cli.js', (port) => ['--port', String(port)], SERVER_CPU, { STRATA_CONFIG: config })));
}

/** CPU per request of a lease cycle against a plain cache-aside cycle, on one node. */
async function leaseCost(dir: string): Promise<{ plain: number; lease: number }> {
  const cycle = (lease: boolean) => {
    const file = join(dir, `cycle-${lease}.lua`);
    writeFileSync(
      file,
      `local n, step, token = 0, 0, nil
request = function()
  if step == 0 then
    n = n + 1
    return wrk.format("GET", "/v1/keys/aside:" .. n ${lease ? '.. "?lease=5000"' : ''})
  end
  local headers = {}
  ${lease ? 'if token then headers["strata-lease"] = token end' : ''}
  return wrk.format("PUT", "/v1/keys/aside:" .. n .. "?ttl=60", headers, "value")
end
response = function(status, headers, body)
  if step == 0 then token = headers["strata-lease"]; step = 1 else step = 0 end
end
`,
    );
    return file;
  };
  const result = { plain: 0, lease: 0 };
  for (const kind of ['plain', 'lease'] as const) {
    progress.start(leaseStep(kind));
    const redis = await RedisServer.start();
    const node = await start('dist/src/cli.js', (port) => ['--port', String(port), '--shards', '1', '--redis-url', redis.url], SERVER_CPU);
    try {
      // One connection: each cycle's PUT follows its GET.
      await run('taskset', ['-c', WRK_CPU, 'wrk', '-t1', '-c1', '-d2s', '-s', cycle(kind === 'lease'), `http://127.0.0.1:${node.port}`]);
      const before = cpuOf(node.child.pid as number).total;
      const { stdout } = await run('taskset', [
        '-c',
        WRK_CPU,
        'wrk',
        '-t1',
        '-c1',
        `-d${SECONDS}s`,
        '-s',
        cycle(kind === 'lease'),
        `http://127.0.0.1:${node.port}`,
      ]);
      const cpu = cpuOf(node.child.pid as number).total - before;
      result[kind] = (cpu * 1e6) / Number(/(\d+) requests in/.exec(stdout)?.[1]);
    } finally {
      await stop([node]);
      await redis.stop();
    }
  }
  return result;
}

function drawFigure(report: Report, rows: Row[], cost: { plain: number; lease: number }): void {
  const short = (layer: string) => layer.replace(/ \(.*\)$/, '');
  report.figure(
    'stampede',
    'bench:stampede: origin requests under expiring Zipf keys with each protection layer, and the CPU cost of a lease',
    [
      horizontalBarChart({
        title: 'Origin requests per 1,000 reads',
        xLabel: 'origin requests per 1,000 reads (log scale)',
        width: 520,
        log: true,
        rows: rows.map((r, i) => ({ label: r.layer, value: (1000 * r.originPerS) / r.rps, color: i === 0 ? 1 : 0 })),
        legend: [
          { label: 'unprotected baseline', color: 1 },
          { label: 'Strata, protection layers added in turn', color: 0 },
        ],
      }),
      horizontalBarChart({
        title: 'Reads per second (3 nodes)',
        xLabel: 'requests per second',
        width: 440,
        rows: rows.map((r, i) => ({ label: short(r.layer), value: r.rps, color: i === 0 ? 1 : 0 })),
      }),
      horizontalBarChart({
        title: 'p99 latency (worst of the 3 wrk)',
        xLabel: 'p99 latency (ms)',
        width: 440,
        rows: rows.map((r, i) => ({ label: short(r.layer), value: r.p99, color: i === 0 ? 1 : 0 })),
      }),
      barChart({
        title: 'CPU per request, one node with Redis',
        yLabel: 'µs of server CPU per request',
        width: 340,
        height: 300,
        groups: [
          {
            label: 'cache-aside cycle (GET miss, PUT)',
            bars: [
              { label: 'plain', value: cost.plain },
              { label: 'with a lease', value: cost.lease },
            ],
          },
        ],
      }),
    ],
    {
      columns: 2,
      notes: [
        `origin latency ${LATENCY_MS} ms, max-age ${TTL_S} s; ${KEYS} keys, Zipf s = 1; 3 servers on CPU ${SERVER_CPU}, each under wrk -c${CONNECTIONS} for ${SECONDS} s on CPU ${WRK_CPU}; one load per key per TTL would be ${fmt(KEYS / TTL_S, 1)} origin requests/s`,
      ],
    },
  );
}

async function main(): Promise<void> {
  requireWrk();
  const report = new Report('stampede');
  progress = new Progress([
    // Three servers' start, 2 s of warm-up, the measured run.
    ...LAYERS.map((name) => ({ name, seconds: 1.5 + 2 + SECONDS })),
    ...(['plain', 'lease'] as const).map((kind) => ({ name: leaseStep(kind), seconds: 1 + 2 + SECONDS })),
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'strata-stampede-'));
  console.log(`machine: ${cpus()[0]?.model ?? '?'} x${availableParallelism()}, node ${process.version}`);
  console.log(`origin latency ${LATENCY_MS} ms, max-age ${TTL_S} s; ${KEYS} keys, Zipf s = 1; 3 nodes × wrk -c${CONNECTIONS}, ${SECONDS} s per layer\n`);
  const scripts = [1, 2, 3].map((seed) => zipfScript(dir, seed));
  const origin = await start('dist/native-bench/origin-server.js', (port) => [String(port), String(LATENCY_MS), String(TTL_S)], WRK_CPU);
  const redis = await RedisServer.start();
  const rows: Row[] = [];
  try {
    const layers: [string, () => Promise<Proc[]>, boolean][] = [
      [
        LAYERS[0],
        () =>
          Promise.all([0, 1, 2].map(() => start('dist/native-bench/naive-proxy.js', (port) => [String(port), `http://127.0.0.1:${origin.port}`], SERVER_CPU))),
        false,
      ],
      [LAYERS[1], () => strataNodes(origin, '', 0, 0, dir), true],
      [LAYERS[2], () => strataNodes(origin, redis.url, 0, 0, dir), true],
      [LAYERS[3], () => strataNodes(origin, redis.url, 30, 0, dir), true],
      [LAYERS[4], () => strataNodes(origin, redis.url, 30, 1, dir), true],
    ];
    for (const [layer, startNodes, strata] of layers) {
      progress.start(layer);
      await run('redis-cli', ['-p', String(redis.port), 'flushall']);
      const nodes = await startNodes();
      try {
        rows.push(await measure(layer, nodes, origin, scripts, strata));
      } finally {
        await stop(nodes);
      }
    }
  } finally {
    await stop([origin]);
    await redis.stop();
  }
  console.log('\n| layers | req/s | origin requests/s | per 1,000 reads | origin peak concurrency | p50 ms | p99 ms | stale answers | errors |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const per1000 = (1000 * r.originPerS) / r.rps;
    console.log(
      `| ${r.layer} | ${fmt(r.rps)} | ${fmt(r.originPerS, 1)} | ${fmt(per1000, 1)} | ${r.originPeak} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${fmt(r.stale * 100, 1)} % | ${r.errors} |`,
    );
  }
  console.log(`(one load per key per TTL would be ${fmt(KEYS / TTL_S, 1)} origin requests/s)`);
  const cost = await leaseCost(dir);
  progress.end();
  console.log(
    `\nCPU per request, one node with Redis: plain cache-aside cycle (GET miss, PUT) ${fmt(cost.plain, 1)} µs; lease cycle (GET ?lease → token, PUT with it) ${fmt(cost.lease, 1)} µs; ratio ${(cost.lease / cost.plain).toFixed(2)}`,
  );
  const options = { seconds: SECONDS, keys: KEYS, connections: CONNECTIONS, latencyMs: LATENCY_MS, ttlS: TTL_S };
  const layers = rows.map((r) => ({ ...r, originPer1000Reads: (1000 * r.originPerS) / r.rps }));
  report.json({ options, layers, oneLoadPerKeyPerTtl: KEYS / TTL_S, leaseCostUsPerRequest: { ...cost, ratio: cost.lease / cost.plain } });
  drawFigure(report, rows, cost);
  console.log(report.summary());
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

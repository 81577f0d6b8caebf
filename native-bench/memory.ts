/**
 * Memory benchmark: where a node's memory goes, and the bound
 * RSS ≤ a·l1MaxBytes + b that docs/memory.md states.
 *
 * 1. entry: what one L1 entry costs the process beyond its key, header block
 *    and value (in this process, with --expose-gc), for small and 4 KiB values;
 * 2. fill: for each budget, a node (pinned to CPU 0) takes 10× its L1 budget in
 *    4 KiB PUTs of distinct keys (wrk on CPU 1), then reads for a while (so
 *    the hot-read arena fills too); its RSS is sampled from /proc until it
 *    settles, with /v1/stats `memory` beside it;
 * 3. aborted: 4,000 uploads of 1 MiB announced and cut off halfway; RSS
 *    before and after;
 * 4. the fit: a by least squares over the budgets, b the smallest constant
 *    that bounds every point.
 *
 * Writes native-bench/results/memory.json and the figure figures/memory.svg.
 *
 *   npm run bench:memory [-- --budgets 64m,256m,1g --shards 1]
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { defaultShards } from '../src/config/schema.js';
import { entrySize, L1_ENTRY_OVERHEAD_BYTES, L1Partition, ownedEntry, plainMeta } from '../src/l1/partition.js';
import type { MemoryStats } from '../src/metrics/stats.js';
import { freePort } from '../test/helpers/redis.js';
import { fmt, getJson, requireWrk, rssOf, SERVER_CPU, WRK_CPU } from './harness.js';
import { barChart } from './plot.js';
import { Progress, Report } from './report.js';

const { values: args } = parseArgs({
  options: {
    budgets: { type: 'string', default: '64m,256m,1g' },
    shards: { type: 'string', default: String(defaultShards()) },
    'value-bytes': { type: 'string', default: '4096' },
    aborted: { type: 'string', default: '4000' },
    /** Internal: measure one entry size in this (fresh) process and print JSON. */
    entry: { type: 'string' },
  },
});
const VALUE_BYTES = Number(args['value-bytes']);
const MiB = 1024 * 1024;
const root = new URL('../../', import.meta.url).pathname;
const gc = (globalThis as { gc?: () => void }).gc;
const ENTRY_SIZES = [16, 1024, 4096];
/** PUTs per second a node takes, for the plan only (the progress line corrects it as steps finish). */
const PLANNED_PUTS_PER_SECOND = 15_000;
const entryStep = (size: number) => `1. entry cost, ${fmt(size)} B values`;
const fillStep = (budget: string) => `2. fill: 10× ${budget} in ${fmt(VALUE_BYTES)} B PUTs`;
const abortedStep = () => `3. ${args.aborted} aborted uploads`;
let progress: Progress | null = null;

function bytesOf(text: string): number {
  const m = /^(\d+)([kmg])$/i.exec(text);
  if (m === null) throw new Error(`bad budget ${text}`);
  return Number(m[1]) * { k: 1024, m: MiB, g: 1024 * MiB }[(m[2] as string).toLowerCase() as 'k' | 'm' | 'g'];
}

/** Step 1: RSS per entry beyond what entrySize() counts as key, header and value. */
function entryCost(valueBytes: number): { rssPerEntry: number; chargedPerEntry: number; uncharged: number } {
  if (gc === undefined) throw new Error('run with node --expose-gc (npm run bench:memory does)');
  const n = 200_000;
  gc();
  const before = process.memoryUsage().rss;
  const l1 = new L1Partition({ maxBytes: 2 ** 40, events: { evicted() {}, expired() {} } });
  let charged = 0;
  for (let i = 0; i < n; i++) {
    const key = `user:${i}:profile`;
    const head = Buffer.from(
      `application/json\r\netag: "${(Math.imul(i, 2654435761) >>> 0).toString(16)}-${valueBytes.toString(16)}"\r\nx-cache: L1`,
      'latin1',
    );
    // Filled: zeroed memory from calloc may never be touched, and untouched pages are not resident.
    const entry = ownedEntry(head, new Uint8Array(valueBytes).fill(i & 0xff), plainMeta(Date.now(), performance.now() + 3_600_000));
    l1.set(key, entry, 3_600_000);
    charged += entrySize(key, entry);
  }
  gc();
  const rssPerEntry = (process.memoryUsage().rss - before) / n;
  const chargedPerEntry = charged / n;
  return { rssPerEntry, chargedPerEntry, uncharged: rssPerEntry - (chargedPerEntry - L1_ENTRY_OVERHEAD_BYTES) };
}

async function startNode(budget: string): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn(
    'taskset',
    [
      '-c',
      SERVER_CPU,
      process.execPath,
      '--max-semi-space-size=2',
      join(root, 'dist/src/cli.js'),
      '--port',
      String(port),
      '--shards',
      args.shards,
      '--l1-max-bytes',
      budget,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], cwd: tmpdir() },
  );
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('listening')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`node exited with ${code}`)));
  });
  return { child, port };
}

function wrkScripts(dir: string): { put: string; get: string } {
  const put = join(dir, 'put.lua');
  writeFileSync(
    put,
    `local counter = 0\nlocal body = string.rep("v", ${VALUE_BYTES})\ninit = function(args) counter = tonumber(args[1]) end\nrequest = function()\n  counter = counter + 1\n  return wrk.format("PUT", "/v1/keys/m" .. counter .. "?ttl=3600", nil, body)\nend\n`,
  );
  const get = join(dir, 'get.lua');
  writeFileSync(
    get,
    `local from, to = 0, 0\ninit = function(args) from = tonumber(args[1]); to = tonumber(args[2]) end\nrequest = function()\n  return wrk.format("GET", "/v1/keys/m" .. math.random(from, to))\nend\n`,
  );
  return { put, get };
}

function wrk(port: number, script: string, seconds: number, scriptArgs: string[]): number {
  const out = execFileSync('taskset', ['-c', WRK_CPU, 'wrk', '-t1', '-c32', `-d${seconds}s`, '-s', script, `http://127.0.0.1:${port}`, '--', ...scriptArgs], {
    encoding: 'utf8',
  });
  return Number(/(\d+) requests in/.exec(out)?.[1] ?? 0);
}

/** RSS once it stops moving: the largest of the last samples after it settled (at most 10 s). */
async function settledRss(pid: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    samples.push(rssOf(pid));
    const last = samples.slice(-3);
    if (last.length === 3 && Math.max(...last) - Math.min(...last) < 2 * MiB) break;
  }
  return Math.max(...samples.slice(-3));
}

interface Fill {
  budget: string;
  budgetBytes: number;
  puts: number;
  peakRss: number;
  rss: number;
  memory: MemoryStats;
}

/** Step 2. */
async function fill(budget: string, scripts: { put: string; get: string }): Promise<Fill> {
  const budgetBytes = bytesOf(budget);
  const { child, port } = await startNode(budget);
  const pid = child.pid as number;
  try {
    const target = Math.ceil((10 * budgetBytes) / VALUE_BYTES);
    let puts = 0;
    let peakRss = 0;
    while (puts < target) {
      puts += wrk(port, scripts.put, 2, [String(puts)]);
      peakRss = Math.max(peakRss, rssOf(pid));
      progress?.update(`${fmt(Math.min(100, (puts / target) * 100))}% of ${fmt(target)} PUTs, RSS ${mib(rssOf(pid))} MiB`);
    }
    progress?.update('reading the keys held, then waiting for RSS to settle');
    // Reads of the keys still held, so the hot-read arena is written too.
    const held = Math.floor(budgetBytes / (VALUE_BYTES + 1100));
    wrk(port, scripts.get, 4, [String(Math.max(1, puts - held)), String(puts)]);
    peakRss = Math.max(peakRss, rssOf(pid));
    const rss = await settledRss(pid);
    const stats = await getJson<{ memory: MemoryStats }>(`http://127.0.0.1:${port}/v1/stats`);
    return { budget, budgetBytes, puts, peakRss, rss, memory: stats.memory };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

/** Step 3: uploads announced at 1 MiB and cut off after half of it. */
async function aborted(count: number): Promise<{ before: number; after: number }> {
  const { child, port } = await startNode('64m');
  const pid = child.pid as number;
  try {
    const before = await settledRss(pid);
    const half = Buffer.alloc(512 * 1024, 120);
    let next = 0;
    const one = () =>
      new Promise<void>((resolve) => {
        const socket = connect(port, '127.0.0.1', () => {
          socket.write(`PUT /v1/keys/aborted${next++} HTTP/1.1\r\nHost: x\r\nContent-Length: ${MiB}\r\n\r\n`);
          socket.write(half, () => setTimeout(() => socket.destroy(), 5));
        });
        socket.on('close', () => resolve());
        socket.on('error', () => {});
      });
    const lanes = Array.from({ length: 16 }, async () => {
      while (next < count) await one();
    });
    await Promise.all(lanes);
    const after = await settledRss(pid);
    return { before, after };
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
  }
}

const mib = (n: number) => fmt(n / MiB, 0);

function drawFigure(
  report: Report,
  entries: { valueBytes: number; cost: ReturnType<typeof entryCost> }[],
  fills: Fill[],
  fit: { a: number; b: number },
  cut: { before: number; after: number },
): void {
  const toMiB = (n: number) => n / MiB;
  report.figure(
    'memory',
    "bench:memory: what an L1 entry costs, a node's RSS after 10× its budget in writes, and aborted uploads",
    [
      barChart({
        title: 'RSS after 10× the budget in writes',
        yLabel: 'MiB',
        width: 520,
        height: 340,
        groups: fills.map((f) => ({
          label: `l1MaxBytes ${f.budget}`,
          bars: [
            { label: 'the budget', value: toMiB(f.budgetBytes) },
            { label: 'L1 charged', value: toMiB(f.memory.l1ChargedBytes) },
            { label: 'settled RSS', value: toMiB(f.rss) },
            { label: 'peak RSS', value: toMiB(f.peakRss) },
          ],
        })),
      }),
      barChart({
        title: 'What one L1 entry costs',
        yLabel: 'bytes per entry',
        width: 420,
        height: 340,
        groups: entries.map((e) => ({
          label: `${fmt(e.valueBytes)} B values`,
          bars: [
            { label: 'RSS per entry', value: e.cost.rssPerEntry },
            { label: 'charged per entry', value: e.cost.chargedPerEntry },
            { label: 'RSS beyond key + head + value', value: e.cost.uncharged },
          ],
        })),
      }),
      barChart({
        title: `${fmt(Number(args.aborted))} uploads cut off halfway`,
        yLabel: 'RSS (MiB)',
        width: 300,
        height: 340,
        groups: [
          {
            label: 'node with l1MaxBytes 64m',
            bars: [
              { label: 'before', value: toMiB(cut.before) },
              { label: 'after', value: toMiB(cut.after) },
            ],
          },
        ],
      }),
    ],
    {
      notes: [
        `fit over ${args.budgets}: settled RSS ≤ ${fit.a.toFixed(2)}·l1MaxBytes + ${mib(fit.b)} MiB; node pinned to CPU ${SERVER_CPU} with ${args.shards} shard(s), wrk to CPU ${WRK_CPU}; entry costs measured in a fresh process per value size`,
      ],
    },
  );
}

async function main(): Promise<void> {
  if (args.entry !== undefined) {
    process.stdout.write(JSON.stringify(entryCost(Number(args.entry))));
    return;
  }
  requireWrk();
  const report = new Report('memory');
  const budgets = args.budgets.split(',').map((b) => b.trim());
  progress = new Progress([
    ...ENTRY_SIZES.map((size) => ({ name: entryStep(size), seconds: 2 })),
    // The PUTs, 4 s of reads, and RSS settling (3 to 10 s).
    ...budgets.map((budget) => ({ name: fillStep(budget), seconds: 1 + (10 * bytesOf(budget)) / VALUE_BYTES / PLANNED_PUTS_PER_SECOND + 4 + 5 })),
    { name: abortedStep(), seconds: 10 + Number(args.aborted) / 1000 },
  ]);
  console.log(`machine: ${cpus()[0]?.model ?? '?'} x${availableParallelism()}, node ${process.version}; ${args.shards} shard(s), ${VALUE_BYTES} B values\n`);
  console.log('1. what an L1 entry costs beyond key, header block and value (RSS, this process):');
  console.log('| value | RSS per entry | charged per entry | beyond key+head+value | charged overhead (L1_ENTRY_OVERHEAD_BYTES) |');
  console.log('|---:|---:|---:|---:|---:|');
  const entries: { valueBytes: number; cost: ReturnType<typeof entryCost> }[] = [];
  for (const size of ENTRY_SIZES) {
    progress.start(entryStep(size));
    // A fresh process per size: memory freed by one run would be reused by the next and hide its cost.
    const out = execFileSync(process.execPath, ['--expose-gc', new URL(import.meta.url).pathname, '--entry', String(size)], { encoding: 'utf8' });
    const cost = JSON.parse(out) as ReturnType<typeof entryCost>;
    entries.push({ valueBytes: size, cost });
    console.log(`| ${size} B | ${fmt(cost.rssPerEntry)} | ${fmt(cost.chargedPerEntry)} | ${fmt(cost.uncharged)} | ${L1_ENTRY_OVERHEAD_BYTES} |`);
  }

  console.log('\n2. 10× the budget written, then read; RSS settled (MiB):');
  const scripts = wrkScripts(mkdtempSync(join(tmpdir(), 'strata-mem-')));
  const fills: Fill[] = [];
  for (const budget of budgets) {
    progress.start(fillStep(budget));
    fills.push(await fill(budget, scripts));
  }
  console.log(
    '| l1MaxBytes | PUTs | peak RSS | settled RSS | RSS / budget | L1 charged | hot arena touched | heap main used/total | heap shards used/total | shards external |',
  );
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const f of fills) {
    const m = f.memory;
    console.log(
      `| ${f.budget} | ${fmt(f.puts)} | ${mib(f.peakRss)} | ${mib(f.rss)} | ${fmt(f.rss / f.budgetBytes, 2)} | ${mib(m.l1ChargedBytes)} | ${mib(m.hotIndex.touchedBytes)} | ${mib(m.heap.main.used)}/${mib(m.heap.main.total)} | ${mib(m.heap.shards.used)}/${mib(m.heap.shards.total)} | ${mib(m.heap.shards.external)} |`,
    );
  }
  // a: least-squares slope of settled RSS over the budget; b: the smallest intercept that bounds every point.
  const n = fills.length;
  const mx = fills.reduce((s, f) => s + f.budgetBytes, 0) / n;
  const my = fills.reduce((s, f) => s + f.rss, 0) / n;
  const a = n < 2 ? 1 : fills.reduce((s, f) => s + (f.budgetBytes - mx) * (f.rss - my), 0) / fills.reduce((s, f) => s + (f.budgetBytes - mx) ** 2, 0);
  const b = Math.max(...fills.map((f) => f.rss - a * f.budgetBytes));
  console.log(`\nfit: settled RSS ≤ ${a.toFixed(2)}·l1MaxBytes + ${mib(b)} MiB over ${args.budgets}`);

  console.log(`\n3. ${args.aborted} uploads of 1 MiB cut off halfway (budget 64m):`);
  progress.start(abortedStep());
  const cut = await aborted(Number(args.aborted));
  progress.end();
  console.log(`RSS before ${mib(cut.before)} MiB, after ${mib(cut.after)} MiB (${cut.after >= cut.before ? '+' : ''}${mib(cut.after - cut.before)} MiB)`);
  const options = { budgets, shards: Number(args.shards), valueBytes: VALUE_BYTES, aborted: Number(args.aborted) };
  report.json({ options, entries, entryOverheadBytes: L1_ENTRY_OVERHEAD_BYTES, fills, fit: { a, b }, aborted: cut });
  drawFigure(report, entries, fills, { a, b }, cut);
  console.log(report.summary());
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});

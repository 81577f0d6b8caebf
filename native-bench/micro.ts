/**
 * Micro-benchmarks (tinybench): L1 get/set, key hashing, a shard's batch
 * processing, and the front↔shard hop — one op per message against 16 ops per
 * message, the ratio that motivates batching per event-loop turn. Writes
 * native-bench/results/micro.json and the figure figures/micro.svg.
 *
 *   npm run bench:micro
 */
import { availableParallelism, cpus } from 'node:os';
import { Bench } from 'tinybench';
import { COORDINATION_DEFAULTS } from '../src/coordination/settings.js';
import { Counters } from '../src/counters/counters.js';
import { hashKey } from '../src/hash.js';
import { allocateHotIndex, HotIndexReader, HotIndexWriter, hotIndexShape } from '../src/l1/hot-index.js';
import { L1Partition, plainMeta } from '../src/l1/partition.js';
import type { BatchResult, OpWaiter } from '../src/shards/client.js';
import { type Batch, OP } from '../src/shards/protocol.js';
import { shardOf } from '../src/shards/route.js';
import { Shard } from '../src/shards/shard.js';
import { ShardSupervisor } from '../src/shards/supervisor.js';
import { fmt } from './harness.js';
import { barChart, horizontalBarChart } from './plot.js';
import { Progress, Report } from './report.js';

const TASKS = [
  'hashKey (16-char key)',
  'shardOf (8 shards)',
  'L1 get, hit (1 KiB)',
  'L1 set (1 KiB)',
  'hot index lookup, hit (1 KiB, front side)',
  'shard batch of 16 GET hits (no hop)',
  'hop: 1 GET per message (round trip)',
  'hop: 16 GETs in one message (round trip)',
] as const;
const report = new Report('micro');
const progress = new Progress([
  { name: 'setup: 10,000 keys in an L1, a shard and the hot-read index; a shard worker', seconds: 1 },
  { name: `warm-up of ${TASKS.length} tasks`, seconds: 3 },
  ...TASKS.map((name) => ({ name, seconds: 1.1 })),
]);
progress.start('setup: 10,000 keys in an L1, a shard and the hot-read index; a shard worker');

const KEYS = 10_000;
const value = new Uint8Array(1024).fill(7);
const keys = Array.from({ length: KEYS }, (_, i) => `user:${i}:profile`);
const head = new TextEncoder().encode('application/octet-stream\r\netag: "0badcafe-400"');
const entry = { ...plainMeta(Date.now(), Date.now() + 3_600_000), value, head };

const l1 = new L1Partition({ maxBytes: 64 * 1024 * 1024, events: { evicted() {}, expired() {} } });
for (const key of keys) l1.set(key, entry, 3_600_000);
const counters = new Counters(1);
const shard = new Shard({ index: 0, counters, l1MaxBytes: 64 * 1024 * 1024 });
const dropAnswer = () => {};
for (const key of keys) shard.l1.set(key, entry, 3_600_000);
const shape = hotIndexShape(64 * 1024 * 1024);
const hotBuffer = allocateHotIndex(shape);
const hotWriter = new HotIndexWriter(hotBuffer, shape);
for (const key of keys) hotWriter.publish(key, hashKey(key), head, value, Date.now() + 3_600_000, Date.now());
const hotReader = new HotIndexReader(hotBuffer, shape);
const keyHashes = keys.map(hashKey);
const batchOf = (n: number): Batch => ({
  id: 1,
  sentAtMs: performance.timeOrigin + performance.now(),
  ops: new Array(n).fill(OP.GET),
  keys: keys.slice(0, n),
  args: null,
});
const batch16 = batchOf(16);

const pool = new ShardSupervisor({
  shards: 1,
  workerData: {
    shards: 1,
    countersBuffer: new Counters(1).buffer,
    l1MaxBytesPerShard: 64 * 1024 * 1024,
    purgeIntervalMs: 1000,
    hotIndexShape: null,
    l2: null,
    origins: null,
    maxValueBytes: 1024 * 1024,
    coordination: COORDINATION_DEFAULTS,
  },
});
await pool.ready();
const client = pool.localClient(5000);

/** Sends n GETs in one turn and resolves when all are answered. */
function hop(n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let left = n;
    const waiter: OpWaiter = {
      onResult(_r: BatchResult) {
        if (--left === 0) resolve();
      },
      onFail: (code, message) => reject(new Error(`${code}: ${message}`)),
    };
    for (let i = 0; i < n; i++) client.submit(0, OP.GET, keys[i] as string, null, waiter, i);
  });
}

let i = 0;
const bench = new Bench({ time: 1000, warmupTime: 200 });
const [hashTask, shardOfTask, l1Get, l1Set, hotLookup, shardBatch, hop1, hop16] = TASKS;
bench
  .add(hashTask, () => {
    hashKey(keys[i++ % KEYS] as string);
  })
  .add(shardOfTask, () => {
    shardOf(keys[i++ % KEYS] as string, 8);
  })
  .add(l1Get, () => {
    l1.get(keys[i++ % KEYS] as string);
  })
  .add(l1Set, () => {
    l1.set(keys[i++ % KEYS] as string, entry, 3_600_000);
  })
  .add(hotLookup, () => {
    const k = i++ % KEYS;
    if (hotReader.lookup(keys[k] as string, keyHashes[k] as number, Date.now())) hotReader.done();
  })
  .add(shardBatch, () => {
    shard.run(batch16, dropAnswer);
  })
  .add(hop1, () => hop(1))
  .add(hop16, () => hop(16));

// tinybench warms every task up, then runs them one after the other: 'start' after the warm-up, 'cycle' after each task.
let done = 0;
bench.addEventListener('start', () => progress.start(TASKS[0]));
bench.addEventListener('cycle', () => {
  done++;
  if (done < TASKS.length) progress.start(TASKS[done] as string);
});
progress.start(`warm-up of ${TASKS.length} tasks`);
await bench.run();
progress.end();
console.log(`machine: ${cpus()[0]?.model ?? '?'} x${availableParallelism()}, node ${process.version}, ${new Date().toISOString().slice(0, 10)}`);
const rows = bench.tasks.map((t) => {
  const r = t.result as { throughput?: { mean: number }; latency?: { mean: number } } | undefined;
  return { task: t.name, 'ops/s': Math.round(r?.throughput?.mean ?? 0), 'mean ns': Math.round((r?.latency?.mean ?? 0) * 1e6) };
});
console.table(rows);
const single = rows.find((r) => r.task.startsWith('hop: 1 '))?.['ops/s'] ?? 0;
const batched = rows.find((r) => r.task.startsWith('hop: 16'))?.['ops/s'] ?? 0;
console.log(`GET ops/s through the hop: batched ${batched * 16} vs single ${single} = ${((batched * 16) / single).toFixed(1)}x`);
await client.close(1000);
await pool.close();

report.json({
  options: { keys: KEYS, valueBytes: 1024, timeMs: 1000, warmupTimeMs: 200 },
  tasks: rows,
  hop: { singleGetsPerSecond: single, batchedGetsPerSecond: batched * 16 },
});
report.figure(
  'micro',
  'bench:micro: operations per second of the hot paths, and GETs through the front↔shard hop',
  [
    horizontalBarChart({
      title: 'Operations per second (tinybench mean)',
      xLabel: 'operations per second (log scale)',
      rows: rows.map((r) => ({ label: r.task, value: r['ops/s'], color: r.task.startsWith('hop') ? 4 : 0 })),
      width: 640,
      log: true,
      legend: [
        { label: 'in this thread', color: 0 },
        { label: 'a round trip to a shard worker (one op = one message)', color: 4 },
      ],
    }),
    barChart({
      title: 'GETs per second through the hop',
      yLabel: 'GETs per second',
      width: 320,
      height: 320,
      groups: [
        {
          label: 'front → shard worker → front',
          bars: [
            { label: '1 GET per message', value: single },
            { label: '16 GETs per message', value: batched * 16 },
          ],
        },
      ],
    }),
  ],
  { notes: [`${fmt(KEYS)} keys, 1 KiB values; tinybench 1 s per task after 200 ms of warm-up, in one process (the hop: to one shard worker thread)`] },
);
console.log(report.summary());

import { workerData } from 'piscina';
import { Counters } from '../counters/counters.js';
import { type HotIndexShape, HotIndexWriter } from '../l1/hot-index.js';
import type { AttachTask, Batch } from './protocol.js';
import { Shard } from './shard.js';

/** What the pool hands every worker at start. */
export interface ShardWorkerData {
  readonly shards: number;
  readonly countersBuffer: SharedArrayBuffer;
  readonly l1MaxBytesPerShard: number;
  /** How often expired entries are swept and front hits applied to recency, ms. */
  readonly purgeIntervalMs: number;
  /** Shape of the hot-read index each attach task brings, or null when it is off. */
  readonly hotIndexShape: HotIndexShape | null;
}

const data = workerData as ShardWorkerData;
const counters = new Counters(data.shards, data.countersBuffer);
let attached: Shard | null = null;

/**
 * The piscina task: takes ownership of a shard and serves its batches from
 * `port` until the port closes. Batches are answered in arrival order.
 */
export default function attach(task: AttachTask): Promise<void> {
  if (attached !== null) throw new Error(`worker already owns shard ${attached.index}; refused shard ${task.shard}`);
  const hot = data.hotIndexShape === null || task.hotIndex === null ? null : new HotIndexWriter(task.hotIndex, data.hotIndexShape);
  const shard = new Shard(task.shard, counters, data.l1MaxBytesPerShard, hot);
  attached = shard;
  const purge = setInterval(() => {
    shard.refreshTouched();
    shard.l1.purgeExpired();
    shard.publishGauges();
  }, data.purgeIntervalMs);
  purge.unref();
  const { port } = task;
  port.on('message', (batch: Batch) => {
    const buffer = shard.run(batch);
    port.postMessage(buffer, [buffer]);
  });
  return new Promise<void>((resolve) => {
    port.once('close', () => {
      clearInterval(purge);
      resolve();
    });
  });
}

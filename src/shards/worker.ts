import { workerData } from 'piscina';
import { Counters } from '../counters/counters.js';
import type { AttachTask, Batch } from './protocol.js';
import { Shard } from './shard.js';

/** What the pool hands every worker at start. */
export interface ShardWorkerData {
  readonly shards: number;
  readonly countersBuffer: SharedArrayBuffer;
  readonly l1MaxBytesPerShard: number;
  /** How often expired entries are swept, ms. */
  readonly purgeIntervalMs: number;
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
  const shard = new Shard(task.shard, counters, data.l1MaxBytesPerShard);
  attached = shard;
  const purge = setInterval(() => {
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

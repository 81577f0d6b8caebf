import type { MessagePort } from 'node:worker_threads';
import { workerData } from 'piscina';
import type { CoordinationSettings } from '../coordination/settings.js';
import { Counters } from '../counters/counters.js';
import { SHARD_SLOT } from '../counters/layout.js';
import { type HotIndexShape, HotIndexWriter } from '../l1/hot-index.js';
import { BUS_CHANNEL, BusPublisher, HEARTBEAT_INTERVAL_MS } from '../l2/bus-format.js';
import type { ShardL2Settings } from '../l2/node-link.js';
import { RedisL2Store } from '../l2/redis.js';
import { OriginClient } from '../origin/client.js';
import type { OriginRule } from '../origin/rules.js';
import { OriginSlots } from '../origin/slots.js';
import { linuxThreadId } from '../thread-id.js';
import type { AttachTask, Batch, ConnectMessage } from './protocol.js';
import { Shard, type ShardL2, type ShardOrigins } from './shard.js';

/** How often a shard refreshes its L2 readiness and breaker gauges, ms. */
const L2_GAUGE_INTERVAL_MS = 100;

/** What the pool hands every worker at start. */
export interface ShardWorkerData {
  readonly shards: number;
  readonly countersBuffer: SharedArrayBuffer;
  readonly l1MaxBytesPerShard: number;
  /** How often expired entries are swept and front hits applied to recency, ms. */
  readonly purgeIntervalMs: number;
  /** Shape of the hot-read index each attach task brings, or null when it is off. */
  readonly hotIndexShape: HotIndexShape | null;
  readonly l2: ShardL2Settings | null;
  /** Origin rules and the node's shared in-flight counts per rule, or null without origins. */
  readonly origins: { readonly rules: readonly OriginRule[]; readonly slots: SharedArrayBuffer } | null;
  /** Largest value an origin may answer with. */
  readonly maxValueBytes: number;
  readonly coordination: CoordinationSettings;
}

const data = workerData as ShardWorkerData;
const counters = new Counters(data.shards, data.countersBuffer, data.origins?.rules.length ?? 0);
let attached: Shard | null = null;

/**
 * The piscina task: takes ownership of a shard and serves the batches of
 * every client the supervisor connects on `control` (each front, and the
 * main thread), each on its own port, until the control port closes. Each
 * batch gets its L1 answers at once, and the answers of ops that wait (L2,
 * origin, lease) in later parts as they finish (protocol.ts), on the port it
 * came from.
 */
export default function attach(task: AttachTask): Promise<void> {
  if (attached !== null) throw new Error(`worker already owns shard ${attached.index}; refused shard ${task.shard}`);
  const hot = data.hotIndexShape === null || task.hotIndex === null ? null : new HotIndexWriter(task.hotIndex, data.hotIndexShape);
  const l2 = data.l2 === null ? null : connectL2(data.l2);
  const { control } = task;
  let client: OriginClient | null = null;
  let origins: ShardOrigins | null = null;
  if (data.origins !== null && task.originRow !== null) {
    client = new OriginClient(data.maxValueBytes);
    origins = { rules: data.origins.rules, client, slots: new OriginSlots(data.origins.rules.length, data.origins.slots, task.originRow) };
  }
  const shard = new Shard({
    index: task.shard,
    counters,
    l1MaxBytes: data.l1MaxBytesPerShard,
    hot,
    l2,
    origins,
    coordination: data.coordination,
  });
  attached = shard;
  counters.setShard(task.shard, SHARD_SLOT.THREAD_ID, linuxThreadId());
  shard.publishMemory();
  const purge = setInterval(() => {
    shard.refreshTouched();
    shard.l1.purgeExpired();
    shard.publishGauges();
    shard.publishMemory();
    shard.publishHotKeys();
    shard.publishLoopUtilization();
  }, data.purgeIntervalMs);
  purge.unref();
  const gauges =
    l2 === null
      ? null
      : setInterval(() => {
          // A half-open breaker closes only through a probe; without traffic nothing would probe, and /readyz would stay 503.
          if (l2.store.breakerCode === 1) l2.store.ping().catch(() => {});
          shard.publishGauges();
        }, L2_GAUGE_INTERVAL_MS);
  gauges?.unref();
  // After publishing, the stream repeats its last number twice, a second apart: a lost last message is noticed within ~1 s.
  const heartbeats =
    l2 === null
      ? null
      : setInterval(() => {
          const heartbeat = l2.bus.heartbeat();
          if (heartbeat !== null) l2.store.publish(BUS_CHANNEL, heartbeat).catch(() => {});
        }, HEARTBEAT_INTERVAL_MS);
  heartbeats?.unref();
  const clients = new Set<MessagePort>();
  control.on('message', ({ port }: ConnectMessage) => {
    clients.add(port);
    const send = (answer: ArrayBuffer) => port.postMessage(answer, [answer]);
    port.on('message', (batch: Batch) => shard.run(batch, send));
    // A client that went away (a front replaced) closes its end; answers still owed to it are dropped.
    port.once('close', () => clients.delete(port));
  });
  // The supervisor counts the shard as up from here (ShardSupervisor.ready, /readyz).
  control.postMessage('attached');
  return new Promise<void>((resolve) => {
    control.once('close', () => {
      for (const port of clients) port.close();
      clearInterval(purge);
      if (gauges !== null) clearInterval(gauges);
      if (heartbeats !== null) clearInterval(heartbeats);
      void Promise.all([l2?.store.close(), client?.close()]).finally(resolve);
    });
  });
}

/** This shard's own L2 client (connecting in the background) and bus stream. */
function connectL2(settings: ShardL2Settings): ShardL2 {
  // A connection attempt may take longer than one operation's deadline (TLS, a busy host); operations still fail fast meanwhile.
  const store = RedisL2Store.create({ ...settings.target, commandTimeoutMs: settings.timeoutMs, connectTimeoutMs: Math.max(1000, settings.timeoutMs) });
  return {
    store,
    bus: new BusPublisher(settings.nodeId),
    l1MaxTtlMs: settings.l1MaxTtlMs,
    admission: settings.admission,
  };
}

import { answerWithinMs } from './config/load.js';
import type { StrataConfig } from './config/schema.js';
import { Counters, FrontCounters } from './counters/counters.js';
import { createApp } from './http/app.js';
import { claimPort, lockPort } from './http/port-claim.js';
import { loadNativeUws, type us_listen_socket } from './http/uws.js';
import { invalidate } from './invalidation/invalidate.js';
import { PostgresInvalidation } from './invalidation/postgres.js';
import { allocatedBytes, hotIndexShape } from './l1/hot-index.js';
import { type L2Status, l2TargetOf, NodeL2Link } from './l2/node-link.js';
import { MetricsRegistry } from './metrics/registry.js';
import { StatsReporter } from './metrics/stats.js';
import { OriginSlots } from './origin/slots.js';
import { ShardPool } from './shards/pool.js';
import { COORDINATION_DEFAULTS } from './shards/shard.js';

/** A running node. */
export interface StrataNode {
  readonly config: StrataConfig;
  /** The port actually bound (differs from config.port when that is 0). */
  readonly port: number;
  readonly counters: Counters;
  /** The L2's state now ({ configured: false } for an L1-only node). */
  l2Status(): L2Status;
  /** Drains and stops: /readyz 503, listen socket closed, in-flight requests finished, workers stopped. */
  close(): Promise<void>;
  /** Test-only access to internals. */
  readonly internals: {
    readonly pool: ShardPool;
    readonly stats: StatsReporter;
    readonly l2: NodeL2Link | null;
    readonly postgres: PostgresInvalidation | null;
  };
}

/** Closes every socket of the app. The native App has close(); this package's typings miss it. */
function closeApp(app: object): void {
  (app as { close(): void }).close();
}

/** How often each shard sweeps expired entries (and applies front hits to recency). */
const PURGE_INTERVAL_MS = 1000;
/** Largest hot-read arena per shard (values served by the front without a hop are copied there). */
export const HOT_ARENA_MAX_BYTES = 64 * 1024 * 1024;
/**
 * The hot-read arena's share of a shard's L1 budget. It is a ring of copies
 * of the entries read most recently, on top of the budget: a quarter holds
 * the hot part of a skewed load and bounds the copies at 0.25 × l1MaxBytes
 * (docs/memory.md).
 */
export const HOT_ARENA_SHARE = 0.25;
/**
 * At start, how long the node waits for the L2 before it listens anyway (then
 * not ready until the L2 is). A Redis that answers at once costs nothing; the
 * wait spares clients the 503s of a node that listens a moment before its
 * shards' connections are up.
 */
export const L2_START_WAIT_MS = 5000;

/** What the process running the node wants to hear while it starts. */
export interface StartOptions {
  /** A line for the operator (the CLI prints it on stdout). @default ignore */
  readonly say?: (line: string) => void;
}

/** Starts a node: the port claimed, shard workers, then the HTTP front. Rejects when any cannot start. */
export async function startNode(config: StrataConfig, options: StartOptions = {}): Promise<StrataNode> {
  const uws = loadNativeUws();
  // First: a node whose port is taken must not start workers or touch the L2.
  const claim = await claimPort(config.host, config.port);
  let node: StrataNode;
  try {
    node = await startClaimed(uws, config, options);
  } catch (err) {
    claim.release();
    throw err;
  }
  const held = config.port === 0 ? await lockPort(config.host, node.port) : claim;
  const close = node.close;
  return { ...node, close: () => close().finally(() => held.release()) };
}

async function startClaimed(uws: ReturnType<typeof loadNativeUws>, config: StrataConfig, options: StartOptions): Promise<StrataNode> {
  const counters = new Counters(config.shards, undefined, config.origins.length);
  const originSlots = new OriginSlots(config.origins.length);
  const l1MaxBytesPerShard = Math.floor(config.l1MaxBytes / config.shards);
  const shape = hotIndexShape(Math.min(Math.floor(l1MaxBytesPerShard * HOT_ARENA_SHARE), HOT_ARENA_MAX_BYTES));
  const target = l2TargetOf(config);
  const l2 = target === null ? null : new NodeL2Link(target, config);
  const l2Status = (): L2Status => l2?.status(counters) ?? { configured: false, up: false };
  const pool = new ShardPool({
    shards: config.shards,
    requestTimeoutMs: config.requestTimeoutMs,
    workerData: {
      shards: config.shards,
      countersBuffer: counters.buffer,
      l1MaxBytesPerShard,
      purgeIntervalMs: PURGE_INTERVAL_MS,
      hotIndexShape: shape,
      l2: l2?.shardSettings ?? null,
      origins: config.origins.length === 0 ? null : { rules: config.origins, slots: originSlots.buffer },
      maxValueBytes: config.maxValueBytes,
      coordination: { ...COORDINATION_DEFAULTS, earlyRefreshBeta: config.earlyRefreshBeta, answerWithinMs: answerWithinMs(config.requestTimeoutMs) },
    },
  });
  try {
    await pool.ready();
  } catch (err) {
    await pool.close(0);
    throw err;
  }
  if (l2 !== null) {
    l2.start(pool);
    // A Redis that is down now is not fatal: the node listens, reports not ready, and heals when Redis answers.
    const deadline = Date.now() + L2_START_WAIT_MS;
    await new Promise((r) => setTimeout(r, 20));
    if (!l2Status().up) options.say?.(`strata: connecting to the L2 (${l2.describe()}); serving in at most ${L2_START_WAIT_MS / 1000} s, with or without it`);
    while (!l2Status().up && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }
  // Invalidations from PostgreSQL go through the node's own invalidation path (L2, bus, every L1).
  const postgres =
    config.postgresUrl === ''
      ? null
      : new PostgresInvalidation({
          url: config.postgresUrl,
          channels: config.postgresChannels,
          shared: l2 !== null,
          apply: (keys, tags) => invalidate(pool, keys, tags),
          ...(options.say === undefined ? {} : { say: options.say }),
        });
  postgres?.start();
  const front = new FrontCounters();
  const stats = new StatsReporter({
    counters,
    front,
    pool,
    config,
    l2Status,
    bus: l2?.bus ?? null,
    hotIndexBytesPerShard: allocatedBytes(shape),
    originSlots,
    postgres,
  });
  const metrics = new MetricsRegistry({
    counters,
    front,
    stats,
    shards: config.shards,
    pool,
    l2Status,
    bus: l2?.bus ?? null,
    origins: config.origins,
    originSlots,
    postgres,
  });
  let draining = false;
  const app = createApp(uws, { config, pool, counters, front, metrics, stats, draining: () => draining, l2Status });

  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
    app.listen(config.host, config.port, (socket) => {
      if (socket === false) reject(new Error(`cannot listen on ${config.host}:${config.port} (in use or not permitted)`));
      else resolve(socket);
    });
  }).catch(async (err: unknown) => {
    stats.close();
    await postgres?.close();
    await l2?.close();
    await pool.close(0);
    closeApp(app);
    throw err;
  });
  const port = uws.us_socket_local_port(listenSocket);

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      draining = true;
      uws.us_listen_socket_close(listenSocket);
      // In-flight requests (a body still arriving, ops at a shard) finish before the shards stop.
      const deadline = Date.now() + config.drainTimeoutMs;
      while (front.active > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      await pool.close(Math.max(0, deadline - Date.now()));
      await postgres?.close();
      await l2?.close();
      stats.close();
      // Give responses corked in the last turn a chance to flush before sockets close.
      await new Promise((r) => setImmediate(r));
      closeApp(app);
    })();
    return closing;
  };
  return { config, port, counters, l2Status, close, internals: { pool, stats, l2, postgres } };
}

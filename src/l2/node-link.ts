import type { StrataConfig } from '../config/schema.js';
import type { Counters } from '../counters/counters.js';
import { SHARD_SLOT } from '../counters/layout.js';
import type { OpWaiter, ShardPool } from '../shards/pool.js';
import { OP } from '../shards/protocol.js';
import { shardOf } from '../shards/route.js';
import type { ShardL2Settings } from '../shards/worker.js';
import { BusSubscriber, type GapReason, newNodeId } from './bus.js';
import { type L2Target, redactPasswords } from './target.js';

/** The L2 a config names, or null for an L1-only node. */
export function l2TargetOf(config: StrataConfig): L2Target | null {
  if (config.redisUrl !== '') return { url: config.redisUrl };
  if (config.redisCluster.length > 0) return { cluster: config.redisCluster };
  return null;
}

/** What /readyz, /metrics and /v1/stats say about the L2. */
export interface L2Status {
  readonly configured: boolean;
  readonly mode?: 'standalone' | 'cluster';
  /** True when every shard's client is ready, no breaker is open and the bus is subscribed. */
  readonly up: boolean;
  readonly shardsReady?: number;
  readonly breakersOpen?: number;
  readonly busSubscribed?: boolean;
  /** Why the L2 could not be reached, when it could not (as Redis or the socket said it). */
  readonly lastError?: string;
}

/** Bus traffic as this node received it (main thread only). */
export interface BusCounts {
  /** Invalidation messages from other nodes applied here. */
  received: number;
  /** Times messages may have been lost (a skipped number, or a subscription starting); each empties L1. */
  gaps: number;
}

// Drops sent to the shards on the bus's behalf have nobody waiting for them.
const NOBODY: OpWaiter = { onResult() {}, onFail() {} };

/**
 * The node's side of the L2 on the main thread: the settings each shard
 * worker connects with, the bus subscription that applies other nodes'
 * invalidations to the shards, and the L2's health as the node reports it.
 */
export class NodeL2Link {
  readonly nodeId = newNodeId();
  readonly bus: BusCounts = { received: 0, gaps: 0 };
  readonly #target: L2Target;
  readonly #config: StrataConfig;
  #subscriber: BusSubscriber | null = null;

  constructor(target: L2Target, config: StrataConfig) {
    this.#target = target;
    this.#config = config;
  }

  /** What each shard worker needs to reach the L2 itself. */
  get shardSettings(): ShardL2Settings {
    return {
      target: this.#target,
      timeoutMs: this.#config.l2TimeoutMs,
      l1MaxTtlMs: this.#config.l1MaxTtl * 1000,
      nodeId: this.nodeId,
      admission: this.#config.l1Admission,
    };
  }

  /** Where the L2 is, for the start line (no password). */
  describe(): string {
    const target = this.#target;
    return 'url' in target ? `Redis ${redactPasswords(target.url)}` : `Redis Cluster ${redactPasswords(target.cluster.join(','))}`;
  }

  /** Subscribes to the bus; other nodes' invalidations become L1-only drops on the owning shards. */
  start(pool: ShardPool): void {
    const shards = this.#config.shards;
    const bus = this.bus;
    this.#subscriber = BusSubscriber.start(
      this.#target,
      this.nodeId,
      {
        onKeys(keys) {
          bus.received++;
          for (const key of keys) pool.submit(shardOf(key, shards), OP.DROP, key, null, NOBODY, 0);
        },
        onTags(tags) {
          bus.received++;
          for (const tag of tags) for (let s = 0; s < shards; s++) pool.submit(s, OP.DROP_TAG, tag, null, NOBODY, 0);
        },
        onGap(_reason: GapReason) {
          // Some invalidation may be lost: nothing in L1 can be trusted any more.
          bus.gaps++;
          for (let s = 0; s < shards; s++) pool.submit(s, OP.CLEAR, '', null, NOBODY, 0);
        },
      },
      this.#config.l2TimeoutMs,
    );
  }

  /** The L2's state from the shards' shared gauges and the subscription. */
  status(counters: Counters): L2Status {
    const shards = this.#config.shards;
    let shardsReady = 0;
    let breakersOpen = 0;
    for (let s = 0; s < shards; s++) {
      if (counters.shard(s, SHARD_SLOT.L2_READY) === 1) shardsReady++;
      // Half-open counts as open until a probe succeeds (each shard probes by itself, see worker.ts).
      if (counters.shard(s, SHARD_SLOT.L2_BREAKER) !== 0) breakersOpen++;
    }
    const busSubscribed = this.#subscriber?.ready ?? false;
    const lastError = this.#subscriber?.lastError ?? '';
    return {
      configured: true,
      mode: 'url' in this.#target ? 'standalone' : 'cluster',
      up: busSubscribed && shardsReady === shards && breakersOpen === 0,
      shardsReady,
      breakersOpen,
      busSubscribed,
      ...(lastError === '' ? {} : { lastError }),
    };
  }

  async close(): Promise<void> {
    await this.#subscriber?.close();
  }
}

import type { Counters } from '../counters/counters.js';
import { SHARD_SLOT } from '../counters/layout.js';
import { BusSubscriber, newNodeId } from './bus.js';
import { type L2Target, redactPasswords } from './target.js';

/** What the node's L2 side needs of the configuration (the node passes its L2Config). */
export interface L2Config {
  readonly redisUrl: string;
  readonly redisCluster: readonly string[];
  readonly l2TimeoutMs: number;
  readonly l1MaxTtl: number;
  readonly l1Admission: 'lru' | 'tinylfu';
  readonly shards: number;
}

/** The L2 a config names, or null for an L1-only node. */
export function l2TargetOf(config: Pick<L2Config, 'redisUrl' | 'redisCluster'>): L2Target | null {
  if (config.redisUrl !== '') return { url: config.redisUrl };
  if (config.redisCluster.length > 0) return { cluster: config.redisCluster };
  return null;
}

/** How each shard reaches the L2, or null for an L1-only node. */
export interface ShardL2Settings {
  readonly target: L2Target;
  /** Deadline of one L2 operation, ms. */
  readonly timeoutMs: number;
  /** Longest an L2 value stays in L1, ms. */
  readonly l1MaxTtlMs: number;
  /** This node's id on the bus (its own messages are not applied again). */
  readonly nodeId: string;
  /** Which values from the L2 the L1 takes in. */
  readonly admission: 'lru' | 'tinylfu';
}

/** What the node does with other nodes' invalidations: drops from its shards' L1s. */
export interface BusApply {
  keys(keys: readonly string[]): void;
  tags(tags: readonly string[]): void;
  /** Messages may have been lost: nothing in L1 can be trusted any more. */
  gap(): void;
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

/**
 * The node's side of the L2 on the main thread: the settings each shard
 * worker connects with, the bus subscription that applies other nodes'
 * invalidations to the shards, and the L2's health as the node reports it.
 */
export class NodeL2Link {
  readonly nodeId = newNodeId();
  readonly bus: BusCounts = { received: 0, gaps: 0 };
  readonly #target: L2Target;
  readonly #config: L2Config;
  #subscriber: BusSubscriber | null = null;

  constructor(target: L2Target, config: L2Config) {
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

  /** Subscribes to the bus; other nodes' invalidations go to `apply` (L1-only drops on the owning shards). */
  start(apply: BusApply): void {
    const bus = this.bus;
    this.#subscriber = BusSubscriber.start(
      this.#target,
      this.nodeId,
      {
        onKeys(keys) {
          bus.received++;
          apply.keys(keys);
        },
        onTags(tags) {
          bus.received++;
          apply.tags(tags);
        },
        onGap() {
          bus.gaps++;
          apply.gap();
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

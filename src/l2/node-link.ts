import { type Counters, type LocalHistogram, localHistogram, observeInto } from '../counters/counters.js';
import { SHARD_SLOT } from '../counters/layout.js';
import { addressOf, type BreakerName, type L2Health, type Logger, SILENT_LOG } from '../log.js';
import { BusSubscriber, newNodeId } from './bus.js';
import { type L2Target, redactPasswords } from './target.js';

/** How often the main thread samples the L2's health and the shards' breakers for the log, ms. */
export const L2_WATCH_INTERVAL_MS = 1000;

/** The SHARD_SLOT.L2_BREAKER gauge's values (0 closed, 1 half-open, 2 open) as the log names them. */
const BREAKER_NAMES: readonly BreakerName[] = ['closed', 'half_open', 'open'];

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
  /**
   * The bus's delay: from a shard publishing a message (or a heartbeat) to this
   * node's subscriber receiving it back, by one clock. Other nodes' messages
   * go through the same Redis fan-out; their own delay is not measured here
   * (their clocks differ from this one).
   */
  readonly delay: LocalHistogram;
}

/**
 * The node's side of the L2 on the main thread: the settings each shard
 * worker connects with, the bus subscription that applies other nodes'
 * invalidations to the shards, and the L2's health as the node reports it.
 */
export class NodeL2Link {
  readonly nodeId = newNodeId();
  readonly bus: BusCounts = { received: 0, gaps: 0, delay: localHistogram() };
  readonly #target: L2Target;
  readonly #config: L2Config;
  readonly #log: Logger;
  #subscriber: BusSubscriber | null = null;
  #watch: NodeJS.Timeout | null = null;

  constructor(target: L2Target, config: L2Config, log: Logger = SILENT_LOG) {
    this.#target = target;
    this.#config = config;
    this.#log = log;
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

  /** The L2's mode and addresses (without user, password or query), as log fields. */
  get addresses(): { readonly l2: 'standalone' | 'cluster'; readonly l2Addresses: readonly string[] } {
    const target = this.#target;
    return 'url' in target ? { l2: 'standalone', l2Addresses: [addressOf(target.url)] } : { l2: 'cluster', l2Addresses: target.cluster.map(addressOf) };
  }

  /** Subscribes to the bus; other nodes' invalidations go to `apply` (L1-only drops on the owning shards). */
  start(apply: BusApply): void {
    const bus = this.bus;
    const log = this.#log;
    let subscriptions = 0;
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
        onOwnDelay(delayMs) {
          observeInto(bus.delay, delayMs * 1e6);
        },
        onGap(reason) {
          bus.gaps++;
          apply.gap();
          if (reason.kind === 'gap') {
            const { from, expected, got } = reason;
            log.event(
              'bus.gap',
              { reason: 'skipped', gaps: bus.gaps, stream: from, expected, got },
              `strata: bus gap: stream ${from} skipped from ${expected} to ${got}; invalidations may have been lost, L1 emptied`,
            );
          } else if (subscriptions++ === 0) {
            log.event('bus.subscribed', {}, 'strata: subscribed to the invalidation bus');
          } else {
            log.event(
              'bus.gap',
              { reason: 'resubscribed', gaps: bus.gaps },
              'strata: bus gap: subscribed to the invalidation bus again; invalidations sent meanwhile are lost, L1 emptied',
            );
          }
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

  /**
   * Logs the L2's transitions from now on: l2.up and l2.down, and each
   * shard's breaker opening, half-opening and closing, sampled every
   * L2_WATCH_INTERVAL_MS on the main thread (a state that comes and goes
   * between two samples is not logged). A breaker that cycles between open
   * and half-open while the L2 stays down (a probe per cooldown, each
   * failing) is logged open and half-open once, then closed when it closes:
   * three lines per shard per outage, not two a second. `upNow` is the state
   * the node last reported (its listening line).
   */
  watch(counters: Counters, upNow: boolean): void {
    if (this.#watch !== null) return;
    let up = upNow;
    const breakers = Array.from({ length: this.#config.shards }, (_, shard) => ({
      code: counters.shard(shard, SHARD_SLOT.L2_BREAKER),
      /** What this outage has logged already (cleared when the breaker closes). */
      logged: new Set<BreakerName>(),
    }));
    this.#watch = setInterval(() => {
      const status = this.status(counters);
      breakers.forEach((breaker, shard) => {
        const code = counters.shard(shard, SHARD_SLOT.L2_BREAKER);
        if (code === breaker.code) return;
        const was = BREAKER_NAMES[breaker.code] ?? 'open';
        const now = BREAKER_NAMES[code] ?? 'open';
        breaker.code = code;
        if (now === 'closed') breaker.logged.clear();
        else if (breaker.logged.has(now)) return;
        else breaker.logged.add(now);
        this.#logBreaker(shard, was, now);
      });
      if (status.up === up) return;
      up = status.up;
      const health = healthOf(status, this.#config.shards);
      if (up) {
        this.#log.event('l2.up', health, `strata: the L2 is up again (${health.shardsReady} of ${health.shards} shards connected, bus subscribed)`);
      } else {
        const reason = downReason(status, this.#config.shards);
        this.#log.event(
          'l2.down',
          { ...health, reason, atStart: false },
          `strata: warning: the L2 is down (${reason}); L1 hits are served, everything else gets 503 E_L2_UNAVAILABLE and /readyz 503 until it is back`,
        );
      }
    }, L2_WATCH_INTERVAL_MS);
    this.#watch.unref();
  }

  /** Stops the watch (a node shutting down takes the L2 down itself: not an event). */
  unwatch(): void {
    if (this.#watch !== null) clearInterval(this.#watch);
    this.#watch = null;
  }

  #logBreaker(shard: number, was: BreakerName, now: BreakerName): void {
    const log = this.#log;
    const fields = { shard, was };
    if (now === 'open') {
      log.event(
        'l2.breaker.open',
        fields,
        `strata: shard ${shard}'s L2 circuit breaker opened; its L2 calls fail at once (503 E_L2_UNAVAILABLE) until a probe succeeds`,
      );
    } else if (now === 'half_open') {
      log.event('l2.breaker.half_open', fields, `strata: shard ${shard}'s L2 circuit breaker is half-open; one probe goes to the L2`);
    } else {
      log.event('l2.breaker.closed', fields, `strata: shard ${shard}'s L2 circuit breaker closed; the L2 answers it again`);
    }
  }

  async close(): Promise<void> {
    this.unwatch();
    await this.#subscriber?.close();
  }
}

/** The counts l2.up and l2.down carry. */
export function healthOf(status: L2Status, shards: number): L2Health {
  return { shards, shardsReady: status.shardsReady ?? 0, breakersOpen: status.breakersOpen ?? 0, busSubscribed: status.busSubscribed ?? false };
}

/** Why the L2 counts as down: what Redis or the socket said, else which part is not up. */
export function downReason(status: L2Status, shards: number): string {
  if (status.lastError !== undefined && status.lastError !== '') return status.lastError;
  const { shardsReady, breakersOpen, busSubscribed } = healthOf(status, shards);
  if (breakersOpen > 0) return `${breakersOpen} of ${shards} shard breakers open`;
  if (shardsReady < shards) return `${shards - shardsReady} of ${shards} shards not connected`;
  if (!busSubscribed) return 'the bus is not subscribed';
  return 'unknown';
}

import client from 'prom-client';
import type { Counters, FrontTotals, HistogramSnapshot } from '../counters/counters.js';
import { bucketBoundSeconds } from '../counters/counters.js';
import { HIST_BUCKETS, L2_ERROR_KINDS, ORIGIN_RESULT_SLOTS, ORIGIN_SLOT, ROUTES, SHARD_SLOT } from '../counters/layout.js';
import type { PostgresStatus } from '../invalidation/postgres.js';
import type { BusCounts, L2Status } from '../l2/node-link.js';
import type { OriginRule } from '../origin/rules.js';
import type { OriginSlots } from '../origin/slots.js';
import { VERSION } from '../version.js';
import type { StatsReporter } from './stats.js';

type MetricValue = { value: number; labels: Record<string, string | number>; metricName?: string };

/**
 * A Prometheus histogram whose buckets live in the shared counters: prom-client
 * only formats it. `read` returns one snapshot per label set.
 */
class SharedHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    readonly read: () => { labels: Record<string, string>; histogram: HistogramSnapshot }[],
  ) {}
  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    const values: MetricValue[] = [];
    for (const { labels, histogram } of this.read()) {
      let cumulative = 0;
      for (let i = 0; i < HIST_BUCKETS; i++) {
        cumulative += histogram.buckets[i] as number;
        values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: bucketBoundSeconds(i) }, value: cumulative });
      }
      values.push({ metricName: `${this.name}_bucket`, labels: { ...labels, le: '+Inf' }, value: histogram.count });
      values.push({ metricName: `${this.name}_sum`, labels, value: histogram.sumSeconds });
      values.push({ metricName: `${this.name}_count`, labels, value: histogram.count });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
  reset(): void {}
}

/** What /metrics is read from. */
export interface MetricsSources {
  readonly counters: Counters;
  readonly fronts: FrontTotals;
  /** Members on the ring now. */
  readonly ringSize: () => number;
  readonly stats: StatsReporter;
  readonly shards: number;
  /** The node's L1 budget, bytes. */
  readonly l1MaxBytes: number;
  readonly pool: { isUp(shard: number): boolean };
  /** @default not configured */
  readonly l2Status?: () => L2Status;
  /** @default null (no L2) */
  readonly bus?: BusCounts | null;
  /** @default [] */
  readonly origins?: readonly OriginRule[];
  /** In-flight origin requests per rule; null without origins. @default null */
  readonly originSlots?: OriginSlots | null;
  /** The PostgreSQL invalidation listener, if configured. @default null */
  readonly postgres?: { status(): PostgresStatus } | null;
}

/** Shard slots summed into one counter each: name, help, slot. */
const COORDINATION_COUNTERS: readonly (readonly [string, string, number])[] = [
  [
    'strata_stale_answers_total',
    'Answers with a stale value (x-cache: STALE): stale-while-revalidate, stale-if-error, soft timeouts.',
    SHARD_SLOT.STALE_ANSWERS,
  ],
  ['strata_early_refreshes_total', 'Refreshes XFetch started before a value expired.', SHARD_SLOT.EARLY_REFRESHES],
  ['strata_refreshes_total', 'Background refreshes of stale values (stale-while-revalidate, a soft timeout going on).', SHARD_SLOT.REFRESHES],
  [
    'strata_loads_joined_total',
    'Reads that joined an origin load or lease wait in flight for their key in this node (in-node single-flight).',
    SHARD_SLOT.LOADS_JOINED,
  ],
  ['strata_remote_fills_total', 'Waits for another holder of a key lock that ended with its fill.', SHARD_SLOT.REMOTE_FILLS],
];

/** The node's /metrics: prom-client metrics filled from the shared counters at scrape time. */
export class MetricsRegistry {
  readonly registry = new client.Registry();

  constructor(sources: MetricsSources) {
    const { counters, fronts, stats, shards, pool, ringSize } = sources;
    const l2Status = sources.l2Status ?? (() => ({ configured: false, up: false }));
    const bus = sources.bus ?? null;
    const origins = sources.origins ?? [];
    const registers = [this.registry];
    /** A counter with one value, read at scrape time. */
    const counter = (name: string, help: string, read: () => number) =>
      new client.Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read());
        },
      });
    const withL2 = bus !== null;
    /** A per-level metric; `l2Slot` is the L2's slot, when the level has one and an L2 is configured. */
    const level = (name: string, help: string, slot: number, type: 'counter' | 'gauge', l2Slot?: number) => {
      const Metric = type === 'counter' ? client.Counter : client.Gauge;
      new Metric({
        name,
        help,
        labelNames: ['level'],
        registers,
        collect(this: client.Counter | client.Gauge) {
          this.reset();
          (this as client.Gauge).inc({ level: 'L1' }, counters.total(slot));
          if (withL2 && l2Slot !== undefined) (this as client.Gauge).inc({ level: 'L2' }, counters.total(l2Slot));
        },
      });
    };
    level('strata_cache_hits_total', 'Lookups answered from the level.', SHARD_SLOT.L1_HITS, 'counter', SHARD_SLOT.L2_HITS);
    level('strata_cache_misses_total', 'Lookups the level could not answer.', SHARD_SLOT.L1_MISSES, 'counter', SHARD_SLOT.L2_MISSES);
    level('strata_cache_sets_total', 'Values stored in the level.', SHARD_SLOT.L1_SETS, 'counter', SHARD_SLOT.L2_SETS);
    level('strata_cache_deletes_total', 'Deletes and invalidations applied to the level.', SHARD_SLOT.L1_DELETES, 'counter');
    level('strata_cache_evictions_total', 'Entries dropped to stay within the byte budget.', SHARD_SLOT.L1_EVICTIONS, 'counter');
    level('strata_cache_expirations_total', 'Entries dropped when their TTL ran out.', SHARD_SLOT.L1_EXPIRATIONS, 'counter');
    level('strata_cache_items', 'Entries held by the level.', SHARD_SLOT.L1_ITEMS, 'gauge');
    level('strata_cache_bytes', 'Bytes the level charges against its budget.', SHARD_SLOT.L1_BYTES, 'gauge');
    new client.Gauge({
      name: 'strata_cache_max_bytes',
      help: 'The L1 budget of the node (l1MaxBytes), split evenly across its shards.',
      labelNames: ['level'],
      registers,
      collect() {
        this.set({ level: 'L1' }, sources.l1MaxBytes);
      },
    });
    new client.Gauge({
      name: 'strata_memory_rss_bytes',
      help: 'Resident memory of the node process, all threads (docs/memory.md bounds it from the L1 budget).',
      registers,
      collect() {
        this.set(process.memoryUsage.rss());
      },
    });
    new client.Gauge({
      name: 'strata_build_info',
      help: 'Always 1; the labels say which Strata and Node.js versions this node runs.',
      labelNames: ['version', 'node_version'],
      registers,
      collect() {
        this.set({ version: VERSION, node_version: process.versions.node }, 1);
      },
    });
    new client.Gauge({
      name: 'strata_start_time_seconds',
      help: 'When the node started, seconds since the Unix epoch (a restart changes it).',
      registers,
      collect() {
        this.set(stats.startedMs / 1000);
      },
    });

    new client.Counter({
      name: 'strata_requests_total',
      help: 'HTTP requests answered, by route and status code.',
      labelNames: ['route', 'code'],
      registers,
      collect() {
        this.reset();
        for (const [route, codes] of Object.entries(fronts.requestCounts())) for (const [code, n] of Object.entries(codes)) this.inc({ route, code }, n);
      },
    });
    new client.Gauge({
      name: 'strata_shard_utilization',
      help: 'Share of the last second each shard worker spent processing batches (0..1).',
      labelNames: ['shard'],
      registers,
      collect() {
        this.reset();
        stats.shardUtilization().forEach((u, shard) => {
          this.set({ shard }, u);
        });
      },
    });
    new client.Gauge({
      name: 'strata_shard_event_loop_utilization_ratio',
      help: "Each shard worker's event-loop utilization over its last second (0..1): its batches plus L2 and origin callbacks and timers.",
      labelNames: ['shard'],
      registers,
      collect() {
        this.reset();
        for (let shard = 0; shard < shards; shard++) this.set({ shard }, counters.shard(shard, SHARD_SLOT.LOOP_UTILIZATION_PPM) / 1e6);
      },
    });
    new client.Gauge({
      name: 'strata_front_utilization',
      help: 'Share of the last second each front thread spent running (event-loop utilization, 0..1).',
      labelNames: ['front'],
      registers,
      collect() {
        this.reset();
        for (let front = 0; front < fronts.fronts; front++) this.set({ front }, fronts.front(front).utilization);
      },
    });
    new client.Gauge({
      name: 'strata_front_event_loop_delay_p99_seconds',
      help: "99th percentile of each front's event-loop delay over the last second (how late its timers and I/O callbacks ran).",
      labelNames: ['front'],
      registers,
      collect() {
        this.reset();
        for (let front = 0; front < fronts.fronts; front++) this.set({ front }, fronts.front(front).loopDelayP99Seconds);
      },
    });
    new client.Gauge({
      name: 'strata_front_requests_in_flight',
      help: 'Requests each front has begun and not yet answered.',
      labelNames: ['front'],
      registers,
      collect() {
        this.reset();
        for (let front = 0; front < fronts.fronts; front++) this.set({ front }, fronts.front(front).requestsInFlight);
      },
    });
    new client.Counter({
      name: 'strata_front_requests_total',
      help: 'Requests each front answered (connections are spread over the fronts by the kernel).',
      labelNames: ['front'],
      registers,
      collect() {
        this.reset();
        for (let front = 0; front < fronts.fronts; front++) this.inc({ front }, fronts.front(front).requests);
      },
    });
    new client.Counter({
      name: 'strata_front_starts_total',
      help: 'Front threads started (1 per front at boot, plus replacements of fronts that died).',
      labelNames: ['front'],
      registers,
      collect() {
        this.reset();
        for (let front = 0; front < fronts.fronts; front++) this.inc({ front }, fronts.front(front).starts);
      },
    });
    new client.Counter({
      name: 'strata_forward_requests_total',
      help: 'Key requests for keys another node owns (docs/cluster.md): forwarded = answered by the owner; breaker, unreachable, timeout = served here instead, and why.',
      labelNames: ['result'],
      registers,
      collect() {
        this.reset();
        const f = fronts.forwarding();
        this.inc({ result: 'forwarded' }, f.forwarded);
        for (const [result, n] of Object.entries(f.fallbacks)) this.inc({ result }, n);
      },
    });
    counter('strata_forwarded_in_total', 'Key requests other nodes forwarded here (x-strata-hop), served here.', () => fronts.forwarding().servedForPeers);
    new client.Gauge({
      name: 'strata_cluster_members',
      help: "Nodes on this node's ring, itself included.",
      registers,
      collect() {
        this.set(ringSize());
      },
    });
    new client.Gauge({
      name: 'strata_shard_up',
      help: '1 while the shard has a live worker.',
      labelNames: ['shard'],
      registers,
      collect() {
        for (let shard = 0; shard < shards; shard++) this.set({ shard }, pool.isUp(shard) ? 1 : 0);
      },
    });
    new client.Counter({
      name: 'strata_shard_worker_starts_total',
      help: 'Shard workers started (1 per shard at boot, plus replacements).',
      labelNames: ['shard'],
      registers,
      collect() {
        this.reset();
        for (let shard = 0; shard < shards; shard++) this.inc({ shard }, counters.shard(shard, SHARD_SLOT.WORKER_STARTS));
      },
    });
    new client.Gauge({
      name: 'strata_l2_up',
      help: '1 while the L2 (Redis) is reachable from every shard, no circuit is open and the bus is subscribed; 0 otherwise or without an L2.',
      registers,
      collect() {
        this.set(l2Status().up ? 1 : 0);
      },
    });
    new client.Counter({
      name: 'strata_l2_errors_total',
      help: 'L2 operations that failed, by kind (timeout, connection, cluster, reply, breaker = refused while the circuit is open).',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset();
        L2_ERROR_KINDS.forEach((kind, i) => {
          this.inc({ kind }, counters.total(SHARD_SLOT.L2_ERRORS + i));
        });
      },
    });
    new client.Gauge({
      name: 'strata_l2_breaker_state',
      help: "Circuit breaker in front of each shard's L2 client: 0 closed, 1 half-open (probing), 2 open (failing fast).",
      labelNames: ['shard'],
      registers,
      collect() {
        this.reset();
        if (withL2) for (let shard = 0; shard < shards; shard++) this.set({ shard }, counters.shard(shard, SHARD_SLOT.L2_BREAKER));
      },
    });
    counter('strata_loads_coalesced_total', 'L1 misses that joined an L2 read already in flight for the same key instead of starting one.', () =>
      counters.total(SHARD_SLOT.LOADS_COALESCED),
    );
    new client.Counter({
      name: 'strata_bus_messages_total',
      help: "Invalidation bus messages: sent by this node's shards, received from other nodes.",
      labelNames: ['direction'],
      registers,
      collect() {
        this.reset();
        if (!withL2) return;
        this.inc({ direction: 'sent' }, counters.total(SHARD_SLOT.BUS_SENT));
        this.inc({ direction: 'received' }, bus.received);
      },
    });
    new client.Counter({
      name: 'strata_bus_gaps_total',
      help: 'Times bus messages may have been lost (a skipped sequence number or a resubscription); each empties the L1.',
      registers,
      collect() {
        this.reset();
        if (bus !== null) this.inc(bus.gaps);
      },
    });
    counter('strata_l1_admission_rejects_total', 'Values from (or written to) the L2 that TinyLFU admission kept out of a full L1.', () =>
      counters.total(SHARD_SLOT.L1_ADMISSION_REJECTS),
    );
    counter('strata_l1_remote_drops_total', 'L1 entries dropped because another node invalidated them or the bus had a gap.', () =>
      counters.total(SHARD_SLOT.L1_REMOTE_DROPS),
    );
    for (const [name, help, slot] of COORDINATION_COUNTERS) counter(name, help, () => counters.total(slot));
    const events = (name: string, help: string, slots: Readonly<Record<string, number>>) =>
      new client.Counter({
        name,
        help,
        labelNames: ['event'],
        registers,
        collect() {
          this.reset();
          for (const [event, slot] of Object.entries(slots)) this.inc({ event }, counters.total(slot));
        },
      });
    events(
      'strata_lock_events_total',
      'Key locks (loads and leases): acquired, waited on (held elsewhere), taken over after a holder died, lost (a fill fenced off).',
      {
        acquired: SHARD_SLOT.LOCKS_ACQUIRED,
        waited: SHARD_SLOT.LOCK_WAITS,
        takeover: SHARD_SLOT.LOCK_TAKEOVERS,
        lost: SHARD_SLOT.LOCKS_LOST,
      },
    );
    events('strata_lease_events_total', 'Leases for cache-aside clients: granted, filled, voided (409), waits that timed out (404 + Retry-After).', {
      granted: SHARD_SLOT.LEASES_GRANTED,
      filled: SHARD_SLOT.LEASES_FILLED,
      voided: SHARD_SLOT.LEASES_VOIDED,
      wait_timeout: SHARD_SLOT.WAIT_TIMEOUTS,
    });
    if (origins.length > 0) {
      new client.Counter({
        name: 'strata_origin_requests_total',
        help: 'Requests to read from an origin, by rule and result (value, not_modified, not_found, error, timeout; busy = not sent: maxConcurrent in flight).',
        labelNames: ['origin', 'result'],
        registers,
        collect() {
          this.reset();
          origins.forEach((rule, o) => {
            for (const [result, slot] of Object.entries(ORIGIN_RESULT_SLOTS)) this.inc({ origin: rule.name, result }, counters.origin(o, slot));
          });
        },
      });
      new client.Counter({
        name: 'strata_origin_writes_total',
        help: 'Write-through requests to an origin, by rule and result (ok, error: the cache was left untouched).',
        labelNames: ['origin', 'result'],
        registers,
        collect() {
          this.reset();
          origins.forEach((rule, o) => {
            const writes = counters.origin(o, ORIGIN_SLOT.WRITES);
            const errors = counters.origin(o, ORIGIN_SLOT.WRITE_ERRORS);
            this.inc({ origin: rule.name, result: 'ok' }, writes - errors);
            this.inc({ origin: rule.name, result: 'error' }, errors);
          });
        },
      });
      const slots = sources.originSlots ?? null;
      new client.Gauge({
        name: 'strata_origin_in_flight',
        help: 'Origin requests in flight from this node, by rule (at most its maxConcurrent).',
        labelNames: ['origin'],
        registers,
        collect() {
          origins.forEach((rule, o) => {
            this.set({ origin: rule.name }, slots?.inFlight(o) ?? 0);
          });
        },
      });
      this.registry.registerMetric(
        new SharedHistogram('strata_origin_request_duration_seconds', 'Time of one origin read request, by rule.', () =>
          origins.map((rule, o) => ({ labels: { origin: rule.name }, histogram: counters.originHistogram(o) })),
        ) as unknown as client.Metric,
      );
    }
    const postgres = sources.postgres ?? null;
    if (postgres !== null) {
      new client.Gauge({
        name: 'strata_pg_listener_up',
        help: '1 while the PostgreSQL invalidation listener is connected and listening (applying, or standing by to).',
        registers,
        collect() {
          this.set(postgres.status().up ? 1 : 0);
        },
      });
      new client.Gauge({
        name: 'strata_pg_applier_state',
        help: '1 on the node that applies the outbox for the cluster (or, without an L2, on every node, for itself).',
        registers,
        collect() {
          const role = postgres.status().role;
          this.set(role === 'applier' || role === 'follower' ? 1 : 0);
        },
      });
      new client.Gauge({
        name: 'strata_pg_lag_entries',
        help: 'Outbox entries not applied yet (the id distance between the outbox and the cursor), as of the last look.',
        registers,
        collect() {
          this.set(postgres.status().lag);
        },
      });
      counter('strata_pg_reconnects_total', 'Times the PostgreSQL invalidation connection was lost and made again.', () => postgres.status().reconnects);
      counter('strata_pg_applied_total', 'Outbox entries this node applied.', () => postgres.status().applied);
      counter(
        'strata_pg_rejected_total',
        'Outbox entries skipped because their payload was not {"keys":[…],"tags":[…]} of valid keys and tags.',
        () => postgres.status().rejected,
      );
    }
    if (bus !== null) {
      this.registry.registerMetric(
        new SharedHistogram(
          'strata_bus_delay_seconds',
          "Time from publishing an invalidation (or heartbeat) on the bus to this node's subscriber receiving it back (one clock).",
          () => [{ labels: {}, histogram: bus.delay }],
        ) as unknown as client.Metric,
      );
    }
    this.registry.registerMetric(
      new SharedHistogram('strata_request_duration_seconds', 'Time from request to response, by route.', () =>
        ROUTES.map((route) => ({ labels: { route }, histogram: fronts.routeHistogram(route) })),
      ) as unknown as client.Metric,
    );
    this.registry.registerMetric(
      new SharedHistogram('strata_shard_op_duration_seconds', 'Time from the front batching an op to its shard finishing it, by op.', () =>
        (['get', 'put', 'delete'] as const).map((op) => ({
          labels: { op },
          histogram: counters.totalHistogram(op),
        })),
      ) as unknown as client.Metric,
    );
    this.registry.registerMetric(
      new SharedHistogram('strata_l2_duration_seconds', 'Time of one L2 operation (read, write, delete) as the shard saw it.', () => [
        { labels: {}, histogram: counters.totalHistogram('l2') },
      ]) as unknown as client.Metric,
    );
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}

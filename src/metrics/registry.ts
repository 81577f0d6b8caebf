import client from 'prom-client';
import type { Counters, FrontCounters, HistogramSnapshot } from '../counters/counters.js';
import { bucketBoundSeconds } from '../counters/counters.js';
import { HIST_BUCKETS, L2_ERROR_KINDS, ROUTES, SHARD_SLOT, STATUS_LABELS } from '../counters/layout.js';
import type { BusCounts, L2Status } from '../l2/node-link.js';
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

/** The node's /metrics: prom-client metrics filled from the shared counters at scrape time. */
export class MetricsRegistry {
  readonly registry = new client.Registry();

  constructor(
    counters: Counters,
    front: FrontCounters,
    stats: StatsReporter,
    shards: number,
    pool: { isUp(shard: number): boolean },
    l2Status: () => L2Status = () => ({ configured: false, up: false }),
    bus: BusCounts | null = null,
  ) {
    const registers = [this.registry];
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

    new client.Counter({
      name: 'strata_requests_total',
      help: 'HTTP requests answered, by route and status code.',
      labelNames: ['route', 'code'],
      registers,
      collect() {
        this.reset();
        for (const route of ROUTES) {
          STATUS_LABELS.forEach((code, i) => {
            const n = front.requests(route, i);
            if (n > 0) this.inc({ route, code }, n);
          });
        }
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
    new client.Counter({
      name: 'strata_loads_coalesced_total',
      help: 'L1 misses that joined an L2 read already in flight for the same key instead of starting one.',
      registers,
      collect() {
        this.reset();
        this.inc(counters.total(SHARD_SLOT.LOADS_COALESCED));
      },
    });
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
    new client.Counter({
      name: 'strata_l1_admission_rejects_total',
      help: 'Values from (or written to) the L2 that TinyLFU admission kept out of a full L1.',
      registers,
      collect() {
        this.reset();
        this.inc(counters.total(SHARD_SLOT.L1_ADMISSION_REJECTS));
      },
    });
    new client.Counter({
      name: 'strata_l1_remote_drops_total',
      help: 'L1 entries dropped because another node invalidated them or the bus had a gap.',
      registers,
      collect() {
        this.reset();
        this.inc(counters.total(SHARD_SLOT.L1_REMOTE_DROPS));
      },
    });
    this.registry.registerMetric(
      new SharedHistogram('strata_request_duration_seconds', 'Time from request to response, by route.', () =>
        ROUTES.map((route) => ({ labels: { route }, histogram: front.routeHistogram(route) })),
      ) as unknown as client.Metric,
    );
    this.registry.registerMetric(
      new SharedHistogram('strata_shard_op_duration_seconds', 'Time from the front batching an op to its shard finishing it, by op.', () =>
        (['get', 'put', 'delete'] as const).map((op) => ({
          labels: { op },
          histogram: merge(Array.from({ length: shards }, (_, s) => counters.shardHistogram(s, op))),
        })),
      ) as unknown as client.Metric,
    );
    this.registry.registerMetric(
      new SharedHistogram('strata_l2_duration_seconds', 'Time of one L2 operation (read, write, delete) as the shard saw it.', () => [
        { labels: {}, histogram: merge(Array.from({ length: shards }, (_, s) => counters.shardHistogram(s, 'l2'))) },
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

function merge(parts: HistogramSnapshot[]): HistogramSnapshot {
  const buckets = new Array<number>(HIST_BUCKETS + 1).fill(0);
  let sumSeconds = 0;
  let count = 0;
  for (const p of parts) {
    p.buckets.forEach((b, i) => {
      buckets[i] = (buckets[i] as number) + b;
    });
    sumSeconds += p.sumSeconds;
    count += p.count;
  }
  return { buckets, sumSeconds, count };
}

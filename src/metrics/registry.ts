import client from 'prom-client';
import type { Counters, FrontCounters, HistogramSnapshot } from '../counters/counters.js';
import { bucketBoundSeconds } from '../counters/counters.js';
import { HIST_BUCKETS, HIST_OPS, ROUTES, SHARD_SLOT, STATUS_LABELS } from '../counters/layout.js';
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

  constructor(counters: Counters, front: FrontCounters, stats: StatsReporter, shards: number, pool: { isUp(shard: number): boolean }) {
    const registers = [this.registry];
    const level = (name: string, help: string, slot: number, type: 'counter' | 'gauge') => {
      const Metric = type === 'counter' ? client.Counter : client.Gauge;
      new Metric({
        name,
        help,
        labelNames: ['level'],
        registers,
        collect(this: client.Counter | client.Gauge) {
          this.reset();
          (this as client.Gauge).inc({ level: 'L1' }, counters.total(slot));
        },
      });
    };
    level('strata_cache_hits_total', 'Lookups answered from the level.', SHARD_SLOT.L1_HITS, 'counter');
    level('strata_cache_misses_total', 'Lookups the level could not answer.', SHARD_SLOT.L1_MISSES, 'counter');
    level('strata_cache_sets_total', 'Values stored in the level.', SHARD_SLOT.L1_SETS, 'counter');
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
    // Named in the design for the levels and loads that come next (Redis L2, origins); this node has neither yet.
    new client.Gauge({
      name: 'strata_l2_up',
      help: '1 while the L2 (Redis) answers; 0 when it does not or, as in this version, none is configured.',
      registers,
      collect() {
        this.set(0);
      },
    });
    new client.Counter({ name: 'strata_l2_errors_total', help: 'L2 (Redis) errors by kind; none without an L2.', labelNames: ['kind'], registers });
    new client.Counter({ name: 'strata_loads_coalesced_total', help: 'Origin loads joined to one already in flight; none without origins.', registers });
    this.registry.registerMetric(
      new SharedHistogram('strata_request_duration_seconds', 'Time from request to response, by route.', () =>
        ROUTES.map((route) => ({ labels: { route }, histogram: front.routeHistogram(route) })),
      ) as unknown as client.Metric,
    );
    this.registry.registerMetric(
      new SharedHistogram('strata_shard_op_duration_seconds', 'Time from the front batching an op to its shard finishing it, by op.', () =>
        HIST_OPS.map((op) => ({ labels: { op }, histogram: merge(Array.from({ length: shards }, (_, s) => counters.shardHistogram(s, op))) })),
      ) as unknown as client.Metric,
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

/**
 * The panels of bench:cores's figure (native-bench/figures/cores.svg): measured
 * efficiency and p99 by fronts × shards, the projection, and the Zipf comparison.
 */
import type { ZipfRun } from './cluster-comparison.js';
import { type Config, configName, LOADS, type LoadRun, type Projection } from './cores-runs.js';
import { median } from './harness.js';
import { barChart, lineChart, type Panel, type Series } from './plot.js';

export function coresPanels(input: { runs: LoadRun[]; projections: Projection[]; basis: Config; configs: Config[]; zipf: ZipfRun[] }): Panel[] {
  const { runs, projections, basis, configs, zipf } = input;
  /** Per load, a bar per configuration with valid runs: the median of `field` over its rounds. */
  const byConfig = (field: 'perCpuSecond' | 'p99ms') =>
    LOADS.map((load) => ({
      label: load,
      bars: configs
        .map((c) => ({ c, mine: runs.filter((r) => r.invalid === null && r.load === load && r.fronts === c.fronts && r.shards === c.shards) }))
        .filter(({ mine }) => mine.length > 0)
        .map(({ c, mine }) => ({ label: `${configName(c)} (fronts×shards)`, value: median(mine.map((r) => r[field])) })),
    }));
  const measured = barChart({
    title: 'Measured: requests per server CPU-second',
    yLabel: 'requests per CPU-second',
    width: 460,
    height: 360,
    groups: byConfig('perCpuSecond'),
  });
  const p99 = barChart({
    title: 'Measured: p99 latency (wrk -c50)',
    yLabel: 'p99 latency (ms)',
    width: 460,
    height: 360,
    groups: byConfig('p99ms'),
  });

  const series: Series[] = [];
  LOADS.forEach((load, i) => {
    const mine = projections.filter((p) => p.load === load);
    const base = mine.find((p) => p.fronts === basis.fronts && p.shards === basis.shards);
    if (base === undefined) return;
    const band = base.curve.map((s, n) => {
      const ys = mine.map((p) => p.curve[n]?.requestsPerSecond ?? s.requestsPerSecond);
      return [s.cores, Math.min(...ys), Math.max(...ys)] as [number, number, number];
    });
    series.push({ label: `${load} (best F/S, ${configName(basis)} costs)`, color: i, points: base.curve.map((s) => [s.cores, s.requestsPerSecond]), band });
    if (Number.isFinite(base.redisCeiling)) {
      series.push({
        label: `${load}: one redis-server's ceiling`,
        color: i,
        dashed: true,
        points: [1, 64].map((n) => [n, base.redisCeiling] as [number, number]),
      });
    }
  });
  const projected = lineChart({
    title: 'Projected throughput vs cores',
    xLabel: 'cores (band: from each measured F×S)',
    yLabel: 'requests/s',
    width: 520,
    height: 360,
    series,
  });

  const zipfChart = barChart({
    title: 'Zipf 0.99 reads: req per CPU-second',
    yLabel: 'requests per CPU-second',
    width: 420,
    height: 360,
    groups: [
      {
        label: 'same total L1 (≈10 % of keys)',
        bars: [...new Set(zipf.map((r) => r.label))].map((label) => {
          const mine = zipf.filter((r) => r.label === label);
          const hits = median(mine.map((r) => r.l1HitRatio));
          return { label: `${label.replace(/ \(node:http.*\)$/, '')}: ${(hits * 100).toFixed(0)}% hits`, value: median(mine.map((r) => r.perCpuSecond)) };
        }),
      },
    ],
  });
  return [measured, p99, projected, zipfChart];
}

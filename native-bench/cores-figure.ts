/** The figure of bench:cores (native-bench/cores.svg): measured efficiency, the projection, and the Zipf comparison. */
import type { ZipfRun } from './cluster-comparison.js';
import { type Config, configName, LOADS, type LoadRun, type Projection } from './cores-runs.js';
import { median } from './harness.js';
import { barChart, figure, lineChart, type Series } from './plot.js';

export function drawCoresFigure(input: {
  runs: LoadRun[];
  projections: Projection[];
  basis: Config;
  configs: Config[];
  zipf: ZipfRun[];
  machine: { cpu: string; node: string; date: string };
}): string {
  const { runs, projections, basis, configs, zipf, machine } = input;
  const measured = barChart({
    title: 'Measured: requests per server CPU-second',
    yLabel: 'requests per CPU-second',
    width: 460,
    height: 360,
    groups: LOADS.map((load) => ({
      label: load,
      bars: configs
        .map((c) => ({ c, mine: runs.filter((r) => r.invalid === null && r.load === load && r.fronts === c.fronts && r.shards === c.shards) }))
        .filter(({ mine }) => mine.length > 0)
        .map(({ c, mine }) => ({ label: `${configName(c)} (fronts×shards)`, value: median(mine.map((r) => r.perCpuSecond)) })),
    })),
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
  const caption = `bench:cores ${machine.date.slice(0, 10)}, ${machine.cpu}, Node.js ${machine.node}; every server pinned to one CPU, wrk and Redis on the other; model: min(F/c_f, S/c_s, N/(c_f+c_s+c_o))`;
  return figure(
    'Strata: CPU per request by fronts × shards, projected throughput on many cores, and Zipf reads against node:cluster',
    [measured, projected, zipfChart],
    caption,
  );
}

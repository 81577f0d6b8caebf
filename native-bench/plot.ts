/**
 * SVG charts drawn without a dependency: grouped bars (on a linear or a log
 * scale), horizontal bars, and lines on a log scale, placed side by side or
 * in a grid in one document with a caption. Enough for the benchmarks'
 * README figures, nothing more.
 */

export interface Bar {
  label: string;
  value: number;
}

export interface BarGroup {
  label: string;
  bars: Bar[];
}

export interface Series {
  label: string;
  points: [x: number, y: number][];
  /** Dashed line. @default false */
  dashed?: boolean;
  /** A shaded band around the line: for each x, the low and high y. @default none */
  band?: [x: number, low: number, high: number][];
  /** Index into the palette; series with the same colour belong together. */
  color: number;
}

/** One panel of a figure: its SVG, drawn in a box of `width` × `height` at the origin. */
export interface Panel {
  width: number;
  height: number;
  svg: string;
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const FONT = 'font-family="Helvetica, Arial, sans-serif"';
const MARGIN = { left: 64, right: 12, top: 34, bottom: 58 };

function colorOf(index: number): string {
  return PALETTE[index % PALETTE.length] as string;
}

function escapeXml(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}

function text(x: number, y: number, content: string, attrs = ''): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${FONT} ${attrs}>${escapeXml(content)}</text>`;
}

/** 12,345 → "12k", 1,234,567 → "1.2M", 456.7 → "457", 12.34 → "12.3", 0.4567 → "0.457"; "–" when not a number. */
export function shortNumber(n: number): string {
  if (!Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  if (a >= 1e6) return `${Number((n / 1e6).toFixed(a >= 1e7 ? 0 : 1))}M`;
  if (a >= 1e3) return `${Number((n / 1e3).toFixed(a >= 1e4 ? 0 : 1))}k`;
  if (a >= 100) return n.toFixed(0);
  return String(Number(n.toPrecision(3)));
}

/** A share 0–1 as a percentage: 0.4567 → "45.7%", 0.2 → "20%". */
export function percent(n: number): string {
  return Number.isFinite(n) ? `${Number((n * 100).toPrecision(3))}%` : '–';
}

/** A value axis from 0 (linear) or from the decade below the smallest positive value (log): ticks and where a value lands, 0 at the bottom, 1 at the top. */
interface Scale {
  ticks: number[];
  /** Decades the axis spans (0 on a linear scale). */
  decades: number;
  /** Major ticks (decades on a log scale) get a darker grid line. */
  major: (tick: number) => boolean;
  at: (value: number) => number;
}

function linearScale(values: readonly number[]): Scale {
  const max = Math.max(0, ...values.filter(Number.isFinite));
  const ticks = linearTicks(max > 0 ? max : 1);
  const top = ticks[ticks.length - 1] as number;
  return { ticks, decades: 0, major: () => false, at: (v) => Math.max(0, v) / top };
}

function logScale(values: readonly number[]): Scale {
  const positive = values.filter((v) => v > 0 && Number.isFinite(v));
  const lo = 10 ** Math.floor(Math.log10(positive.length === 0 ? 1 : Math.min(...positive)));
  let hi = 10 ** Math.ceil(Math.log10(positive.length === 0 ? 10 : Math.max(...positive)));
  if (hi <= lo) hi = lo * 10;
  const ticks: number[] = [];
  for (let decade = lo; decade <= hi * 1.001; decade *= 10) {
    for (const m of [1, 2, 5]) if (decade * m <= hi * 1.001) ticks.push(decade * m);
  }
  const decades = Math.log10(hi / lo);
  return {
    ticks,
    decades,
    major: (t) => Math.abs(Math.log10(t) - Math.round(Math.log10(t))) < 1e-9,
    at: (v) => (v > 0 ? Math.min(1, Math.max(0, Math.log10(v / lo) / decades)) : 0),
  };
}

/** Round tick values 0 … ≥ max (steps of 1, 2 or 5 × 10^k). */
function linearTicks(max: number, count = 5): number[] {
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * magnitude >= raw) ?? 10) * magnitude;
  const ticks: number[] = [];
  for (let t = 0; t <= max + step * 0.999; t += step) ticks.push(t);
  return ticks;
}

/**
 * Grouped bars, one colour per bar label (in order of first appearance, so
 * that panels with the same labels share colours), with the value above each
 * bar. `log`: a log value axis (for values spanning decades). `format`: the
 * value labels and ticks (default shortNumber). A value that is not a finite
 * number draws no bar and is labelled "–".
 */
export function barChart(options: {
  title: string;
  yLabel: string;
  groups: BarGroup[];
  width: number;
  height: number;
  log?: boolean;
  format?: (value: number) => string;
}): Panel {
  const { title, yLabel, groups, width, height } = options;
  const format = options.format ?? shortNumber;
  const labels = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.label)))];
  // The legend: two columns of short labels, or one of long ones, under the axis.
  const columns = labels.some((l) => l.length > 28) || width < 360 ? 1 : 2;
  const legendRows = Math.ceil(labels.length / columns);
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom - 16 * (legendRows - 1);
  const values = groups.flatMap((g) => g.bars.map((b) => b.value));
  const scale = options.log ? logScale(values) : linearScale(values);
  const y = (v: number) => MARGIN.top + plotH - scale.at(v) * plotH;
  const parts: string[] = [text(width / 2, 18, title, 'font-size="14" font-weight="bold" text-anchor="middle"')];
  for (const t of scale.ticks) {
    parts.push(
      `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="${scale.major(t) ? '#ccc' : '#ddd'}"/>`,
    );
    parts.push(text(MARGIN.left - 6, y(t) + 4, format(t), 'font-size="11" text-anchor="end"'));
  }
  parts.push(text(14, MARGIN.top + plotH / 2, yLabel, `font-size="12" text-anchor="middle" transform="rotate(-90 14 ${MARGIN.top + plotH / 2})"`));
  const groupW = plotW / Math.max(1, groups.length);
  const barW = (groupW * 0.8) / Math.max(1, labels.length);
  groups.forEach((group, g) => {
    const x0 = MARGIN.left + g * groupW + groupW * 0.1;
    for (const bar of group.bars) {
      const i = labels.indexOf(bar.label);
      const x = x0 + i * barW;
      const finite = Number.isFinite(bar.value);
      const top = finite ? y(bar.value) : MARGIN.top + plotH;
      if (finite) {
        parts.push(
          `<rect x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${Math.max(1, barW - 2).toFixed(1)}" height="${(MARGIN.top + plotH - top).toFixed(1)}" fill="${colorOf(i)}"/>`,
        );
      }
      parts.push(text(x + barW / 2 - 1, top - 3, finite ? format(bar.value) : '–', 'font-size="9" text-anchor="middle"'));
    }
    parts.push(text(x0 + groupW * 0.4, MARGIN.top + plotH + 16, group.label, 'font-size="12" text-anchor="middle"'));
  });
  parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${MARGIN.top + plotH}" y2="${MARGIN.top + plotH}" stroke="#333"/>`);
  labels.forEach((label, i) => {
    const x = MARGIN.left + (i % columns) * (plotW / columns);
    const ly = height - 16 * legendRows - 6 + Math.floor(i / columns) * 16;
    parts.push(`<rect x="${x.toFixed(1)}" y="${ly}" width="10" height="10" fill="${colorOf(i)}"/>`);
    parts.push(text(x + 14, ly + 9, label, 'font-size="11"'));
  });
  return { width, height, svg: parts.join('\n') };
}

/** One bar of a horizontal bar chart: its label on the left, and its colour (palette index, default 0). */
export interface Row {
  label: string;
  value: number;
  color?: number;
}

/** The two panels of most load figures, one bar per configuration: requests per server CPU-second and p99 latency. */
export function efficiencyPanels(groups: (field: 'perCpuSecond' | 'p99ms') => BarGroup[], width: number): Panel[] {
  return [
    barChart({ title: 'Requests per server CPU-second', yLabel: 'requests per CPU-second', groups: groups('perCpuSecond'), width, height: 320 }),
    barChart({ title: 'p99 latency', yLabel: 'p99 latency (ms)', groups: groups('p99ms'), width, height: 320 }),
  ];
}

/**
 * Horizontal bars, one per row, labelled on the left (for long labels), the
 * value at the end of each bar; `log` for values spanning decades. The
 * height follows the rows (22 px each). `legend`: what each colour means,
 * when rows have several.
 */
export function horizontalBarChart(options: {
  title: string;
  xLabel: string;
  rows: Row[];
  width: number;
  log?: boolean;
  format?: (value: number) => string;
  legend?: { label: string; color: number }[];
}): Panel {
  const { title, xLabel, rows, width } = options;
  const format = options.format ?? shortNumber;
  const legend = options.legend ?? [];
  const rowH = 22;
  const labelW = Math.min(width * 0.45, 12 + 6.2 * Math.max(4, ...rows.map((r) => [...r.label].length)));
  const left = labelW + 8;
  const right = 44;
  const top = MARGIN.top;
  const plotW = width - left - right;
  const plotH = rowH * rows.length;
  const height = top + plotH + 40 + 16 * legend.length;
  const scale = options.log ? logScale(rows.map((r) => r.value)) : linearScale(rows.map((r) => r.value));
  const x = (v: number) => left + scale.at(v) * plotW;
  const parts: string[] = [text(width / 2, 18, title, 'font-size="14" font-weight="bold" text-anchor="middle"')];
  for (const t of scale.ticks) {
    parts.push(`<line x1="${x(t).toFixed(1)}" x2="${x(t).toFixed(1)}" y1="${top}" y2="${top + plotH}" stroke="${scale.major(t) ? '#ccc' : '#e4e4e4'}"/>`);
    // Across more than two decades only the decades are labelled: the 2s and 5s would overlap.
    if (scale.decades <= 2 || scale.major(t)) parts.push(text(x(t), top + plotH + 14, format(t), 'font-size="10" text-anchor="middle"'));
  }
  rows.forEach((row, i) => {
    const y0 = top + i * rowH;
    parts.push(text(left - 6, y0 + rowH / 2 + 4, row.label, 'font-size="11" text-anchor="end"'));
    const finite = Number.isFinite(row.value);
    const end = finite ? x(row.value) : left;
    if (finite) {
      parts.push(
        `<rect x="${left}" y="${(y0 + 3).toFixed(1)}" width="${Math.max(0, end - left).toFixed(1)}" height="${rowH - 6}" fill="${colorOf(row.color ?? 0)}"/>`,
      );
    }
    parts.push(text(end + 3, y0 + rowH / 2 + 4, finite ? format(row.value) : '–', 'font-size="10"'));
  });
  parts.push(`<line x1="${left}" x2="${left}" y1="${top}" y2="${top + plotH}" stroke="#333"/>`);
  parts.push(text(left + plotW / 2, top + plotH + 30, xLabel, 'font-size="12" text-anchor="middle"'));
  legend.forEach((entry, i) => {
    const ly = top + plotH + 40 + i * 16;
    parts.push(`<rect x="${left}" y="${ly}" width="10" height="10" fill="${colorOf(entry.color)}"/>`);
    parts.push(text(left + 14, ly + 9, entry.label, 'font-size="11"'));
  });
  return { width, height, svg: parts.join('\n') };
}

/** Lines on log-log axes (x in powers of two), with optional shaded bands and a legend. */
export function lineChart(options: { title: string; xLabel: string; yLabel: string; series: Series[]; width: number; height: number }): Panel {
  const { title, xLabel, yLabel, series, width, height } = options;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom - 16 * Math.ceil(series.length / 2);
  const xs = series.flatMap((s) => s.points.map(([x]) => x));
  const ys = series
    .flatMap((s) => [...s.points.map(([, v]) => v), ...(s.band ?? []).flatMap(([, lo, hi]) => [lo, hi])])
    .filter((v) => v > 0 && Number.isFinite(v));
  const xMin = Math.min(...xs);
  const xMax = Math.max(...xs);
  const yMin = 10 ** Math.floor(Math.log10(Math.min(...ys)));
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...ys)));
  const x = (v: number) => MARGIN.left + ((Math.log2(v) - Math.log2(xMin)) / Math.max(1e-9, Math.log2(xMax) - Math.log2(xMin))) * plotW;
  const y = (v: number) => MARGIN.top + plotH - ((Math.log10(v) - Math.log10(yMin)) / Math.log10(yMax / yMin)) * plotH;
  const parts: string[] = [text(width / 2, 18, title, 'font-size="14" font-weight="bold" text-anchor="middle"')];
  for (let decade = yMin; decade <= yMax * 1.001; decade *= 10) {
    for (const m of [1, 2, 5]) {
      const v = decade * m;
      if (v > yMax * 1.001) break;
      parts.push(
        `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}" stroke="${m === 1 ? '#ccc' : '#eee'}"/>`,
      );
      parts.push(text(MARGIN.left - 6, y(v) + 4, shortNumber(v), 'font-size="11" text-anchor="end"'));
    }
  }
  for (let v = 2 ** Math.ceil(Math.log2(xMin)); v <= xMax; v *= 2) {
    parts.push(`<line x1="${x(v).toFixed(1)}" x2="${x(v).toFixed(1)}" y1="${MARGIN.top}" y2="${MARGIN.top + plotH}" stroke="#eee"/>`);
    parts.push(text(x(v), MARGIN.top + plotH + 16, String(v), 'font-size="11" text-anchor="middle"'));
  }
  parts.push(text(MARGIN.left + plotW / 2, MARGIN.top + plotH + 32, xLabel, 'font-size="12" text-anchor="middle"'));
  parts.push(text(14, MARGIN.top + plotH / 2, yLabel, `font-size="12" text-anchor="middle" transform="rotate(-90 14 ${MARGIN.top + plotH / 2})"`));
  parts.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  for (const s of series) {
    const color = colorOf(s.color);
    if (s.band !== undefined && s.band.length > 1) {
      const upper = s.band.map(([bx, , hi]) => `${x(bx).toFixed(1)},${y(hi).toFixed(1)}`);
      const lower = [...s.band].reverse().map(([bx, lo]) => `${x(bx).toFixed(1)},${y(lo).toFixed(1)}`);
      parts.push(`<polygon points="${[...upper, ...lower].join(' ')}" fill="${color}" fill-opacity="0.15" stroke="none"/>`);
    }
    const points = s.points.filter(([, v]) => v > 0 && Number.isFinite(v)).map(([px, py]) => `${x(px).toFixed(1)},${y(py).toFixed(1)}`);
    parts.push(`<polyline points="${points.join(' ')}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
  }
  series.forEach((s, i) => {
    const lx = MARGIN.left + (i % 2) * (plotW / 2);
    const ly = height - 16 * Math.ceil(series.length / 2) - 8 + Math.floor(i / 2) * 16;
    parts.push(
      `<line x1="${lx}" x2="${lx + 22}" y1="${ly - 4}" y2="${ly - 4}" stroke="${colorOf(s.color)}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
    );
    parts.push(text(lx + 26, ly, s.label, 'font-size="11"'));
  });
  return { width, height, svg: parts.join('\n') };
}

/** Splits `line` into lines of at most `chars` characters, at spaces. */
function wrap(line: string, chars: number): string[] {
  const out: string[] = [];
  let current = '';
  for (const word of line.split(' ')) {
    if (current !== '' && current.length + 1 + word.length > chars) {
      out.push(current);
      current = word;
    } else current = current === '' ? word : `${current} ${word}`;
  }
  if (current !== '') out.push(current);
  return out;
}

/**
 * Panels in one SVG document titled `title` (its <title>: each panel has its
 * own heading): left to right, or in rows of `columns`; the caption's lines
 * (wrapped to the width) under them.
 */
export function figure(title: string, panels: Panel[], caption: string | string[], options: { columns?: number } = {}): string {
  const columns = Math.max(1, options.columns ?? panels.length);
  const rows: Panel[][] = [];
  for (let i = 0; i < panels.length; i += columns) rows.push(panels.slice(i, i + columns));
  const width = Math.max(...rows.map((r) => r.reduce((sum, p) => sum + p.width, 0)));
  const lines = (typeof caption === 'string' ? [caption] : caption).flatMap((l) => wrap(l, Math.floor((width - 16) / 5.4)));
  const panelsHeight = rows.reduce((sum, r) => sum + Math.max(...r.map((p) => p.height)), 0);
  const height = panelsHeight + 8 + 13 * lines.length;
  const body: string[] = [];
  let top = 0;
  for (const row of rows) {
    let offset = 0;
    for (const p of row) {
      body.push(`<g transform="translate(${offset} ${top})">\n${p.svg}\n</g>`);
      offset += p.width;
    }
    top += Math.max(...row.map((p) => p.height));
  }
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    ...body,
    ...lines.map((line, i) => text(8, panelsHeight + 14 + 13 * i, line, 'font-size="10" fill="#555"')),
    '</svg>',
    '',
  ].join('\n');
}

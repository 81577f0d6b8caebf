/**
 * SVG charts drawn without a dependency: grouped bars and lines on a log
 * scale, placed side by side in one document. Enough for the benchmarks'
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

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b'];
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

/** 12,345 → "12k", 1,234,567 → "1.2M". */
function shortNumber(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(n >= 1e4 ? 0 : 1)}k`;
  return n.toFixed(0);
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

/** Grouped bars, one colour per bar label, with the value above each bar. */
export function barChart(options: { title: string; yLabel: string; groups: BarGroup[]; width: number; height: number }): Panel {
  const { title, yLabel, groups, width, height } = options;
  const labels = [...new Set(groups.flatMap((g) => g.bars.map((b) => b.label)))];
  // The legend: two columns of short labels, or one of long ones, under the axis.
  const columns = labels.some((l) => l.length > 28) ? 1 : 2;
  const legendRows = Math.ceil(labels.length / columns);
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom - 16 * (legendRows - 1);
  const max = Math.max(1, ...groups.flatMap((g) => g.bars.map((b) => b.value)));
  const ticks = linearTicks(max);
  const top = ticks[ticks.length - 1] as number;
  const y = (v: number) => MARGIN.top + plotH - (v / top) * plotH;
  const parts: string[] = [text(width / 2, 18, title, 'font-size="14" font-weight="bold" text-anchor="middle"')];
  for (const t of ticks) {
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="#ddd"/>`);
    parts.push(text(MARGIN.left - 6, y(t) + 4, shortNumber(t), 'font-size="11" text-anchor="end"'));
  }
  parts.push(text(14, MARGIN.top + plotH / 2, yLabel, `font-size="12" text-anchor="middle" transform="rotate(-90 14 ${MARGIN.top + plotH / 2})"`));
  const groupW = plotW / Math.max(1, groups.length);
  const barW = (groupW * 0.8) / Math.max(1, labels.length);
  groups.forEach((group, g) => {
    const x0 = MARGIN.left + g * groupW + groupW * 0.1;
    for (const bar of group.bars) {
      const i = labels.indexOf(bar.label);
      const x = x0 + i * barW;
      parts.push(
        `<rect x="${x.toFixed(1)}" y="${y(bar.value).toFixed(1)}" width="${(barW - 2).toFixed(1)}" height="${(MARGIN.top + plotH - y(bar.value)).toFixed(1)}" fill="${colorOf(i)}"/>`,
      );
      parts.push(text(x + barW / 2 - 1, y(bar.value) - 3, shortNumber(bar.value), 'font-size="9" text-anchor="middle"'));
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

/** Panels left to right in one SVG document titled `title`, with a caption line under them. */
export function figure(title: string, panels: Panel[], caption: string): string {
  const width = panels.reduce((sum, p) => sum + p.width, 0);
  const height = Math.max(...panels.map((p) => p.height)) + 22;
  let offset = 0;
  const body = panels.map((p) => {
    const g = `<g transform="translate(${offset} 0)">\n${p.svg}\n</g>`;
    offset += p.width;
    return g;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">`,
    `<title>${escapeXml(title)}</title>`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    ...body,
    text(8, height - 8, caption, 'font-size="10" fill="#555"'),
    '</svg>',
    '',
  ].join('\n');
}

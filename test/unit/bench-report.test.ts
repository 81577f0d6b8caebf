import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { barChart, figure, horizontalBarChart, percent, shortNumber } from '../../native-bench/plot.js';
import { commandLine, formatDuration, noColor, Progress, Report, type StatusStream } from '../../native-bench/report.js';

/** A stream that keeps what is written, as a terminal or not; and a clock the test moves. */
function fakes(isTTY: boolean, columns = 120) {
  const chunks: string[] = [];
  const stream: StatusStream = {
    isTTY,
    columns,
    write(chunk: string) {
      chunks.push(chunk);
      return true;
    },
  };
  const clock = { ms: 0 };
  return { chunks, stream, clock, now: () => clock.ms };
}

const PLAN = [
  { name: 'warm-up', seconds: 10 },
  { name: 'measure', seconds: 20 },
  { name: 'report', seconds: 30 },
];

describe('bench progress line (native-bench/report.ts)', () => {
  it('says which step of how many, its name, the time elapsed and the time left from the plan', () => {
    const { stream, clock, now } = fakes(true);
    const progress = new Progress(PLAN, { stream, now, color: false, intervalMs: 0, interceptOutput: false });
    progress.start('warm-up');
    clock.ms = 4000;
    expect(progress.state()).toMatchObject({ index: 1, count: 3, name: 'warm-up', elapsedSeconds: 4, leftSeconds: 56 });
    expect(progress.line()).toBe('[1/3] warm-up · 0:04 elapsed · ~0:56 left');
    progress.end();
  });

  it('scales the steps to come by how long the finished ones took against their plan', () => {
    const { stream, clock, now } = fakes(true);
    const progress = new Progress(PLAN, { stream, now, color: false, intervalMs: 0, interceptOutput: false });
    progress.start('warm-up');
    clock.ms = 20_000; // twice its plan
    progress.start('measure');
    expect(progress.state()).toMatchObject({ index: 2, leftSeconds: 100 });
    clock.ms = 30_000;
    expect(progress.state().leftSeconds).toBe(90);
    progress.end();
  });

  it("uses the step's own pace when it reports the fraction done, and shows its detail", () => {
    const { stream, clock, now } = fakes(true);
    const progress = new Progress(PLAN, { stream, now, color: false, intervalMs: 0, interceptOutput: false });
    progress.start('warm-up');
    clock.ms = 5000;
    progress.update('1 of 4 done', 0.25);
    expect(progress.state().leftSeconds).toBe(15 + 20 + 30);
    expect(progress.line()).toContain('[1/3] warm-up: 1 of 4 done');
    progress.end();
  });

  it('passes over skipped steps, and runs a step it was not told of as planned at 0 s', () => {
    const { stream, now } = fakes(true);
    const progress = new Progress(PLAN, { stream, now, color: false, intervalMs: 0, interceptOutput: false });
    progress.start('report');
    expect(progress.state()).toMatchObject({ index: 1, count: 1, name: 'report', leftSeconds: 30 });
    progress.start('an extra step');
    expect(progress.state()).toMatchObject({ index: 2, count: 2, name: 'an extra step', leftSeconds: 0 });
    progress.end();
  });

  it('rewrites one line on a terminal, clears it at the end, and fits the line to the width', () => {
    const { chunks, stream, now } = fakes(true, 40);
    const progress = new Progress(PLAN, { stream, now, color: false, intervalMs: 0, interceptOutput: false });
    progress.start('a step with a name far too long for forty columns');
    const drawn = chunks.at(-1) as string;
    expect(drawn.startsWith('\r\x1b[2K')).toBe(true);
    expect([...drawn.slice('\r\x1b[2K'.length)].length).toBeLessThan(40);
    expect(drawn).toContain('…');
    expect(drawn).not.toContain('\n');
    progress.end();
    expect(chunks.at(-1)).toBe('\r\x1b[2K');
  });

  it('colours the counter and the times unless told not to (NO_COLOR)', () => {
    const { stream, now } = fakes(true);
    const coloured = new Progress(PLAN, { stream, now, color: true, intervalMs: 0, interceptOutput: false });
    coloured.start('warm-up');
    expect(coloured.line()).toMatch(/\x1b\[1m\[1\/3\]\x1b\[22m/);
    coloured.end();
    const plain = new Progress(PLAN, { stream, now, color: false, intervalMs: 0, interceptOutput: false });
    plain.start('warm-up');
    expect(plain.line()).not.toContain('\x1b');
    plain.end();
    expect(noColor({ NO_COLOR: '1' })).toBe(true);
    expect(noColor({ NO_COLOR: '' })).toBe(false);
    expect(noColor({})).toBe(false);
  });

  it('writes nothing when the stream is not a terminal', () => {
    const { chunks, stream, now } = fakes(false);
    const progress = new Progress(PLAN, { stream, now, intervalMs: 0 });
    expect(progress.active).toBe(false);
    for (const step of PLAN) progress.start(step.name);
    progress.update('half', 0.5);
    progress.end();
    expect(chunks).toEqual([]);
  });

  it('formats durations as m:ss and h:mm:ss', () => {
    expect(formatDuration(0)).toBe('0:00');
    expect(formatDuration(59.6)).toBe('1:00');
    expect(formatDuration(605)).toBe('10:05');
    expect(formatDuration(3725)).toBe('1:02:05');
    expect(formatDuration(-3)).toBe('0:00');
  });
});

describe('bench results writer (native-bench/report.ts)', () => {
  it('names the npm script when npm ran it, else the node command line', () => {
    expect(commandLine(['/usr/bin/node', '/x/dist/native-bench/http.js', '--seconds', '2'], [], { npm_lifecycle_event: 'bench:http' })).toBe(
      'npm run bench:http -- --seconds 2',
    );
    expect(commandLine(['/usr/bin/node', '/x/dist/native-bench/l2.js'], [], { npm_lifecycle_event: 'bench:l2' })).toBe('npm run bench:l2');
    expect(commandLine(['/usr/bin/node', 'dist/native-bench/memory.js', '--budgets', '16m,64m'], ['--expose-gc'], {})).toBe(
      'node --expose-gc dist/native-bench/memory.js --budgets 16m,64m',
    );
    expect(commandLine(['/usr/bin/node', 'a.js', "it's"], [], {})).toBe(`node a.js 'it'\\''s'`);
  });

  it('writes the JSON with the run context and every figure to results/ and figures/', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
    const report = new Report('demo', {
      resultsDir: join(dir, 'results'),
      figuresDir: join(dir, 'figures'),
      command: 'npm run bench:demo -- --seconds 1',
      date: new Date('2026-12-01T10:20:30Z'),
    });
    report.json({ runs: [{ rps: 1234.5, p99ms: Number.NaN }], byKey: new Map([['a', 1]]) });
    const saved = JSON.parse(readFileSync(join(dir, 'results', 'demo.json'), 'utf8'));
    expect(saved).toMatchObject({
      script: 'demo',
      date: '2026-12-01T10:20:30.000Z',
      node: process.version,
      command: 'npm run bench:demo -- --seconds 1',
      quick: false,
    });
    expect(typeof saved.cpu).toBe('string');
    expect(saved.results).toEqual({ runs: [{ rps: 1234.5, p99ms: 'NaN' }], byKey: { a: 1 } });

    const svg = report.figure('demo', 'A demo', [barChart({ title: 'Throughput', yLabel: 'requests/s', width: 700, height: 240, groups: [] })], {
      notes: ['a note'],
    });
    expect(readFileSync(join(dir, 'figures', 'demo.svg'), 'utf8')).toBe(svg);
    expect(readFileSync(join(dir, 'results', 'demo.svg'), 'utf8')).toBe(svg);
    expect(svg).toContain('npm run bench:demo -- --seconds 1 · 2026-12-01 10:20 UTC');
    expect(svg).toContain('a note');
    expect(report.written()).toHaveLength(3);
  });

  it('keeps a quick run out of figures/', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-report-'));
    const report = new Report('demo', { resultsDir: join(dir, 'results'), figuresDir: join(dir, 'figures'), command: 'x', quick: true });
    report.json({});
    report.figure('demo', 'A demo', [barChart({ title: 't', yLabel: 'y', width: 300, height: 240, groups: [] })]);
    expect(readdirSync(join(dir, 'results')).sort()).toEqual(['demo-quick.json', 'demo-quick.svg']);
    expect(() => readdirSync(join(dir, 'figures'))).toThrow();
  });
});

describe('bench plots (native-bench/plot.ts)', () => {
  const groups = [
    {
      label: 'GET',
      bars: [
        { label: 'bare', value: 40_000 },
        { label: 'Strata', value: 38_000 },
      ],
    },
    {
      label: 'PUT',
      bars: [
        { label: 'bare', value: 60_000 },
        { label: 'Strata', value: Number.NaN },
      ],
    },
  ];

  it('a grouped bar chart has its title, axis label, group labels, a legend entry per bar label, and a bar per finite value', () => {
    const panel = barChart({ title: 'Requests per CPU-second', yLabel: 'requests per CPU-second', groups, width: 400, height: 300 });
    expect(panel.svg).toContain('>Requests per CPU-second<');
    expect(panel.svg).toContain('>requests per CPU-second<');
    for (const label of ['GET', 'PUT', 'bare', 'Strata']) expect(panel.svg).toContain(`>${label}<`);
    // 3 bars and 2 legend swatches; the NaN bar is labelled "–".
    expect(panel.svg.match(/<rect /g)).toHaveLength(5);
    expect(panel.svg).toContain('>–<');
  });

  it('a log-scale chart and a horizontal one place every row', () => {
    const log = barChart({ title: 't', yLabel: 'ns', groups, width: 400, height: 300, log: true });
    expect(log.svg).toContain('>10k<');
    const rows = [
      { label: 'hashKey', value: 9e6 },
      { label: 'hop', value: 2e4, color: 1 },
    ];
    const h = horizontalBarChart({ title: 'ops/s', xLabel: 'operations per second', rows, width: 500, log: true, legend: [{ label: 'hop', color: 1 }] });
    expect(h.height).toBeGreaterThan(2 * 22);
    expect(h.svg).toContain('>hashKey<');
    expect(h.svg).toContain('>9M<');
    expect(h.svg).toContain('>20k<');
  });

  it('a figure lays panels out in rows and wraps its caption', () => {
    const panel = { width: 300, height: 200, svg: '<rect/>' };
    const svg = figure('T & co', [panel, panel, panel], ['a caption line that is long enough to be wrapped at least once at this width'.repeat(3)], {
      columns: 2,
    });
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="600"')).toBe(true);
    expect(svg).toContain('<title>T &amp; co</title>');
    expect(svg).toContain('translate(0 200)');
    expect(svg.match(/fill="#555"/g)?.length).toBeGreaterThan(1);
  });

  it('formats numbers short, and shares as percentages', () => {
    expect(shortNumber(1_234_567)).toBe('1.2M');
    expect(shortNumber(1_000_000)).toBe('1M');
    expect(shortNumber(12_345)).toBe('12k');
    expect(shortNumber(456.7)).toBe('457');
    expect(shortNumber(12.34)).toBe('12.3');
    expect(shortNumber(0.30000000000000004)).toBe('0.3');
    expect(shortNumber(Number.NaN)).toBe('–');
    expect(percent(0.4567)).toBe('45.7%');
    expect(percent(0.2)).toBe('20%');
  });
});

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { L2_ERROR_KINDS, ORIGIN_RESULT_SLOTS, ROUTES, STATUS_LABELS } from '../../src/counters/layout.js';
import { ROOT, startTestNode, until } from '../helpers/node.js';
import { TestOrigin } from '../helpers/origin.js';
import { RedisServer } from '../helpers/redis.js';

// /metrics as Prometheus reads it, and the files built on it: docs/alerts.yml (with its unit tests,
// docs/alerts.test.yml), docs/grafana/strata.json and docs/deploy/prometheus.yml. One node with every source of
// metrics (an L2, origins, PostgreSQL, bearer tokens) takes every kind of traffic with many distinct keys, so that
// a label that leaked keys would show; promtool (Debian package prometheus) lints what it serves and checks the rules.

type Node = Awaited<ReturnType<typeof startTestNode>>;

const TOKEN = 'prometheus-test-token-0123';
const AUTH = { authorization: `Bearer ${TOKEN}` };
/** In every key, tag and unknown path the traffic uses: no label value may contain it. */
const MARK = `pk${randomBytes(4).toString('hex')}`;
/** Distinct keys per round of traffic. */
const KEYS = 500;
const SHARDS = 3;
const FRONTS = 2;
const ORIGIN_RULES = ['users', 'writes'];
const PG = 'postgres://postgres@127.0.0.1:5432/test';
const schema = `strata_prom_${randomBytes(4).toString('hex')}`;

let redis: RedisServer;
let origin: TestOrigin;
let admin: pg.Client;
let node: Node;
/** Every key, tag and path the traffic used. */
const used = new Set<string>();
/** The scrape after the first round of traffic. */
let first: Scrape;

// ---------------------------------------------------------------------------------------------------------------
// The rules /metrics is held to.

/**
 * Suffixes that name a metric's unit (Prometheus naming: base units, plural) or its kind. A metric must end in one,
 * or be listed in UNITLESS below: a new metric without a unit fails here until it gets one.
 */
const UNIT_SUFFIXES = [
  '_total', // counters (and only counters)
  '_seconds',
  '_bytes',
  '_ratio', // 0..1
  '_entries',
  '_items',
  '_members',
  '_info', // always 1, facts in its labels
  '_state', // an enumeration, its values in HELP
  '_up', // 1 or 0
] as const;

/** Gauges that count something without a unit, each with why it has none. */
const UNITLESS: Readonly<Record<string, string>> = {
  strata_front_requests_in_flight: 'requests in progress, the *_in_flight convention of client_golang (promhttp_metric_handler_requests_in_flight)',
  strata_origin_in_flight: 'origin requests in progress, as above',
  // A share of time, 0..1: `_ratio` by Prometheus's naming advice, but these names are part of the node's
  // published interface (the design's metric list names strata_shard_utilization), so they stay.
  strata_shard_utilization: 'share of the last second a shard worker spent on batches, 0..1 (a published name)',
  strata_front_utilization: "share of the last second a front's event loop was busy, 0..1 (the same, for fronts)",
};

/** Histogram buckets must cover at least this span, seconds: a microsecond L1 hit to a one-second origin load. */
const HISTOGRAM_SPAN = [1e-6, 1] as const;

/**
 * Every label /metrics may carry, with the closed set of its values. A label not listed fails: a new one must say
 * here what bounds it.
 */
const LABELS: Readonly<Record<string, (value: string) => boolean>> = {
  level: (v) => v === 'L1' || v === 'L2',
  route: (v) => (ROUTES as readonly string[]).includes(v),
  code: (v) => (STATUS_LABELS as readonly string[]).includes(v),
  shard: (v) => /^\d+$/.test(v) && Number(v) < SHARDS,
  front: (v) => /^\d+$/.test(v) && Number(v) < FRONTS,
  op: (v) => ['get', 'put', 'delete'].includes(v),
  kind: (v) => (L2_ERROR_KINDS as readonly string[]).includes(v),
  direction: (v) => v === 'sent' || v === 'received',
  event: (v) => ['acquired', 'waited', 'takeover', 'lost', 'granted', 'filled', 'voided', 'wait_timeout'].includes(v),
  result: (v) => [...Object.keys(ORIGIN_RESULT_SLOTS), 'ok', 'forwarded', 'breaker', 'unreachable', 'timeout'].includes(v),
  // Origin rules are named by the configuration.
  origin: (v) => ORIGIN_RULES.includes(v),
  // One value per process.
  version: (v) => v === (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version,
  node_version: (v) => v === process.versions.node,
  le: (v) => v === '+Inf' || Number.isFinite(Number(v)),
};

/** What is wrong with a family's name for its type; [] when nothing. */
function namingProblems(name: string, type: string): string[] {
  const problems: string[] = [];
  if (!/^strata_[a-z0-9_]+$/.test(name)) problems.push(`${name}: not strata_ and snake_case`);
  if (type === 'counter' && !name.endsWith('_total')) problems.push(`${name}: a counter must end in _total`);
  if (type !== 'counter' && name.endsWith('_total')) problems.push(`${name}: only counters end in _total (it is a ${type})`);
  if (type === 'histogram' && !/_(seconds|bytes)$/.test(name)) problems.push(`${name}: a histogram must be in _seconds or _bytes`);
  if (name.endsWith('_info') && type !== 'gauge') problems.push(`${name}: an _info metric is a gauge`);
  if (!UNIT_SUFFIXES.some((s) => name.endsWith(s)) && !(name in UNITLESS)) {
    problems.push(`${name}: no unit suffix (${UNIT_SUFFIXES.join(' ')}) and not a documented unit-less gauge`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// The text exposition format, read here rather than by a library, so that the test says what it accepts.

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

interface Family {
  readonly name: string;
  help?: string;
  type?: string;
  readonly samples: Sample[];
}

interface Scrape {
  readonly text: string;
  readonly families: ReadonlyMap<string, Family>;
  /** Every series, as `name{label="value",…}` with the labels sorted. */
  readonly series: ReadonlySet<string>;
}

const ESCAPED: Record<string, string> = { n: '\n', '\\': '\\', '"': '"' };

/** One sample line: name, labels, value (and an optional timestamp, which /metrics never sends). */
function parseSample(line: string): Sample {
  const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)?.[0];
  if (name === undefined) throw new Error(`not a sample: ${line}`);
  let i = name.length;
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    while (line[i] !== '}') {
      const label = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(i));
      if (label === null) throw new Error(`bad label at ${i}: ${line}`);
      i += label[0].length;
      let value = '';
      while (line[i] !== '"') {
        if (i >= line.length) throw new Error(`unterminated label value: ${line}`);
        if (line[i] === '\\') {
          value += ESCAPED[line[i + 1] as string] ?? `\\${line[i + 1]}`;
          i += 2;
        } else value += line[i++];
      }
      i++;
      if (Object.hasOwn(labels, label[1] as string)) throw new Error(`label ${label[1]} twice: ${line}`);
      labels[label[1] as string] = value;
      if (line[i] === ',') i++;
    }
    i++;
  }
  const [value, ...rest] = line.slice(i).trim().split(/\s+/);
  if (value === undefined || rest.length > 1) throw new Error(`bad value: ${line}`);
  return { name, labels, value: value === '+Inf' ? Infinity : value === '-Inf' ? -Infinity : Number(value) };
}

function seriesId(s: Sample): string {
  const labels = Object.entries(s.labels)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return `${s.name}{${labels.join(',')}}`;
}

function parseExposition(text: string): Scrape {
  const families = new Map<string, Family>();
  const family = (name: string) => {
    let f = families.get(name);
    if (f === undefined) {
      f = { name, samples: [] };
      families.set(name, f);
    }
    return f;
  };
  const series = new Set<string>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const meta = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
    if (meta !== null) {
      const f = family(meta[2] as string);
      if (meta[1] === 'HELP') f.help = meta[3] ?? '';
      else f.type = meta[3] ?? '';
      continue;
    }
    if (line.startsWith('#')) continue;
    const sample = parseSample(line);
    // A histogram's samples are its _bucket, _sum and _count series.
    const base = /^(.*)_(bucket|sum|count)$/.exec(sample.name)?.[1];
    const owner = families.has(sample.name) ? sample.name : base !== undefined && families.get(base)?.type === 'histogram' ? base : undefined;
    if (owner === undefined) throw new Error(`sample before (or without) its family's HELP and TYPE: ${line}`);
    family(owner).samples.push(sample);
    const id = seriesId(sample);
    if (series.has(id)) throw new Error(`series twice: ${id}`);
    series.add(id);
  }
  return { text, families, series };
}

// ---------------------------------------------------------------------------------------------------------------
// Tools.

/** Runs promtool from the repository root with `stdin`; a missing promtool is an error saying how to get it. */
function promtool(args: readonly string[], stdin = ''): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('promtool', args, { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(err.code === 'ENOENT' ? new Error('promtool is not installed: this test needs it on the PATH (Debian package prometheus)') : err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
    child.stdin.on('error', () => {}); // promtool may exit before it reads everything; its exit code says why
    child.stdin.end(stdin);
  });
}

async function scrape(): Promise<Scrape> {
  const res = await fetch(`${node.url}/metrics`, { headers: AUTH });
  expect(res.status).toBe(200);
  return parseExposition(await res.text());
}

/** Runs `fn` over `items`, `width` at a time. */
async function inBatches<T>(items: readonly T[], width: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map((item, j) => fn(item, i + j)));
}

/** A request whose status is not under test here; the body is read so the connection is free again. */
async function call(path: string, init: RequestInit = {}): Promise<number> {
  const res = await fetch(`${node.url}${path}`, init);
  await res.arrayBuffer();
  return res.status;
}

const keyPath = (key: string) => `/v1/keys/${encodeURIComponent(key)}`;

/** Every kind of request, over KEYS keys of this round's own: the second round must add no series. */
async function drive(round: number): Promise<void> {
  const keys = Array.from({ length: KEYS }, (_, i) => `${MARK}-r${round}-${i}`);
  const tags = Array.from({ length: 25 }, (_, i) => `${MARK}-tag-r${round}-${i}`);
  for (const k of [...keys, ...tags]) used.add(k);
  const value = 'v'.repeat(2048);
  // Writes: 500 × ~3 KiB charged is more than the 1 MiB budget, so the L1 evicts and later reads go to the L2.
  await inBatches(keys, 50, async (key, i) => {
    expect(await call(`${keyPath(key)}?ttl=300&tags=${tags[i % tags.length]}`, { method: 'PUT', body: value, headers: AUTH })).toBe(204);
  });
  // Reads: hits from L1 (some through the fronts' hot-read index, read twice) or the L2, then misses everywhere.
  await inBatches(keys, 50, async (key) => {
    expect(await call(keyPath(key))).toBe(200);
    expect(await call(keyPath(key))).toBe(200);
    expect(await call(keyPath(`${key}-absent`))).toBe(404);
    used.add(`${key}-absent`);
  });
  await inBatches(keys.slice(0, 50), 25, async (key) => {
    expect(await call(keyPath(key), { method: 'HEAD' })).toBe(200);
  });
  for (let i = 0; i < keys.length; i += 100) {
    expect(await call('/v1/mget', { method: 'POST', body: JSON.stringify({ keys: [...keys.slice(i, i + 100), `${MARK}-r${round}-none-${i}`] }) })).toBe(200);
  }
  expect(await call('/v1/mget', { method: 'POST', body: `{"keys": [${MARK}` })).toBe(400);
  // Read-through: half the ids exist at the origin, half are 404 there.
  const ids = keys.slice(0, 100).map((key) => `user:${key}`);
  ids.forEach((id, i) => {
    if (i % 2 === 0) origin.route(`/users/${id.slice('user:'.length)}`, { body: `{"id":"${i}"}` });
    used.add(id);
  });
  await inBatches(ids, 25, async (id, i) => {
    expect(await call(keyPath(id))).toBe(i % 2 === 0 ? 200 : 404);
    expect(await call(keyPath(id))).toBe(i % 2 === 0 ? 200 : 404);
  });
  // Write-through: the origin takes half the writes; the other half fail there (the cache is left untouched).
  const writes = keys.slice(0, 20).map((key) => `wt:${key}`);
  writes.forEach((key, i) => {
    if (i % 2 === 0) origin.route(`/wt/${key.slice('wt:'.length)}`, { status: 200 });
    used.add(key);
  });
  await inBatches(writes, 10, async (key) => {
    await call(keyPath(key), { method: 'PUT', body: 'w', headers: AUTH });
  });
  // Deletes and invalidations, by key and by tag, over HTTP and from PostgreSQL's outbox.
  await inBatches(
    keys.filter((_, i) => i % 10 === 0),
    25,
    async (key) => {
      expect(await call(keyPath(key), { method: 'DELETE', headers: AUTH })).toBe(204);
    },
  );
  expect(await call('/v1/invalidate', { method: 'POST', body: JSON.stringify({ tags: tags.slice(0, 5) }), headers: AUTH })).toBe(200);
  expect(await call('/v1/invalidate', { method: 'POST', body: JSON.stringify({ keys: keys.slice(100, 150) }), headers: AUTH })).toBe(200);
  await admin.query('SELECT strata_invalidate($1::text[], $2::text[])', [keys.slice(150, 200), tags.slice(5, 10)]);
  // Requests that fail: unauthorized, unknown routes, a key too long.
  await inBatches(keys.slice(0, 20), 10, async (key) => {
    expect(await call(keyPath(key), { method: 'PUT', body: 'x' })).toBe(401);
    expect(await call(`/${key}/nowhere`)).toBe(404);
    used.add(`/${key}/nowhere`);
  });
  expect(await call('/metrics', { headers: { authorization: `Bearer wrong-${MARK}-token` } })).toBe(401);
  expect(await call(keyPath(`${MARK}-${'k'.repeat(2000)}`))).toBe(400);
  // The node's own routes.
  for (const path of ['/healthz', '/livez', '/readyz']) expect(await call(path)).toBe(200);
  for (const path of ['/v1/stats', '/v1/cluster', '/metrics']) expect(await call(path, { headers: AUTH })).toBe(200);
}

/** The `strata_*` metric names a text mentions. */
const metricNames = (text: string) => new Set(text.match(/\bstrata_[a-z0-9_]+/g) ?? []);

/** The family a name used in PromQL refers to (a histogram's _bucket, _sum and _count are its own), if any. */
function familyOf(scrape: Scrape, name: string): Family | undefined {
  const f = scrape.families.get(name);
  if (f !== undefined) return f;
  const base = /^(.*)_(bucket|sum|count)$/.exec(name)?.[1];
  const h = base === undefined ? undefined : scrape.families.get(base);
  return h?.type === 'histogram' ? h : undefined;
}

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

beforeAll(async () => {
  admin = new pg.Client({ connectionString: PG });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  [redis, origin] = await Promise.all([RedisServer.start(), TestOrigin.start()]);
  node = await startTestNode({
    redisUrl: redis.url,
    postgresUrl: `${PG}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
    shards: SHARDS,
    fronts: FRONTS,
    l1MaxBytes: 1024 * 1024,
    maxValueBytes: 64 * 1024,
    tokens: [TOKEN],
    origins: [
      { name: 'users', prefix: 'user:', url: `${origin.url}/users/{id}`, ttl: 60, negativeTtl: 60, timeoutMs: 2000 },
      { name: 'writes', prefix: 'wt:', url: `${origin.url}/wt/{id}`, writeThrough: 'PUT', timeoutMs: 2000 },
    ],
  });
  await until(async () => {
    const stats = (await (await fetch(`${node.url}/v1/stats`, { headers: AUTH })).json()) as { postgres: { up: boolean } };
    return (await call('/readyz')) === 200 && stats.postgres.up;
  }, 20_000);
  await drive(1);
  first = await scrape();
}, 120_000);

afterAll(async () => {
  await node?.close();
  await Promise.all([redis?.stop(), origin?.stop()]);
  await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
  await admin?.end();
});

// ---------------------------------------------------------------------------------------------------------------

describe('/metrics', () => {
  it('passes promtool check metrics with nothing to say', async () => {
    const { code, out } = await promtool(['check', 'metrics'], first.text);
    expect(out).toBe('');
    expect(code).toBe(0);
  });

  it('exposes every metric src/metrics/registry.ts defines, L2 ones with level="L2", after this traffic', () => {
    const defined = metricNames(read('src/metrics/registry.ts'));
    expect(defined.size).toBeGreaterThan(40);
    expect([...defined].filter((name) => !first.families.has(name))).toEqual([]);
    const value = (name: string, labels: Record<string, string> = {}) =>
      first.families.get(name)?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
    // Traffic of every kind reached the counters: the checks below look at real values, not only at zeros.
    expect(value('strata_cache_hits_total', { level: 'L2' })).toBeGreaterThan(0);
    expect(value('strata_cache_evictions_total', { level: 'L1' })).toBeGreaterThan(0);
    expect(value('strata_origin_requests_total', { origin: 'users', result: 'value' })).toBe(50);
    expect(value('strata_origin_requests_total', { origin: 'users', result: 'not_found' })).toBe(50);
    expect(value('strata_origin_writes_total', { origin: 'writes', result: 'ok' })).toBe(10);
    expect(value('strata_requests_total', { route: 'put', code: '401' })).toBe(20);
    expect(value('strata_requests_total', { route: 'other', code: '404' })).toBe(20);
    expect(value('strata_l2_up')).toBe(1);
    expect(value('strata_pg_listener_up')).toBe(1);
    expect(value('strata_cache_max_bytes', { level: 'L1' })).toBe(1024 * 1024);
    // docs/alerts.yml relies on these at boot: one bus gap (the subscription's start), one start per thread.
    expect(value('strata_bus_gaps_total')).toBe(1);
    expect(first.families.get('strata_shard_worker_starts_total')?.samples.map((s) => s.value)).toEqual(Array(SHARDS).fill(1));
    expect(first.families.get('strata_front_starts_total')?.samples.map((s) => s.value)).toEqual(Array(FRONTS).fill(1));
  });

  it('gives every family HELP and TYPE, and every name the unit or kind suffix its type asks for', () => {
    const problems: string[] = [];
    for (const f of first.families.values()) {
      if (f.help === undefined || f.help.trim() === '') problems.push(`${f.name}: no HELP`);
      if (f.type === undefined || !['counter', 'gauge', 'histogram'].includes(f.type)) problems.push(`${f.name}: TYPE ${f.type}`);
      problems.push(...namingProblems(f.name, f.type ?? ''));
    }
    expect(problems).toEqual([]);
  });

  it('keeps values in the range their suffix promises', () => {
    const problems: string[] = [];
    for (const f of first.families.values()) {
      for (const s of f.samples) {
        const at = seriesId(s);
        if (f.name.endsWith('_ratio') && !(s.value >= 0 && s.value <= 1)) problems.push(`${at} = ${s.value}, not 0..1`);
        if (f.name.endsWith('_up') && s.value !== 0 && s.value !== 1) problems.push(`${at} = ${s.value}, not 0 or 1`);
        if (f.name.endsWith('_info') && s.value !== 1) problems.push(`${at} = ${s.value}, not 1`);
        if (f.name.endsWith('_state') && !Number.isInteger(s.value)) problems.push(`${at} = ${s.value}, not a state`);
        if (f.type === 'counter' && !(s.value >= 0)) problems.push(`${at} = ${s.value}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('gives histograms strictly increasing buckets from at most 1 µs to at least 1 s, then +Inf, counted consistently', () => {
    const histograms = [...first.families.values()].filter((f) => f.type === 'histogram');
    expect(histograms.map((h) => h.name).sort()).toEqual(
      [
        'strata_bus_delay_seconds',
        'strata_l2_duration_seconds',
        'strata_origin_request_duration_seconds',
        'strata_request_duration_seconds',
        'strata_shard_op_duration_seconds',
      ].sort(),
    );
    for (const h of histograms) {
      const byLabels = new Map<string, { buckets: [string, number][]; sum?: number; count?: number }>();
      for (const s of h.samples) {
        const { le, ...rest } = s.labels;
        const id = JSON.stringify(Object.entries(rest).sort());
        const entry = byLabels.get(id) ?? { buckets: [] };
        byLabels.set(id, entry);
        if (s.name === `${h.name}_bucket`) entry.buckets.push([le as string, s.value]);
        else if (s.name === `${h.name}_sum`) entry.sum = s.value;
        else if (s.name === `${h.name}_count`) entry.count = s.value;
        else throw new Error(`${s.name} in histogram ${h.name}`);
      }
      expect(byLabels.size, h.name).toBeGreaterThan(0);
      for (const [labels, { buckets, sum, count }] of byLabels) {
        const at = `${h.name} ${labels}`;
        const bounds = buckets.map(([le]) => (le === '+Inf' ? Infinity : Number(le)));
        expect(bounds.at(-1), at).toBe(Infinity);
        expect(
          buckets.filter(([le]) => le === '+Inf'),
          at,
        ).toHaveLength(1);
        for (let i = 1; i < bounds.length; i++) expect(bounds[i] as number, at).toBeGreaterThan(bounds[i - 1] as number);
        expect(bounds[0], at).toBeLessThanOrEqual(HISTOGRAM_SPAN[0]);
        expect(bounds.at(-2), at).toBeGreaterThanOrEqual(HISTOGRAM_SPAN[1]);
        for (let i = 1; i < buckets.length; i++) expect(buckets[i]?.[1] as number, at).toBeGreaterThanOrEqual(buckets[i - 1]?.[1] as number);
        expect(count, at).toBe(buckets.at(-1)?.[1]);
        expect(sum, at).toBeGreaterThanOrEqual(0);
      }
    }
    // This traffic's requests were timed.
    const gets = first.families.get('strata_request_duration_seconds')?.samples.find((s) => s.name.endsWith('_count') && s.labels.route === 'get');
    expect(gets?.value).toBeGreaterThan(KEYS);
  });

  it('uses only labels with a closed set of values, none holding a key, a tag or a path of the traffic', () => {
    const problems: string[] = [];
    for (const f of first.families.values()) {
      for (const s of f.samples) {
        for (const [label, value] of Object.entries(s.labels)) {
          const allowed = LABELS[label];
          if (allowed === undefined) problems.push(`${seriesId(s)}: label ${label} is not known to be bounded`);
          else if (!allowed(value)) problems.push(`${seriesId(s)}: ${label}="${value}" is outside its set`);
          if (value.includes(MARK) || used.has(value)) problems.push(`${seriesId(s)}: ${label} holds a key`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(used.size).toBeGreaterThan(KEYS);
    expect(first.text).not.toContain(MARK);
  });

  it('adds no series when 500 more distinct keys take the same traffic', async () => {
    await drive(2);
    const second = await scrape();
    const added = [...second.series].filter((id) => !first.series.has(id));
    const gone = [...first.series].filter((id) => !second.series.has(id));
    expect({ added, gone }).toEqual({ added: [], gone: [] });
    expect(second.series.size).toBe(first.series.size);
    for (const [label, value] of [...second.families.values()].flatMap((f) => f.samples.flatMap((s) => Object.entries(s.labels)))) {
      expect(value.includes(MARK), `${label}="${value}"`).toBe(false);
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------

/** The alerts of a rule file with what each says: its severity and annotations, read line by line (promtool checks the YAML). */
function alerts(text: string): { name: string; severity: string | undefined; summary: boolean; description: boolean; runbook: string | undefined }[] {
  return text
    .split(/^\s*- alert:\s*/m)
    .slice(1)
    .map((block) => ({
      name: block.split(/\s/)[0] as string,
      severity: /^\s+severity:\s*(\S+)/m.exec(block)?.[1],
      summary: /^\s+summary:\s*\S/m.test(block),
      description: /^\s+description:\s*\S/m.test(block),
      runbook: /^\s+runbook:\s*(\S+)/m.exec(block)?.[1],
    }));
}

const REQUIRED_ALERTS = [
  'StrataHitRatioDrop',
  'StrataL2Down',
  'StrataL2BreakerOpen',
  'StrataBusGaps',
  'StrataEventLoopLag',
  'StrataMemoryNearBudget',
  'StrataShardRestarts',
  'StrataNodeDown',
];

describe('docs/alerts.yml', () => {
  const text = read('docs/alerts.yml');

  it('passes promtool check rules', async () => {
    const { code, out } = await promtool(['check', 'rules', 'docs/alerts.yml']);
    expect(out).toMatch(/SUCCESS: \d+ rules found/);
    expect(code, out).toBe(0);
  });

  it('passes its unit tests (docs/alerts.test.yml: each alert fires when it should, and only then)', async () => {
    const { code, out } = await promtool(['test', 'rules', 'docs/alerts.test.yml']);
    expect(code, out).toBe(0);
    expect(out).toContain('SUCCESS');
    // Every alert has a case.
    const tested = new Set([...read('docs/alerts.test.yml').matchAll(/^\s*alertname:\s*(\S+)/gm)].map((m) => m[1]));
    expect(alerts(text).filter((a) => !tested.has(a.name))).toEqual([]);
  });

  it('has the alerts the issue asks for, each with a severity, a summary, a description and a runbook in docs/', () => {
    const found = alerts(text);
    expect(found.map((a) => a.name)).toEqual(expect.arrayContaining(REQUIRED_ALERTS));
    expect(new Set(found.map((a) => a.name)).size).toBe(found.length);
    for (const a of found) {
      expect(['critical', 'warning', 'info'], a.name).toContain(a.severity);
      expect(a.summary && a.description, a.name).toBe(true);
      expect(a.runbook, a.name).toMatch(/^docs\/[\w./-]+\.md$/);
      expect(() => read(a.runbook as string), a.name).not.toThrow();
    }
  });

  it('names only metrics /metrics has, in the rules and in their unit tests', () => {
    for (const path of ['docs/alerts.yml', 'docs/alerts.test.yml']) {
      const names = [...metricNames(read(path))];
      expect(names.length, path).toBeGreaterThan(5);
      expect(
        names.filter((name) => familyOf(first, name) === undefined),
        path,
      ).toEqual([]);
    }
  });

  it('is what docs/deploy/prometheus.yml loads (promtool check config), mounted there by docker-compose.yml', async () => {
    const config = read('docs/deploy/prometheus.yml');
    expect(config).toMatch(/^rule_files:\n\s+- \/etc\/prometheus\/alerts\.yml$/m);
    expect(read('docker-compose.yml')).toMatch(/^\s+- \.\/docs\/alerts\.yml:\/etc\/prometheus\/alerts\.yml:ro$/m);
    // The same config with the rule file where this checkout has it.
    const dir = mkdtempSync(join(tmpdir(), 'strata-prometheus-'));
    try {
      writeFileSync(join(dir, 'prometheus.yml'), config.replace('/etc/prometheus/alerts.yml', join(ROOT, 'docs/alerts.yml')));
      const { code, out } = await promtool(['check', 'config', join(dir, 'prometheus.yml')]);
      expect(code, out).toBe(0);
      expect(out).toContain('SUCCESS: 1 rule files found');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------

interface Target {
  expr?: string;
  refId?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  id?: number;
  type?: string;
  title?: string;
  datasource?: { type?: string; uid?: string };
  gridPos?: { x: number; y: number; w: number; h: number };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  __inputs?: { name: string; type: string; pluginId: string }[];
  schemaVersion?: number;
  title?: string;
  uid?: string;
  panels?: Panel[];
  templating?: { list: { name: string; type: string; datasource?: { uid?: string }; query?: unknown }[] };
  annotations?: { list: { expr?: string; datasource?: { uid?: string } }[] };
}

describe('docs/grafana/strata.json', () => {
  const text = read('docs/grafana/strata.json');
  const dashboard = JSON.parse(text) as Dashboard;
  const all = (dashboard.panels ?? []).flatMap((p) => [p, ...(p.panels ?? [])]);
  const panels = all.filter((p) => p.type !== 'row');
  const input = dashboard.__inputs?.find((i) => i.type === 'datasource' && i.pluginId === 'prometheus')?.name;
  const datasource = `\${${input}}`;
  const exprs = [
    ...panels.flatMap((p) => (p.targets ?? []).map((t) => ({ at: `panel ${p.id} "${p.title}" ${t.refId}`, expr: t.expr ?? '' }))),
    ...(dashboard.annotations?.list ?? []).flatMap((a, i) => (a.expr === undefined ? [] : [{ at: `annotation ${i}`, expr: a.expr }])),
  ];

  it('is an importable Grafana 10 dashboard: a Prometheus input, job and instance variables, unique ids, a tiled grid', () => {
    expect(input).toBe('DS_PROMETHEUS');
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(38);
    expect(dashboard.title).toBeTruthy();
    expect(dashboard.uid).toMatch(/^[\w-]{1,40}$/);
    const variables = dashboard.templating?.list ?? [];
    for (const name of ['job', 'instance']) {
      const variable = variables.find((v) => v.name === name);
      expect(variable?.type, name).toBe('query');
      expect(variable?.datasource?.uid, name).toBe(datasource);
    }
    const ids = all.map((p) => p.id);
    expect(ids.every((id) => Number.isInteger(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of all) {
      const g = p.gridPos;
      expect(g, `panel ${p.id}`).toBeDefined();
      if (g === undefined) continue;
      expect([g.x, g.y, g.w, g.h].every((n) => Number.isInteger(n) && n >= 0) && g.w > 0 && g.h > 0 && g.x + g.w <= 24, `panel ${p.id}`).toBe(true);
    }
    // No two panels overlap.
    for (const [i, a] of all.entries()) {
      for (const b of all.slice(i + 1)) {
        const [p, q] = [a.gridPos, b.gridPos] as { x: number; y: number; w: number; h: number }[];
        const overlap = p && q && p.x < q.x + q.w && q.x < p.x + p.w && p.y < q.y + q.h && q.y < p.y + p.h;
        expect(overlap, `panels ${a.id} and ${b.id}`).toBe(false);
      }
    }
    expect(all.filter((p) => p.type === 'row').map((p) => p.title)).toEqual([
      'Traffic',
      'Cache',
      'L2 (Redis)',
      'Invalidation bus',
      'Threads',
      'Origins and stampede protection',
      'Cluster',
      'Memory',
    ]);
  });

  it('gives every panel a title, the Prometheus input as its datasource and at least one query over $job and $instance', () => {
    expect(panels.length).toBeGreaterThan(20);
    for (const p of panels) {
      const at = `panel ${p.id}`;
      expect(p.title?.trim(), at).toBeTruthy();
      expect(p.datasource?.uid, at).toBe(datasource);
      expect(p.targets?.length, at).toBeGreaterThan(0);
      for (const t of p.targets ?? []) {
        expect(t.expr?.trim(), at).toBeTruthy();
        expect(t.datasource?.uid ?? datasource, at).toBe(datasource);
      }
    }
    for (const { at, expr } of exprs) {
      expect(expr, at).toContain('job=~"$job"');
      expect(expr, at).toContain('instance=~"$instance"');
      // Every range is Grafana's rate interval: at least four scrapes, whatever the zoom.
      for (const [, range] of expr.matchAll(/\[([^\]]*)\]/g)) expect(range, at).toBe('$__rate_interval');
    }
  });

  it('queries only metrics /metrics has, in PromQL that promtool parses', async () => {
    const names = [...metricNames(text)];
    expect(names.length).toBeGreaterThan(30);
    expect(names.filter((name) => familyOf(first, name) === undefined)).toEqual([]);
    // Each query as a recording rule, Grafana's variables replaced by what they stand for.
    const rules = exprs.map(({ expr }, i) => {
      const promql = expr.replaceAll('$__rate_interval', '1m').replaceAll('$job', '.*').replaceAll('$instance', '.*');
      return `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(promql)}\n`;
    });
    const dir = mkdtempSync(join(tmpdir(), 'strata-grafana-'));
    try {
      writeFileSync(join(dir, 'queries.yml'), `groups:\n  - name: dashboard\n    rules:\n${rules.join('')}`);
      const { code, out } = await promtool(['check', 'rules', join(dir, 'queries.yml')]);
      expect(code, out).toBe(0);
      expect(out).toContain(`SUCCESS: ${exprs.length} rules found`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

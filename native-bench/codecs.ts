/**
 * The typed client's codecs (src/client/codecs.ts) against one another, on
 * two payloads (an order record of ~1 KB of JSON, and a list of 100 products
 * of ~100 B each):
 *
 * - in process (tinybench): encode and decode µs, mean and median, and the
 *   encoded bytes, of `json<T>()`, `msgpack<T>()`, `schema(zod)` (JSON plus
 *   validation on both sides) and `avroCodec<T>()`, a schema'd binary codec
 *   written here (avsc): fields in schema order with no names or tags on
 *   the wire, the role bincode plays in Rust. JSON is the baseline. Every
 *   codec must give the payload back exactly (own fields, strictly equal)
 *   before anything is timed: the bench exits 1 otherwise.
 * - end to end: a node (`--fronts 1 --shards 1`, L1 only) pinned to CPU 0,
 *   this process to CPU 1; `--concurrency` loops of the typed client's
 *   `set` then `get` of the order, each codec for `--seconds` per round in
 *   half-second slices, the codecs taking turns. Reported: set+get pairs per second, per client CPU-second (this
 *   process, `process.cpuUsage()`) and per server CPU-second (the node's
 *   /proc utime + stime). The baseline is `raw()` carrying the order's JSON
 *   bytes encoded once: the client's cost without any serialization. A CPU
 *   profile of one more `json` run then says where the client's CPU goes.
 *
 * Writes native-bench/results/codecs.json and the figure figures/codecs.svg.
 *
 *   npm run bench:codecs [-- --seconds 3 --rounds 3 --concurrency 64]
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Session } from 'node:inspector/promises';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import avro, { type Type as AvroType } from 'avsc';
import { isNativeAccelerationEnabled } from 'msgpackr';
import { Bench } from 'tinybench';
import { z } from 'zod';
import { type Codec, createClient, json, msgpack, raw, schema } from '../src/client/index.js';
import { cpuOf, fmt, median, SERVER_CPU, type Server, startProcess, stop, WRK_CPU } from './harness.js';
import { type BarGroup, barChart } from './plot.js';
import { Progress, Report } from './report.js';

const { values: args } = parseArgs({
  options: {
    /** Measured seconds of each codec per end-to-end round (in slices of SLICE_SECONDS, the codecs taking turns). */
    seconds: { type: 'string', default: '3' },
    /** End-to-end rounds; medians over them are printed. */
    rounds: { type: 'string', default: '3' },
    /** set+get loops in flight at once. */
    concurrency: { type: 'string', default: '64' },
  },
});
const SECONDS = Number(args.seconds);
const ROUNDS = Number(args.rounds);
const CONCURRENCY = Number(args.concurrency);
/** Untimed seconds of each codec before the first round, and before the profiled run: connections opened, code optimised. */
const WARMUP_SECONDS = 0.5;
/** Each codec's seconds of a round are run in slices this long, the codecs taking turns. */
const SLICE_SECONDS = 0.5;
const CLIENT_CPU = WRK_CPU;
const CLI = join(new URL('../../', import.meta.url).pathname, 'dist/src/cli.js');
/** tinybench tasks: encode and decode of 4 codecs on 2 payloads, 1 s each after 200 ms of warm-up. */
const IN_PROCESS_TASKS = 16;
const STEPS = {
  inProcess: `in process: ${IN_PROCESS_TASKS} tinybench tasks`,
  start: 'end to end: start a node, check every codec through it, warm up',
  round: (round: number) => `end to end: round ${round + 1} of ${ROUNDS}`,
  profile: "profile of the client's CPU: one json run",
};
const report = new Report('codecs');
const progress = new Progress([
  { name: STEPS.inProcess, seconds: IN_PROCESS_TASKS * 1.5 },
  { name: STEPS.start, seconds: 1 + 5 * WARMUP_SECONDS },
  ...Array.from({ length: ROUNDS }, (_, round) => ({ name: STEPS.round(round), seconds: 5 * SECONDS })),
  { name: STEPS.profile, seconds: WARMUP_SECONDS + SECONDS + 0.5 },
]);

// ---------------------------------------------------------------- payloads

interface Address {
  line1: string;
  line2: string;
  city: string;
  postcode: string;
  country: string;
  lat: number;
  lon: number;
}
interface LineItem {
  sku: string;
  name: string;
  quantity: number;
  unitPrice: number;
  discounted: boolean;
}
/** An API-like record: ids, strings, numbers, booleans, a nested customer and address, 5 line items, an ISO timestamp. */
interface Order {
  id: string;
  userId: number;
  status: string;
  currency: string;
  total: number;
  paid: boolean;
  gift: boolean;
  createdAt: string;
  note: string;
  customer: { name: string; email: string; phone: string; vip: boolean };
  address: Address;
  items: LineItem[];
  tags: string[];
}
/** One entry of a listing, ~100 B of JSON. */
interface Product {
  id: number;
  name: string;
  priceCents: number;
  inStock: boolean;
  updatedAt: string;
}

const order: Order = {
  id: 'ord_01JD8Z3K4M5N6P7Q8R9S0T1U2V',
  userId: 48213977,
  status: 'paid',
  currency: 'EUR',
  total: 219.47,
  paid: true,
  gift: false,
  createdAt: '2026-11-30T17:42:05.123Z',
  note: 'Leave at the door, please.',
  customer: { name: 'Ada Lovelace', email: 'ada.lovelace@example.com', phone: '+44 20 7946 0958', vip: true },
  address: { line1: '12 Analytical Engine Lane', line2: 'Flat 3', city: 'London', postcode: 'NW1 6XE', country: 'GB', lat: 51.5237, lon: -0.1585 },
  items: Array.from({ length: 5 }, (_, i) => ({
    sku: `SKU-${1000 + i}-BLK-M`,
    name: `Organic cotton t-shirt, size M #${i}`,
    quantity: i + 1,
    unitPrice: 19.99 + i,
    discounted: i % 2 === 0,
  })),
  tags: ['express', 'first-order', 'newsletter'],
};

const products: Product[] = Array.from({ length: 100 }, (_, i) => ({
  id: 100_000 + i * 37,
  name: `Merino socks ${['blue', 'red', 'green'][i % 3]} ${i}`,
  priceCents: 999 + ((i * 131) % 4000),
  inStock: i % 7 !== 0,
  updatedAt: `2026-11-${String(1 + (i % 30)).padStart(2, '0')}T08:${String(i % 60).padStart(2, '0')}:00.000Z`,
}));

// ---------------------------------------------------------------- schemas: zod for schema(), Avro for the binary codec

const AddressSchema = z.object({
  line1: z.string(),
  line2: z.string(),
  city: z.string(),
  postcode: z.string(),
  country: z.string(),
  lat: z.number(),
  lon: z.number(),
});
const LineItemSchema = z.object({ sku: z.string(), name: z.string(), quantity: z.number().int(), unitPrice: z.number(), discounted: z.boolean() });
const OrderSchema = z.object({
  id: z.string(),
  userId: z.number().int(),
  status: z.string(),
  currency: z.string(),
  total: z.number(),
  paid: z.boolean(),
  gift: z.boolean(),
  createdAt: z.string(),
  note: z.string(),
  customer: z.object({ name: z.string(), email: z.string(), phone: z.string(), vip: z.boolean() }),
  address: AddressSchema,
  items: z.array(LineItemSchema),
  tags: z.array(z.string()),
});
const ProductListSchema = z.array(
  z.object({ id: z.number().int(), name: z.string(), priceCents: z.number().int(), inStock: z.boolean(), updatedAt: z.string() }),
);

// Avro: a record's fields are written in this order, with no names, tags or lengths of the record itself;
// 'long' is a zig-zag varint (a JS number up to 2^53), 'double' 8 bytes, 'string' a varint length and UTF-8.
// omitRecordMethods: decoded records get no clone/toBuffer/… methods (they are still instances of a generated class).
const avroOptions = { omitRecordMethods: true };
const OrderAvro = avro.Type.forSchema(
  {
    type: 'record',
    name: 'Order',
    fields: [
      { name: 'id', type: 'string' },
      { name: 'userId', type: 'long' },
      { name: 'status', type: 'string' },
      { name: 'currency', type: 'string' },
      { name: 'total', type: 'double' },
      { name: 'paid', type: 'boolean' },
      { name: 'gift', type: 'boolean' },
      { name: 'createdAt', type: 'string' },
      { name: 'note', type: 'string' },
      {
        name: 'customer',
        type: {
          type: 'record',
          name: 'Customer',
          fields: [
            { name: 'name', type: 'string' },
            { name: 'email', type: 'string' },
            { name: 'phone', type: 'string' },
            { name: 'vip', type: 'boolean' },
          ],
        },
      },
      {
        name: 'address',
        type: {
          type: 'record',
          name: 'Address',
          fields: [
            { name: 'line1', type: 'string' },
            { name: 'line2', type: 'string' },
            { name: 'city', type: 'string' },
            { name: 'postcode', type: 'string' },
            { name: 'country', type: 'string' },
            { name: 'lat', type: 'double' },
            { name: 'lon', type: 'double' },
          ],
        },
      },
      {
        name: 'items',
        type: {
          type: 'array',
          items: {
            type: 'record',
            name: 'LineItem',
            fields: [
              { name: 'sku', type: 'string' },
              { name: 'name', type: 'string' },
              { name: 'quantity', type: 'int' },
              { name: 'unitPrice', type: 'double' },
              { name: 'discounted', type: 'boolean' },
            ],
          },
        },
      },
      { name: 'tags', type: { type: 'array', items: 'string' } },
    ],
  },
  avroOptions,
);
const ProductListAvro = avro.Type.forSchema(
  {
    type: 'array',
    items: {
      type: 'record',
      name: 'Product',
      fields: [
        { name: 'id', type: 'long' },
        { name: 'name', type: 'string' },
        { name: 'priceCents', type: 'long' },
        { name: 'inStock', type: 'boolean' },
        { name: 'updatedAt', type: 'string' },
      ],
    },
  },
  avroOptions,
);

/**
 * Avro binary (avsc) as a `Codec<T>`, `avro/binary` (the media type of Avro's
 * HTTP transport). The bytes carry no schema: a reader needs the writer's. The
 * bench's codec only: it is not in src/client.
 */
function avroCodec<T>(type: AvroType): Codec<T> {
  return {
    contentType: 'avro/binary',
    // A Buffer is a Uint8Array: returned as it is.
    encode: (value) => type.toBuffer(value),
    // avsc reads Buffers only: a view of the same memory, no copy. fromBuffer throws on trailing or missing bytes.
    decode: (bytes) => type.fromBuffer(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)) as T,
  };
}

/** A codec of one payload type under the name the tables give it. */
interface Named<T> {
  name: string;
  codec: Codec<T>;
}
const orderCodecs: Named<Order>[] = [
  { name: 'json', codec: json<Order>() },
  { name: 'msgpack', codec: msgpack<Order>() },
  { name: 'schema (zod)', codec: schema(OrderSchema) },
  { name: 'avro (avsc)', codec: avroCodec<Order>(OrderAvro) },
];
const listCodecs: Named<Product[]>[] = [
  { name: 'json', codec: json<Product[]>() },
  { name: 'msgpack', codec: msgpack<Product[]>() },
  { name: 'schema (zod)', codec: schema(ProductListSchema) },
  { name: 'avro (avsc)', codec: avroCodec<Product[]>(ProductListAvro) },
];

// ---------------------------------------------------------------- round trips, checked first

/** A copy of v made of plain objects and arrays with the same own fields: what "the same value" means here. */
function plain(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/** Whether every object in v is a plain object (prototype Object.prototype) and every array a plain array. */
function isPlain(v: unknown): boolean {
  if (Array.isArray(v)) return Object.getPrototypeOf(v) === Array.prototype && v.every(isPlain);
  if (typeof v === 'object' && v !== null) return Object.getPrototypeOf(v) === Object.prototype && Object.values(v).every(isPlain);
  return true;
}

/** The bytes as the client hands them to decode: a Uint8Array of its own (not a Buffer, not a view into a pool). */
function asReceived(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(bytes);
}

/** Encodes and decodes `value` with every codec: exits 1 unless each gives it back; the encoded bytes and whether decode gives plain objects. */
function checkRoundTrips<T>(payload: string, value: T, codecs: readonly Named<T>[]): Map<string, { bytes: Uint8Array; plain: boolean }> {
  const out = new Map<string, { bytes: Uint8Array; plain: boolean }>();
  for (const { name, codec } of codecs) {
    const bytes = asReceived(codec.encode(value));
    const back = codec.decode(bytes);
    try {
      // Own fields, strictly equal: a number stays a number of the same value, no field is added, lost or renamed.
      assert.deepStrictEqual(plain(back), value);
    } catch (err) {
      console.error(`${name} does not round-trip the ${payload}:\n${(err as Error).message}`);
      process.exit(1);
    }
    out.set(name, { bytes, plain: isPlain(back) });
  }
  return out;
}

// ---------------------------------------------------------------- in process: tinybench

interface Timing {
  meanUs: number;
  medianUs: number;
}
interface InProcessRow {
  payload: string;
  codec: string;
  bytes: number;
  plain: boolean;
  encode: Timing;
  decode: Timing;
}

/** The mean and median of a tinybench task in µs; exits 1 if the task failed. */
function timingOf(bench: Bench, name: string): Timing {
  const result = bench.getTask(name)?.result;
  if (result === undefined || !('latency' in result)) {
    console.error(`tinybench task "${name}" has no result: ${JSON.stringify(result)}`);
    process.exit(1);
  }
  return { meanUs: result.latency.mean * 1000, medianUs: result.latency.p50 * 1000 };
}

async function inProcess(): Promise<InProcessRow[]> {
  const payloads = [
    { payload: 'order (1 object)', value: order as unknown, codecs: orderCodecs as Named<unknown>[] },
    { payload: '100 products', value: products as unknown, codecs: listCodecs as Named<unknown>[] },
  ];
  const bench = new Bench({ time: 1000, warmupTime: 200 });
  const checked = new Map<string, Map<string, { bytes: Uint8Array; plain: boolean }>>();
  // What each task returns, kept so that no call's result is unused.
  let sink: unknown = null;
  for (const { payload, value, codecs } of payloads) {
    const encoded = checkRoundTrips(payload, value, codecs);
    checked.set(payload, encoded);
    for (const { name, codec } of codecs) {
      const bytes = encoded.get(name)?.bytes as Uint8Array;
      bench.add(`${payload} | ${name} | encode`, () => {
        sink = codec.encode(value);
      });
      bench.add(`${payload} | ${name} | decode`, () => {
        sink = codec.decode(bytes);
      });
    }
  }
  let done = 0;
  bench.addEventListener('cycle', () => {
    done++;
    progress.update(`${done} of ${bench.tasks.length} done`, done / bench.tasks.length);
  });
  await bench.run();
  if (sink === null) throw new Error('no task ran');
  const rows: InProcessRow[] = [];
  for (const { payload, codecs } of payloads) {
    for (const { name } of codecs) {
      const c = checked.get(payload)?.get(name) as { bytes: Uint8Array; plain: boolean };
      rows.push({
        payload,
        codec: name,
        bytes: c.bytes.byteLength,
        plain: c.plain,
        encode: timingOf(bench, `${payload} | ${name} | encode`),
        decode: timingOf(bench, `${payload} | ${name} | decode`),
      });
    }
  }
  return rows;
}

// ---------------------------------------------------------------- end to end through a node

interface E2eRun {
  codec: string;
  pairs: number;
  wallS: number;
  clientCpuS: number;
  serverCpuS: number;
  /** Latency of one set+get (both awaited in turn), over the round's slices, ms. */
  p50Ms: number;
  p99Ms: number;
}

/** A codec of the order for the end-to-end runs, and the value it writes. */
interface E2eCodec {
  name: string;
  codec: Codec<unknown>;
  value: unknown;
}
const e2eCodecs: E2eCodec[] = [
  // The baseline: the order's JSON encoded once, sent and received as bytes. What the client costs without serialization.
  { name: 'raw (no serialization)', codec: raw() as Codec<unknown>, value: json<Order>().encode(order) },
  ...orderCodecs.map((c) => ({ name: c.name, codec: c.codec as Codec<unknown>, value: order as unknown })),
];

/** Client CPU-seconds of this process so far (every thread: the main one, V8's GC helpers, libuv's). */
function clientCpuS(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** `concurrency` loops of set then get of the order, until `seconds` have passed; set+get pairs completed (each one's ms pushed to `latencies`). */
async function loops(url: string, c: E2eCodec, seconds: number, latencies?: number[]): Promise<number> {
  const client = createClient({ url });
  const ns = client.namespace('bench', { codec: c.codec, ttl: 3600 });
  const until = performance.now() + seconds * 1000;
  let pairs = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, loop) => {
      for (let i = 0; performance.now() < until; i++) {
        const key = `order-${loop}-${i % 16}`;
        const t0 = performance.now();
        await ns.set(key, c.value);
        if ((await ns.get(key)) === undefined) throw new Error(`${c.name}: ${key} missing right after its set`);
        latencies?.push(performance.now() - t0);
        pairs++;
      }
    }),
  );
  return pairs;
}

/**
 * One round: every codec for `SECONDS` in all, in slices of `SLICE_SECONDS`
 * taken in turn (A B C D E, B C D E A, …, rotated by slice and round), each codec's
 * slices summed. A slow stretch of this shared host then falls on every
 * codec alike instead of on one codec's whole run: the client's CPU per
 * operation depends on the node's pace too (fewer answers per wake-up, more
 * CPU for each).
 */
async function e2eRound(node: Server, round: number): Promise<E2eRun[]> {
  const url = `http://127.0.0.1:${node.port}`;
  const pid = node.child.pid as number;
  const runs: E2eRun[] = e2eCodecs.map((c) => ({ codec: c.name, pairs: 0, wallS: 0, clientCpuS: 0, serverCpuS: 0, p50Ms: 0, p99Ms: 0 }));
  const latencies = e2eCodecs.map(() => [] as number[]);
  const slices = Math.max(1, Math.round(SECONDS / SLICE_SECONDS));
  for (let slice = 0; slice < slices; slice++) {
    for (let k = 0; k < e2eCodecs.length; k++) {
      // Each slice starts with another codec: none always follows the warm-up, a round's start or the same neighbour.
      const i = (k + round + slice) % e2eCodecs.length;
      const run = runs[i] as E2eRun;
      const server0 = cpuOf(pid).total;
      const client0 = clientCpuS();
      const t0 = performance.now();
      run.pairs += await loops(url, e2eCodecs[i] as E2eCodec, SECONDS / slices, latencies[i]);
      run.wallS += (performance.now() - t0) / 1000;
      run.clientCpuS += clientCpuS() - client0;
      run.serverCpuS += cpuOf(pid).total - server0;
    }
    progress.update(`slice ${slice + 1} of ${slices}`, (slice + 1) / slices);
  }
  runs.forEach((run, i) => {
    const sorted = (latencies[i] as number[]).sort((a, b) => a - b);
    const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
    run.p50Ms = at(0.5);
    run.p99Ms = at(0.99);
  });
  return runs;
}

/** Before any timing: a value written through the node with each codec comes back equal, with its content type; throws otherwise. */
async function checkThroughNode(node: Server): Promise<void> {
  const url = `http://127.0.0.1:${node.port}`;
  const client = createClient({ url });
  for (const c of e2eCodecs) {
    const ns = client.namespace('check', { codec: c.codec });
    await ns.set(c.name, c.value);
    const back = await ns.get(c.name);
    // Thrown, not exited: the caller's finally stops the node.
    assert.deepStrictEqual(plain(back), plain(c.value), `${c.name} does not round-trip the order through the node`);
    const res = await fetch(`${url}/v1/keys/${encodeURIComponent(`check:${c.name}`)}`);
    await res.arrayBuffer();
    assert.equal(res.headers.get('content-type'), c.codec.contentType, `${c.name}: read back with another content type than it was stored with`);
  }
}

/**
 * Where one profiled json run's client CPU goes: each sample's function, by
 * where its code lives; a builtin or native without a script of its own
 * (JSON.parse, writev, runMicrotasks …) is charged to the nearest caller that
 * has one, and everything under the codec's encode or decode to the codec.
 * Shares of the profile's non-idle samples.
 */
async function profileClient(node: Server): Promise<{ what: string; share: number }[]> {
  const c = e2eCodecs.find((x) => x.name === 'json') as E2eCodec;
  const url = `http://127.0.0.1:${node.port}`;
  await loops(url, c, WARMUP_SECONDS);
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: 100 });
  await session.post('Profiler.start');
  await loops(url, c, SECONDS);
  const { profile } = await session.post('Profiler.stop');
  session.disconnect();
  const samplesById = new Map<number, number>();
  for (const id of profile.samples ?? []) samplesById.set(id, (samplesById.get(id) ?? 0) + 1);
  type ProfileNode = (typeof profile.nodes)[number];
  const byId = new Map<number, ProfileNode>(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, ProfileNode>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parentOf.set(child, n);
  const buckets = new Map<string, number>();
  let total = 0;
  for (const [id, samples] of samplesById) {
    const self = byId.get(id) as ProfileNode;
    const fn = self.callFrame.functionName;
    if (fn === '(idle)') continue;
    total += samples;
    let what: string;
    if (fn === '(garbage collector)') what = 'garbage collection';
    else if (fn === '(program)') what = 'V8 outside any JS function ((program))';
    else {
      let frame: ProfileNode | undefined = self;
      while (frame !== undefined && frame.callFrame.url === '') frame = parentOf.get(frame.id);
      let codec = false;
      for (let up: ProfileNode | undefined = self; up !== undefined; up = parentOf.get(up.id)) codec ||= up.callFrame.url.endsWith('/src/client/codecs.js');
      what = codec ? 'the codec: encode + decode, with JSON and TextEncoder/Decoder' : bucketOf(frame?.callFrame.url ?? '');
    }
    buckets.set(what, (buckets.get(what) ?? 0) + samples);
  }
  return [...buckets].map(([what, n]) => ({ what, share: n / total })).sort((a, b) => b.share - a.share);
}

/** Where code at `url` belongs in the client's CPU profile. */
function bucketOf(url: string): string {
  if (url.includes('/dist/src/client/')) return "the client's own code (src/client/client.ts, errors.ts)";
  if (url.includes('internal/deps/undici') || url.startsWith('wasm://')) return 'fetch: undici inside Node, its llhttp parser (wasm)';
  if (url.includes('internal/webstreams') || url.includes('js_transferable')) return "web streams of fetch's bodies (node:internal/webstreams)";
  if (url.includes('abort_controller') || url.includes('event_target')) return 'AbortSignal.timeout and its listeners';
  if (url.includes('task_queues') || url.includes('internal/process/')) return 'promise jobs and nextTick (task_queues)';
  if (url.includes('internal/streams') || url.includes('stream_base_commons') || url === 'node:net') return 'socket reads and writes (net, streams)';
  if (url.includes('/native-bench/')) return 'the bench loop (native-bench/codecs.ts)';
  if (url.includes('internal/timers') || url === 'node:timers') return 'timers';
  if (url.startsWith('node:')) return 'other Node internals';
  return url === '' ? 'natives called from no script' : `other: ${url}`;
}

// ---------------------------------------------------------------- tables

/** A Markdown table, columns padded (right-aligned where `right` says so). */
function printTable(header: readonly string[], right: readonly boolean[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((h, i) => Math.max(h.length, 3, ...rows.map((r) => (r[i] ?? '').length)));
  const cell = (s: string, i: number) => (right[i] ? s.padStart(widths[i] as number) : s.padEnd(widths[i] as number));
  console.log(`| ${header.map(cell).join(' | ')} |`);
  console.log(`| ${widths.map((w, i) => (right[i] ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w))).join(' | ')} |`);
  for (const r of rows) console.log(`| ${r.map(cell).join(' | ')} |`);
}

const us = (x: number) => x.toFixed(x < 10 ? 2 : 1);
const ratio = (x: number) => `${x.toFixed(2)}×`;
const signed = (x: number) => `${x < 0 ? '−' : '+'}${us(Math.abs(x))}`;

function printInProcess(rows: InProcessRow[]): void {
  console.log('\n### In process (tinybench, 1 s per task): µs per call, mean / median; ratios of the mean to JSON\n');
  const table: string[][] = [];
  for (const r of rows) {
    const base = rows.find((b) => b.payload === r.payload && b.codec === 'json') as InProcessRow;
    table.push([
      r.payload,
      r.codec,
      fmt(r.bytes),
      ratio(r.bytes / base.bytes),
      `${us(r.encode.meanUs)} / ${us(r.encode.medianUs)}`,
      ratio(r.encode.meanUs / base.encode.meanUs),
      `${us(r.decode.meanUs)} / ${us(r.decode.medianUs)}`,
      ratio(r.decode.meanUs / base.decode.meanUs),
      r.plain ? 'yes' : 'no',
    ]);
  }
  printTable(
    ['payload', 'codec', 'bytes', '× JSON', 'encode µs', '× JSON', 'decode µs', '× JSON', 'plain objects'],
    [false, false, true, true, true, true, true, true, false],
    table,
  );
}

/** Each codec's end-to-end figures, medians over the rounds. */
function endToEndRows(runs: E2eRun[]) {
  return e2eCodecs.map((c) => {
    const mine = runs.filter((r) => r.codec === c.name);
    return {
      codec: c.name,
      bytes: c.codec.encode(c.value).byteLength,
      perS: median(mine.map((r) => r.pairs / r.wallS)),
      clientUs: median(mine.map((r) => (r.clientCpuS / r.pairs) * 1e6)),
      serverUs: median(mine.map((r) => (r.serverCpuS / r.pairs) * 1e6)),
      clientBusy: median(mine.map((r) => r.clientCpuS / r.wallS)),
      serverBusy: median(mine.map((r) => r.serverCpuS / r.wallS)),
      p50Ms: median(mine.map((r) => r.p50Ms)),
      p99Ms: median(mine.map((r) => r.p99Ms)),
    };
  });
}

function printEndToEnd(runs: E2eRun[]): void {
  console.log(
    `\n### End to end: set + get of the order through one node (${CONCURRENCY} loops in flight, ${SECONDS} s per codec per round in ${SLICE_SECONDS} s slices taken in turn, ${ROUNDS} rounds, medians; client CPU ${CLIENT_CPU}, node CPU ${SERVER_CPU})\n`,
  );
  const rows = endToEndRows(runs);
  const base = rows[0] as (typeof rows)[number];
  printTable(
    [
      'codec',
      'value bytes',
      'set+get /s',
      'per client CPU-s',
      'client µs / set+get',
      '− raw µs',
      'per server CPU-s',
      'server µs / set+get',
      'client CPU busy',
      'node CPU busy',
      'p50 ms',
      'p99 ms',
    ],
    [false, true, true, true, true, true, true, true, true, true, true, true],
    rows.map((r) => [
      r.codec,
      fmt(r.bytes),
      fmt(r.perS),
      fmt(1e6 / r.clientUs),
      us(r.clientUs),
      r === base ? '' : signed(r.clientUs - base.clientUs),
      fmt(1e6 / r.serverUs),
      us(r.serverUs),
      `${(r.clientBusy * 100).toFixed(0)}%`,
      `${(r.serverBusy * 100).toFixed(0)}%`,
      fmt(r.p50Ms, 2),
      fmt(r.p99Ms, 2),
    ]),
  );
  console.log('\nBy round, set+get pairs per client CPU-second:');
  for (const c of e2eCodecs)
    console.log(
      `- ${c.name}: ${runs
        .filter((r) => r.codec === c.name)
        .map((r) => fmt(r.pairs / r.clientCpuS))
        .join(', ')}`,
    );
}

// ---------------------------------------------------------------- the figure

function drawFigure(inProcessRows: InProcessRow[], runs: E2eRun[]): void {
  const payloads = [...new Set(inProcessRows.map((r) => r.payload))];
  const timing = (payload: string): BarGroup[] =>
    (['encode', 'decode'] as const).map((side) => ({
      label: side,
      bars: inProcessRows.filter((r) => r.payload === payload).map((r) => ({ label: r.codec, value: r[side].meanUs })),
    }));
  // raw last: the codecs keep the in-process panels' colours.
  const e2e = endToEndRows(runs);
  const ordered = [...e2e.slice(1), ...e2e.slice(0, 1)];
  report.figure(
    'codecs',
    "bench:codecs: the typed client's codecs in process and end to end through a node",
    [
      ...payloads.map((payload) =>
        barChart({ title: `In process: ${payload}`, yLabel: 'µs per call (tinybench mean)', width: 400, height: 320, groups: timing(payload) }),
      ),
      barChart({
        title: 'Encoded size',
        yLabel: 'bytes',
        width: 400,
        height: 320,
        groups: payloads.map((payload) => ({
          label: payload,
          bars: inProcessRows.filter((r) => r.payload === payload).map((r) => ({ label: r.codec, value: r.bytes })),
        })),
      }),
      barChart({
        title: 'End to end: set+get of the order per CPU-second',
        yLabel: 'set+get pairs per CPU-second',
        width: 600,
        height: 320,
        groups: [
          { label: 'per client CPU-second', bars: ordered.map((r) => ({ label: r.codec, value: 1e6 / r.clientUs })) },
          { label: 'per node CPU-second', bars: ordered.map((r) => ({ label: r.codec, value: 1e6 / r.serverUs })) },
        ],
      }),
      barChart({
        title: 'End to end: latency of a set+get',
        yLabel: 'latency of a set+get (ms)',
        width: 600,
        height: 320,
        groups: [
          { label: 'p50', bars: ordered.map((r) => ({ label: r.codec, value: r.p50Ms })) },
          { label: 'p99', bars: ordered.map((r) => ({ label: r.codec, value: r.p99Ms })) },
        ],
      }),
    ],
    {
      columns: 3,
      notes: [
        `end to end: one node (1 front, 1 shard, L1 only) on CPU ${SERVER_CPU}, this process on CPU ${CLIENT_CPU}; ${CONCURRENCY} loops of set then get, ${SECONDS} s per codec per round in ${SLICE_SECONDS} s slices taken in turn, medians over ${ROUNDS} round(s); raw: the order's JSON bytes without serialization`,
      ],
    },
  );
}

// ---------------------------------------------------------------- main

const machine = `${cpus()[0]?.model ?? '?'} x${availableParallelism()}, node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
if (availableParallelism() > 1) {
  // Every thread of this process (main, V8's, libuv's) on the client CPU; threads started later inherit it.
  execFileSync('taskset', ['-a', '-pc', CLIENT_CPU, String(process.pid)], { stdio: 'ignore' });
}
console.log(`machine: ${machine}; msgpackr native acceleration: ${isNativeAccelerationEnabled ? 'on' : 'off'}; bench on CPU ${CLIENT_CPU}`);
console.log(`payload bytes as JSON: order ${json<Order>().encode(order).byteLength}, 100 products ${json<Product[]>().encode(products).byteLength}`);

progress.start(STEPS.inProcess);
const inProcessRows = await inProcess();
printInProcess(inProcessRows);

progress.start(STEPS.start);
const node = await startProcess(['--max-semi-space-size=2', CLI, '--port', '$PORT', '--fronts', '1', '--shards', '1'], {}, SERVER_CPU);
try {
  await checkThroughNode(node);
  // Untimed: the fetch path and every codec optimised before the first measured slice.
  for (const c of e2eCodecs) await loops(`http://127.0.0.1:${node.port}`, c, WARMUP_SECONDS);
  const runs: E2eRun[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    progress.start(STEPS.round(round));
    runs.push(...(await e2eRound(node, round)));
  }
  printEndToEnd(runs);
  progress.start(STEPS.profile);
  const profile = await profileClient(node);
  progress.end();
  console.log(`\n### Where the client's CPU goes: self time of one profiled json run (${SECONDS} s, 100 µs sampling), share of non-idle samples\n`);
  printTable(
    ['where', 'share'],
    [false, true],
    profile.filter((p) => p.share >= 0.005).map((p) => [p.what, `${(p.share * 100).toFixed(1)}%`]),
  );
  const options = { seconds: SECONDS, rounds: ROUNDS, concurrency: CONCURRENCY, sliceSeconds: SLICE_SECONDS, warmupSeconds: WARMUP_SECONDS };
  const payloadBytes = { order: json<Order>().encode(order).byteLength, products: json<Product[]>().encode(products).byteLength };
  report.json({
    options,
    msgpackrNativeAcceleration: isNativeAccelerationEnabled,
    payloadBytes,
    inProcess: inProcessRows,
    endToEnd: { medians: endToEndRows(runs), runs },
    clientProfile: profile,
  });
  drawFigure(inProcessRows, runs);
  console.log(report.summary());
} finally {
  progress.end();
  await stop(node);
}

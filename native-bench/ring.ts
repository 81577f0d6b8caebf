/**
 * The ring (src/cluster/ring.ts, rendezvous hashing) against a ketama ring
 * of virtual nodes written here for the comparison only, over 1,000,000 keys
 * of two shapes (`user:0` … and `k0` …), for 3, 5, 10 and 50 members:
 *
 * - balance: keys of the fullest and of the emptiest member over the mean;
 * - movement: the share of keys whose owner changes when a member joins
 *   (N → N + 1) and when the middle one leaves (N → N − 1), against the
 *   ideal 1 / (N + 1) and 1 / N; and the keys that moved between two
 *   members on both rings, which must be none (the bench exits 1
 *   otherwise);
 * - lookup cost: ns per owner(key) over the user:N keys: every ring's
 *   pass timed once per round (after one untimed pass each), the median of
 *   the rounds; a pass that only hashes the keys (hashKey, which both rings
 *   run first) is the baseline;
 * - determinism: two child processes (one of them `--jitless`) import
 *   dist/src/cluster/ring.js, compute the owners of 100,000 keys on each
 *   ring size, and their digest must be the parent's (the bench exits 1
 *   otherwise).
 *
 * Writes native-bench/results/ring.json and the figure figures/ring.svg.
 *
 *   npm run bench:ring [-- --keys 1000000 --sizes 3,5,10,50 --passes 7]
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { availableParallelism, cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { keyPoint, mix32, Ring, type RingMember } from '../src/cluster/ring.js';
import { hashKey } from '../src/hash.js';
import { fmt, median } from './harness.js';
import { barChart, percent } from './plot.js';
import { Progress, Report } from './report.js';

const { values: args } = parseArgs({
  options: {
    keys: { type: 'string', default: '1000000' },
    sizes: { type: 'string', default: '3,5,10,50' },
    /** Rounds of timed passes for the lookup cost (the median is printed). */
    passes: { type: 'string', default: '7' },
  },
});
const KEYS = Number(args.keys);
const SIZES = args.sizes.split(',').map(Number);
const PASSES = Number(args.passes);
/** Keys each determinism check hashes, in each process. */
const DIGEST_KEYS = 100_000;
/** Virtual nodes per weight unit of a ketama member, as ketama and libmemcached place them. */
const VNODES = 160;

/** What the two rings answer: the owner of a key, and of a key hash. */
interface KeyOwner {
  owner(key: string): string;
  ownerOfHash(keyHash: number): string;
}

/**
 * Ketama: every member's weight units get VNODES points on a 32-bit circle;
 * a key belongs to the first point at or after its own, wrapping around.
 * The key's point is the one Ring scores (ring.ts's keyPoint), so that the
 * two rings differ only in how they pick the owner.
 */
class KetamaRing implements KeyOwner {
  readonly #points: Uint32Array;
  /** For each point, its member's id. */
  readonly #ids: string[];

  constructor(members: readonly RingMember[]) {
    const all: { point: number; id: string }[] = [];
    for (const m of members) {
      for (let i = 0; i < VNODES * m.weight; i++) all.push({ point: mix32(hashKey(`${m.id}-${i}`)), id: m.id });
    }
    // Equal points (rare) go to the member first by id, so that the order of `members` does not matter.
    all.sort((a, b) => a.point - b.point || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    this.#points = Uint32Array.from(all, (p) => p.point);
    this.#ids = all.map((p) => p.id);
  }

  owner(key: string): string {
    return this.ownerOfHash(hashKey(key));
  }

  ownerOfHash(keyHash: number): string {
    const point = keyPoint(keyHash);
    const points = this.#points;
    let lo = 0;
    let hi = points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((points[mid] as number) < point) lo = mid + 1;
      else hi = mid;
    }
    return this.#ids[lo === points.length ? 0 : lo] as string;
  }
}

/** Each ring, how it is built, and a timed pass over keys with its own loop (sums the owners' lengths). */
const SCHEMES = [
  {
    name: 'rendezvous (Ring)',
    build: (members: readonly RingMember[]): KeyOwner => new Ring(members),
    pass: (ring: KeyOwner, keys: readonly string[]): number => {
      const r = ring as Ring;
      let sum = 0;
      for (let i = 0; i < keys.length; i++) sum += r.owner(keys[i] as string).length;
      return sum;
    },
  },
  {
    name: `ketama (${VNODES} vnodes)`,
    build: (members: readonly RingMember[]): KeyOwner => new KetamaRing(members),
    pass: (ring: KeyOwner, keys: readonly string[]): number => {
      const r = ring as KetamaRing;
      let sum = 0;
      for (let i = 0; i < keys.length; i++) sum += r.owner(keys[i] as string).length;
      return sum;
    },
  },
] as const;

/** The baseline pass: hashKey alone, which both rings run first. */
function hashPass(keys: readonly string[]): number {
  let sum = 0;
  for (let i = 0; i < keys.length; i++) sum = (sum + hashKey(keys[i] as string)) | 0;
  return sum;
}

const KEY_SETS = [
  { name: 'user:N', keys: () => Array.from({ length: KEYS }, (_, i) => `user:${i}`) },
  { name: 'kN', keys: () => Array.from({ length: KEYS }, (_, i) => `k${i}`) },
] as const;

/** n members of weight 1: node-01, node-02, … (zero-padded so that id order is number order). */
function membersOf(n: number): RingMember[] {
  return Array.from({ length: n }, (_, i) => ({ id: `node-${String(i + 1).padStart(2, '0')}`, weight: 1 }));
}

/** The owner of every key, as an index into `members` (owners are ids; the index makes them cheap to compare and count). */
function ownersOf(ring: KeyOwner, keys: readonly string[], members: readonly RingMember[]): Uint16Array {
  const index = new Map(members.map((m, i) => [m.id, i]));
  const out = new Uint16Array(keys.length);
  for (let i = 0; i < keys.length; i++) out[i] = index.get(ring.owner(keys[i] as string)) as number;
  return out;
}

interface Balance {
  maxOverMean: number;
  minOverMean: number;
}

function balanceOf(owners: Uint16Array, members: number): Balance {
  const counts = new Array<number>(members).fill(0);
  for (const o of owners) counts[o] = (counts[o] as number) + 1;
  const mean = owners.length / members;
  return { maxOverMean: Math.max(...counts) / mean, minOverMean: Math.min(...counts) / mean };
}

interface Movement {
  /** Share of all keys whose owner changed. */
  moved: number;
  /** Keys that moved from one member to another that is on both rings. */
  betweenSurvivors: number;
}

/**
 * Keys whose owner changed between two rings. `before` and `after` index
 * their own member lists; ids are compared, so a member that is on both
 * rings is the same member whatever its index.
 */
function movementOf(before: Uint16Array, beforeMembers: readonly RingMember[], after: Uint16Array, afterMembers: readonly RingMember[]): Movement {
  const beforeIds = beforeMembers.map((m) => m.id);
  const afterIds = afterMembers.map((m) => m.id);
  const onBoth = new Set(beforeIds.filter((id) => afterIds.includes(id)));
  let moved = 0;
  let betweenSurvivors = 0;
  for (let i = 0; i < before.length; i++) {
    const was = beforeIds[before[i] as number] as string;
    const is = afterIds[after[i] as number] as string;
    if (was === is) continue;
    moved++;
    if (onBoth.has(was) && onBoth.has(is)) betweenSurvivors++;
  }
  return { moved: moved / before.length, betweenSurvivors };
}

/** One key set on one ring of n members. */
interface Row {
  keySet: string;
  scheme: string;
  n: number;
  balance: Balance;
  join: Movement;
  leave: Movement;
}

/** A timed loop: a pass over the keys, returning something of every answer so that the calls cannot be optimised away. */
interface Timed {
  label: string;
  pass: () => number;
  ns: number[];
}

/**
 * ns per key of each loop: one untimed pass each, then PASSES rounds in
 * which every loop runs once, so that a burst of other load on the host
 * falls on all of them alike; the median of each loop's rounds.
 */
function timeInRounds(loops: Timed[], keys: number): Map<string, number> {
  let sink = 0;
  for (const loop of loops) sink += loop.pass();
  for (let round = 0; round < PASSES; round++) {
    for (const loop of loops) {
      const t0 = process.hrtime.bigint();
      sink += loop.pass();
      loop.ns.push(Number(process.hrtime.bigint() - t0) / keys);
    }
  }
  if (sink === -1) console.log(sink);
  return new Map(loops.map((l) => [l.label, median(l.ns)]));
}

/** What each process digests: the owners of user:0 … user:99999 on each ring size, one line per key. */
const DIGEST_SCRIPT = `
import { createHash } from 'node:crypto';
import { Ring } from ${JSON.stringify(new URL('../src/cluster/ring.js', import.meta.url).href)};
const [keys, sizes, reversed] = JSON.parse(process.argv[1]);
const out = {};
for (const n of sizes) {
  const members = Array.from({ length: n }, (_, i) => ({ id: 'node-' + String(i + 1).padStart(2, '0'), weight: 1 }));
  if (reversed) members.reverse();
  const ring = new Ring(members);
  const hash = createHash('sha256');
  for (let i = 0; i < keys; i++) hash.update(ring.owner('user:' + i) + '\\n');
  out[n] = hash.digest('hex');
}
console.log(JSON.stringify(out));
`;

/** Each ring size's digest in this process, the same computation as DIGEST_SCRIPT. */
function digestsHere(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of SIZES) {
    const ring = new Ring(membersOf(n));
    const hash = createHash('sha256');
    for (let i = 0; i < DIGEST_KEYS; i++) hash.update(`${ring.owner(`user:${i}`)}\n`);
    out[n] = hash.digest('hex');
  }
  return out;
}

function digestsInChild(nodeFlags: string[], reversed: boolean): Record<string, string> {
  // stderr piped: --jitless warns that it turns wasm off; it shows in the error if the child fails.
  const out = execFileSync(process.execPath, [...nodeFlags, '--input-type=module', '-e', DIGEST_SCRIPT, JSON.stringify([DIGEST_KEYS, SIZES, reversed])], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(out) as Record<string, string>;
}

const ownersStep = (keySet: string, scheme: string) => `balance and movement: ${keySet} keys, ${scheme}`;
const lookupStep = () => `lookup cost: ${PASSES} timed rounds`;
const digestStep = () => 'determinism: two child processes';

function drawFigure(report: Report, rows: Row[], costs: Map<string, number>): void {
  const userRows = rows.filter((r) => r.keySet === KEY_SETS[0].name);
  const of = (scheme: string, n: number) => userRows.find((r) => r.scheme === scheme && r.n === n) as Row;
  const [rendezvous, ketama] = SCHEMES.map((x) => x.name) as [string, string];
  const bars = (n: number, value: (r: Row) => number) => [
    { label: rendezvous, value: value(of(rendezvous, n)) },
    { label: ketama, value: value(of(ketama, n)) },
  ];
  report.figure(
    'ring',
    'bench:ring: the ring (rendezvous) against ketama: keys moved on join and leave, balance, lookup cost',
    [
      barChart({
        title: 'Keys that move when a member joins',
        yLabel: 'share of keys moved (%)',
        width: 460,
        height: 320,
        format: percent,
        groups: SIZES.map((n) => ({ label: `${n} → ${n + 1}`, bars: [...bars(n, (r) => r.join.moved), { label: 'ideal: 1 / (N + 1)', value: 1 / (n + 1) }] })),
      }),
      barChart({
        title: 'Keys that move when the middle member leaves',
        yLabel: 'share of keys moved (%)',
        width: 460,
        height: 320,
        format: percent,
        groups: SIZES.map((n) => ({ label: `${n} → ${n - 1}`, bars: [...bars(n, (r) => r.leave.moved), { label: 'ideal: 1 / N', value: 1 / n }] })),
      }),
      barChart({
        title: 'Balance: the fullest member over the mean',
        yLabel: 'keys above the mean (%)',
        width: 460,
        height: 320,
        format: percent,
        groups: SIZES.map((n) => ({
          label: `${n} members`,
          bars: [...bars(n, (r) => r.balance.maxOverMean - 1), { label: 'σ of a random assignment', value: Math.sqrt((n - 1) / KEYS) }],
        })),
      }),
      barChart({
        title: 'Lookup cost',
        yLabel: 'ns per owner(key)',
        width: 460,
        height: 320,
        groups: SIZES.map((n) => ({
          label: `${n} members`,
          bars: [
            { label: rendezvous, value: costs.get(`${rendezvous} ${n}`) ?? Number.NaN },
            { label: ketama, value: costs.get(`${ketama} ${n}`) ?? Number.NaN },
            { label: 'hashKey alone', value: costs.get('hash') ?? Number.NaN },
          ],
        })),
      }),
    ],
    {
      columns: 2,
      notes: [
        `${fmt(KEYS)} keys user:0 … (movement and balance; kN keys in the JSON), members node-01 …, weight 1; ketama ${VNODES} points per member; lookup: median of ${PASSES} timed passes over the keys, in one process`,
      ],
    },
  );
}

function main(): void {
  const report = new Report('ring');
  // Owners of every key on each ring, then on it with a member more and one less; lookups: a pass per ring and size per round.
  const ownersSeconds = (KEYS / 1e6) * SIZES.length * 3 * 0.4;
  const progress = new Progress([
    ...KEY_SETS.flatMap((k) => SCHEMES.map((scheme) => ({ name: ownersStep(k.name, scheme.name), seconds: ownersSeconds }))),
    { name: lookupStep(), seconds: (KEYS / 1e6) * (PASSES + 1) * (1 + SCHEMES.length * SIZES.length) * 0.1 },
    { name: digestStep(), seconds: 3 },
  ]);
  console.log(`machine: ${cpus()[0]?.model ?? '?'} x${availableParallelism()}, node ${process.version}`);
  console.log(`${fmt(KEYS)} keys per key set, members ${SIZES.join(', ')}, ${PASSES} timed rounds per lookup figure`);
  let failures = 0;
  const rows: Row[] = [];
  const loops: Timed[] = [];
  for (const keySet of KEY_SETS) {
    const keys = keySet.keys();
    if (keySet === KEY_SETS[0]) loops.push({ label: 'hash', pass: () => hashPass(keys), ns: [] });
    for (const scheme of SCHEMES) {
      progress.start(ownersStep(keySet.name, scheme.name));
      for (const n of SIZES) {
        const members = membersOf(n);
        const joined = membersOf(n + 1);
        // The middle member leaves (not the last one, whose id sorts last).
        const left = members.filter((_, i) => i !== Math.floor(n / 2));
        const ring = scheme.build(members);
        const owners = ownersOf(ring, keys, members);
        const join = movementOf(owners, members, ownersOf(scheme.build(joined), keys, joined), joined);
        const leave = movementOf(owners, members, ownersOf(scheme.build(left), keys, left), left);
        if (join.betweenSurvivors !== 0 || leave.betweenSurvivors !== 0) failures++;
        rows.push({ keySet: keySet.name, scheme: scheme.name, n, balance: balanceOf(owners, n), join, leave });
        if (keySet === KEY_SETS[0]) loops.push({ label: `${scheme.name} ${n}`, pass: () => scheme.pass(ring, keys), ns: [] });
      }
    }
  }

  const ratio = (x: number) => x.toFixed(3);
  const share = (x: number) => `${(x * 100).toFixed(2)}%`;
  console.log('\n### Balance: keys per member over the mean (1.000 is perfect)\n');
  // A member's count under a perfectly random assignment is binomial(K, 1/N): its σ over the mean is √((N − 1) / K).
  console.log('| keys | ring | members | max / mean | min / mean | σ / mean of a random assignment |');
  console.log('|---|---|---:|---:|---:|---:|');
  for (const r of rows) {
    const sigma = Math.sqrt((r.n - 1) / KEYS);
    console.log(`| ${r.keySet} | ${r.scheme} | ${r.n} | ${ratio(r.balance.maxOverMean)} | ${ratio(r.balance.minOverMean)} | ${share(sigma)} |`);
  }

  console.log('\n### Movement: share of keys whose owner changes when a member joins (N → N + 1) or the middle one leaves (N → N − 1)\n');
  console.log('Every key that moves goes to the joiner or comes from the leaver when none moves between survivors; ideal: 1 / (N + 1) and 1 / N.\n');
  console.log('| keys | ring | members | join: moved | join: ideal | leave: moved | leave: ideal | moved between survivors (join, leave) |');
  console.log('|---|---|---:|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    console.log(
      `| ${r.keySet} | ${r.scheme} | ${r.n} | ${share(r.join.moved)} | ${share(1 / (r.n + 1))} | ${share(r.leave.moved)} | ${share(1 / r.n)} | ${r.join.betweenSurvivors}, ${r.leave.betweenSurvivors} |`,
    );
  }

  progress.start(lookupStep());
  const costs = timeInRounds(loops, KEYS);
  console.log(`\n### Lookup cost: ns per owner(key), keys user:N, median of ${PASSES} rounds of one pass over ${fmt(KEYS)} keys per ring\n`);
  console.log(`hashKey alone (both rings hash the key first): ${(costs.get('hash') ?? 0).toFixed(1)} ns\n`);
  console.log(`| members | ${SCHEMES.map((s) => s.name).join(' | ')} | rendezvous / ketama |`);
  console.log(`|---:|${SCHEMES.map(() => '---:|').join('')}---:|`);
  for (const n of SIZES) {
    const ns = SCHEMES.map((s) => costs.get(`${s.name} ${n}`) ?? Number.NaN);
    console.log(`| ${n} | ${ns.map((x) => x.toFixed(1)).join(' | ')} | ${((ns[0] as number) / (ns[1] as number)).toFixed(2)} |`);
  }

  console.log(`\n### Determinism: owners of ${fmt(DIGEST_KEYS)} keys (user:N) on each ring size, sha256 over the owner ids\n`);
  progress.start(digestStep());
  const here = digestsHere();
  const children = [
    { what: 'child process', digests: digestsInChild([], false) },
    { what: 'child process, --jitless, members listed in reverse', digests: digestsInChild(['--jitless'], true) },
  ];
  progress.end();
  console.log(`| members | this process (first 16 hex) | ${children.map((c) => c.what).join(' | ')} |`);
  console.log(`|---:|---|${children.map(() => '---|').join('')}`);
  for (const n of SIZES) {
    const same = children.map((c) => (c.digests[n] === here[n] ? 'same' : `DIFFERENT (${c.digests[n]?.slice(0, 16)})`));
    failures += same.filter((x) => x !== 'same').length;
    console.log(`| ${n} | ${here[n]?.slice(0, 16)} | ${same.join(' | ')} |`);
  }
  const allSame = children.every((c) => SIZES.every((n) => c.digests[n] === here[n]));
  console.log(`\ndeterminism across processes: ${allSame ? 'identical' : 'DIFFERENT'}`);

  const options = { keys: KEYS, sizes: SIZES, passes: PASSES, digestKeys: DIGEST_KEYS, vnodes: VNODES };
  const lookupNs = Object.fromEntries(costs);
  report.json({ options, rows, lookupNs, determinism: { here, children, identical: allSame }, failures });
  drawFigure(report, rows, costs);
  console.log(report.summary());

  if (failures > 0) {
    console.error(`\nFAILED: ${failures} check(s) (keys moved between surviving members, or digests that differ)`);
    process.exit(1);
  }
}

main();

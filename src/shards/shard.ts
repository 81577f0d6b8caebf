import { getHeapStatistics } from 'node:v8';
import { FillWaiters } from '../coordination/fill-waiters.js';
import { newToken, tokenEpoch } from '../coordination/lease-token.js';
import { LocalLocks } from '../coordination/local-locks.js';
import { COORDINATION_DEFAULTS, type CoordinationSettings } from '../coordination/settings.js';
import { SingleFlight } from '../coordination/single-flight.js';
import { type LeaseOutcome, type LockEvent, type LockStore, leaseOrWait, loadUnderLock, type StampedeDeps } from '../coordination/stampede.js';
import { earlyWindowMs, refreshEarly } from '../coordination/xfetch.js';
import type { Counters } from '../counters/counters.js';
import { L2_ERROR_KINDS, ORIGIN_SLOT, SHARD_SLOT } from '../counters/layout.js';
import type { L2UnavailableError } from '../errors.js';
import { hashKey } from '../hash.js';
import { type HotIndexWriter, TOUCH_EVERY } from '../l1/hot-index.js';
import { entryBytes, type L1Entry, L1Partition, ownedEntry } from '../l1/partition.js';
import { BUS_KIND, type BusKind, type BusPublisher } from '../l2/bus-format.js';
import type { L2Entry } from '../l2/envelope.js';
import type { Announce, L2Hit, L2Store } from '../l2/store.js';
import type { OriginAnswer, WriteAnswer } from '../origin/client.js';
import { type OriginRule, ruleFor } from '../origin/rules.js';
import type { OriginSlots } from '../origin/slots.js';
import { Answers, type Found } from './answers.js';
import { etagOf } from './etag.js';
import { type Batch, type GetArgs, LEVELS, type Level, OP, type PutArgs, STATUS } from './protocol.js';

/** The L2 side of a shard: its own Redis client and its own numbered bus stream. */
export interface ShardL2 {
  readonly store: L2Store;
  readonly bus: BusPublisher;
  /** Longest an L2 value is kept in L1, ms: bounds how long a lost bus message can leave L1 stale. */
  readonly l1MaxTtlMs: number;
  /** Which values from the L2 the L1 takes in (see L1PartitionOptions.admission). */
  readonly admission: 'lru' | 'tinylfu';
}

/** What the shard asks of the origins (OriginClient; a test may give its own). */
export interface OriginRequests {
  load(rule: OriginRule, key: string, validators: L2Entry['validators'], timeoutMs: number): Promise<OriginAnswer>;
  write(rule: OriginRule, key: string, body: Uint8Array, contentType: string, timeoutMs: number): Promise<WriteAnswer>;
}

/** The origin rules and the means to reach them. */
export interface ShardOrigins {
  readonly rules: readonly OriginRule[];
  readonly client: OriginRequests;
  /** Requests in flight per rule, shared by the node's shards (maxConcurrent). */
  readonly slots: OriginSlots;
}

export interface ShardOptions {
  readonly index: number;
  readonly counters: Counters;
  readonly l1MaxBytes: number;
  /** Where hits are published for the front to serve without a hop; null to serve every read here. */
  readonly hot?: HotIndexWriter | null;
  /** The L2 and the bus, or null for an L1-only node. */
  readonly l2?: ShardL2 | null;
  readonly origins?: ShardOrigins | null;
  readonly coordination?: Partial<CoordinationSettings>;
}

/** Posts an answer (a whole batch or part of one) back to the client that sent the batch. */
export type SendAnswer = (answer: ArrayBuffer) => void;

/**
 * How long a failed load's note stays in its lock's place: the readers of
 * that moment, on every node, get the error without asking the origin again
 * (one request per key per this long while an origin fails).
 */
export const FAILURE_NOTE_MS = 1000;
/** Retry-After (s) for a lease waiter whose wait ended, and for E_ORIGIN_BUSY. */
const RETRY_AFTER_S = 1;
/** Hot keys each shard publishes for /v1/stats and the dashboard. */
const HOT_KEYS_SHOWN = 10;

const HOT_HEAD_PREFIX = asciiBytes('content-type: ');
const HOT_HEAD_SUFFIX = asciiBytes('\r\nage');
const LEVEL_SUFFIX: { readonly [L in Level]: Uint8Array } = {
  L1: asciiBytes('\r\nx-cache: L1'),
  L2: asciiBytes('\r\nx-cache: L2'),
  ORIGIN: asciiBytes('\r\nx-cache: ORIGIN'),
  STALE: asciiBytes('\r\nx-cache: STALE'),
};

function asciiBytes(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** Length of baseHeadOf(contentType, etag) without building it (`\r\netag: ` is 8 bytes). */
function baseHeadLength(contentType: string, etag: string): number {
  return contentType.length + 8 + etag.length;
}

/** An entry's base head block: the content-type value and the etag line (the x-cache line is added per answer). */
function baseHeadOf(contentType: string, etag: string): Uint8Array {
  return asciiBytes(`${contentType}\r\netag: ${etag}`);
}

const LATIN1 = new TextDecoder('latin1');

/** An L2 entry as an answer carries it. */
function foundOf(entry: L2Entry): Found {
  return { head: baseHeadOf(entry.contentType, entry.etag), value: entry.value, createdMs: entry.createdMs };
}

/**
 * The block the hot path writes: used as the *name* of one uWS writeHeader
 * call whose value is the age, so `content-type: …`, `etag`, `x-cache` and
 * `age: N` go out in a single call (see hot-index.ts).
 */
function hotHeadOf(base: Uint8Array): Uint8Array {
  const suffix = LEVEL_SUFFIX.L1;
  const out = new Uint8Array(HOT_HEAD_PREFIX.length + base.length + suffix.length + HOT_HEAD_SUFFIX.length);
  out.set(HOT_HEAD_PREFIX, 0);
  out.set(base, HOT_HEAD_PREFIX.length);
  out.set(suffix, HOT_HEAD_PREFIX.length + base.length);
  out.set(HOT_HEAD_SUFFIX, HOT_HEAD_PREFIX.length + base.length + suffix.length);
  return out;
}

/** The L1 clock (performance.timeOrigin + performance.now()), which the front's hot-index reads use too. */
function monoNow(): number {
  return performance.timeOrigin + performance.now();
}

/** An L2 read in flight for one key; `stale` once a write or drop for the key overtook it. */
interface Load {
  readonly promise: Promise<L2Hit | null>;
  stale: boolean;
  /** The hit's L1 entry once L1 took it in: an answer as it is, so its readers do not build the head again. */
  found: Found | null;
}

/** A read this batch starts, with the means to settle it when the batch's multi-key read returns. */
interface PendingLoad {
  readonly key: string;
  readonly load: Load;
  readonly settle: (hit: L2Hit | null) => void;
  readonly fail: (err: unknown) => void;
}

/** How one op is answered once its work is done: writes its answer into a part of the batch's answers. */
type Reply = (answers: Answers, i: number) => void;

/** What an origin load (or the wait for another holder's) ended with. */
type LoadResult =
  | { readonly kind: 'entry'; readonly entry: L2Entry; readonly level: Level }
  /** Loaded but not to be cached (Cache-Control: no-store, private). */
  | { readonly kind: 'uncached'; readonly entry: L2Entry }
  | { readonly kind: 'error'; readonly status: number; readonly message: string }
  | { readonly kind: 'timeout'; readonly message: string }
  | { readonly kind: 'busy' };

/** The ops of one batch still to be answered, and the part of their answers ready to send. */
class Later {
  /** How many of the batch's ops wait for work (their first answer is PENDING). */
  deferred = 0;
  /** Ops answered since the last part, and their replies. */
  readyOps: number[] = [];
  readyReplies: Reply[] = [];
  scheduled = false;
  constructor(
    readonly batch: Batch,
    readonly now: Answers,
    readonly send: SendAnswer,
  ) {}
}

/** The per-batch tallies the counters get once the batch's first pass is over. */
interface Tally {
  gets: number;
  hits: number;
  sets: number;
  deletes: number;
  removed: number;
  puts: number;
}

/**
 * A shard's state and batch processing; lives in the worker that owns the
 * shard. run() answers what it can at once (L1 hits, L1-only writes) and
 * every other op as its work ends: the batch's L2 misses together when their
 * MGET returns, an origin load's readers when it lands. The mechanisms
 * (single-flight, the cross-node lock, leases, XFetch) are in
 * src/coordination, HTTP to the origins in src/origin: this class wires them
 * to the L1 and the L2.
 */
export class Shard {
  readonly index: number;
  readonly counters: Counters;
  readonly l1: L1Partition;
  readonly hot: HotIndexWriter | null;
  readonly l2: ShardL2 | null;
  readonly origins: ShardOrigins | null;
  readonly #settings: CoordinationSettings;
  /** L2 reads in flight, by key: concurrent misses for one key share one read. */
  readonly #loads = new Map<string, Load>();
  /**
   * This shard's L2 writes in flight, by key. Another node's invalidation
   * that arrives while one is in flight may be for a write that Redis
   * applied after ours: then ours must not land in L1.
   */
  readonly #writes = new Map<string, { count: number; overtaken: boolean }>();
  /** Origin loads for readers in flight, by key (in-node single-flight): readers of the key wait for the one load. */
  readonly #originLoads = new SingleFlight<LoadResult>();
  /** Background refreshes in flight, by key: nobody waits for them, and one per key is enough. */
  readonly #refreshes = new SingleFlight<void>();
  /** Lease requests in flight, by key: one per key on this shard asks for the lease. */
  readonly #leaseAsks = new SingleFlight<LeaseOutcome>();
  readonly #waiters = new FillWaiters();
  /** Locks and fills: the L2's, or this shard's own without one. */
  readonly #locks: LockStore;
  readonly #local: LocalLocks | null;
  readonly #stampede: StampedeDeps;

  constructor(options: ShardOptions) {
    const { index, counters } = options;
    this.index = index;
    this.counters = counters;
    this.hot = options.hot ?? null;
    this.l2 = options.l2 ?? null;
    this.origins = options.origins ?? null;
    this.#settings = { ...COORDINATION_DEFAULTS, ...options.coordination };
    counters.incShard(index, SHARD_SLOT.WORKER_STARTS);
    const hot = this.hot;
    this.l1 = new L1Partition({
      maxBytes: options.l1MaxBytes,
      // Without an L2 the L1 holds the only copy: everything written must be kept.
      admission: this.l2?.admission ?? 'lru',
      events: {
        evicted: (n) => counters.addShard(index, SHARD_SLOT.L1_EVICTIONS, n),
        expired: (n) => counters.addShard(index, SHARD_SLOT.L1_EXPIRATIONS, n),
        rejected: () => counters.incShard(index, SHARD_SLOT.L1_ADMISSION_REJECTS),
        ...(hot === null ? {} : { removed: (key: string) => hot.unpublish(key) }),
      },
    });
    this.#local =
      this.l2 === null
        ? new LocalLocks({
            read: (key) => {
              const entry = this.l1.get(key);
              return entry === undefined ? null : { entry: this.#l2EntryOf(entry), ttlMs: entry.staleUntilMs - monoNow() };
            },
            store: (key, entry, ttlMs) => {
              if (this.l1.set(key, this.#l1EntryOf(entry), ttlMs)) counters.incShard(index, SHARD_SLOT.L1_SETS);
            },
          })
        : null;
    this.#locks = this.l2?.store ?? (this.#local as LocalLocks);
    this.#stampede = {
      store: this.#locks,
      waiters: this.#waiters,
      pollMs: this.#settings.pollMs,
      maxPollMs: this.#settings.maxPollMs,
      count: (event: LockEvent) => counters.incShard(index, LOCK_SLOTS[event]),
    };
    this.publishGauges();
  }

  /** Applies the front's hot-index hits to LRU recency (and lazy expiry). */
  refreshTouched(): void {
    this.hot?.drainTouches(this.#touch);
  }

  readonly #touch = (key: string): void => {
    this.l1.get(key, TOUCH_EVERY);
  };

  publishGauges(): void {
    const counters = this.counters;
    counters.setShard(this.index, SHARD_SLOT.L1_ITEMS, this.l1.items);
    counters.setShard(this.index, SHARD_SLOT.L1_BYTES, this.l1.bytes);
    counters.setShard(this.index, SHARD_SLOT.HOT_ARENA_TOUCHED_BYTES, this.hot?.touchedBytes ?? 0);
    const l2 = this.l2;
    if (l2 !== null) {
      counters.setShard(this.index, SHARD_SLOT.L2_READY, l2.store.ready ? 1 : 0);
      counters.setShard(this.index, SHARD_SLOT.L2_BREAKER, l2.store.breakerCode);
    }
  }

  #lastLoop = performance.eventLoopUtilization();

  /** Publishes this worker's event-loop utilization since the last call (once a second). */
  publishLoopUtilization(): void {
    const now = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(now, this.#lastLoop);
    this.#lastLoop = now;
    this.counters.setShard(this.index, SHARD_SLOT.LOOP_UTILIZATION_PPM, Math.round(utilization * 1e6));
  }

  /** Publishes the partition's most read keys for /v1/stats (once a second, not per batch). */
  publishHotKeys(): void {
    this.counters.publishHotKeys(this.index, this.l1.hotKeys.top(HOT_KEYS_SHOWN));
  }

  /** Publishes this worker's memory: V8 heap and off-heap bytes (a few µs: once a second, not per batch). */
  publishMemory(): void {
    const counters = this.counters;
    // This isolate's heap only (process.memoryUsage() would also read the process's RSS from /proc).
    const heap = getHeapStatistics();
    counters.setShard(this.index, SHARD_SLOT.HEAP_USED_BYTES, heap.used_heap_size);
    counters.setShard(this.index, SHARD_SLOT.HEAP_TOTAL_BYTES, heap.total_heap_size);
    counters.setShard(this.index, SHARD_SLOT.EXTERNAL_BYTES, heap.external_memory);
    counters.setShard(this.index, SHARD_SLOT.SKETCH_BYTES, this.l1.sketchBytes);
  }

  /** Runs one batch from a client: answers at once what it can, and the rest as its work ends (see the class comment), all through `send`. */
  run(batch: Batch, send: SendAnswer): void {
    const start = performance.now();
    this.refreshTouched();
    const { ops, keys, args } = batch;
    const n = ops.length;
    const now = new Answers(batch.id, ops, false);
    const later = new Later(batch, now, send);
    const tally: Tally = { gets: 0, hits: 0, sets: 0, deletes: 0, removed: 0, puts: 0 };
    /** This batch's L1 misses that start a new L2 read: sent together after the loop. */
    const batchMisses: PendingLoad[] = [];
    for (let i = 0; i < n; i++) {
      const op = ops[i] as number;
      const key = keys[i] as string;
      const arg = args?.[i] ?? null;
      switch (op) {
        case OP.GET:
        case OP.HEAD:
          this.#get(i, key, op === OP.GET, arg?.kind === 'get' ? arg : null, now, tally, batchMisses, later);
          break;
        case OP.PUT:
          if (arg?.kind !== 'put') throw new Error(`PUT op ${i} without arguments`);
          this.#put(i, key, arg, now, tally, later);
          break;
        case OP.DELETE:
          this.#delete(i, key, now, tally, later);
          break;
        case OP.INVALIDATE_TAG:
        case OP.INVALIDATE_TAG_L1:
          this.#invalidateTag(i, key, op === OP.INVALIDATE_TAG_L1, now, tally, later);
          break;
        case OP.DROP:
          this.#dropRemote(i, key, now);
          break;
        case OP.DROP_TAG:
          this.#dropRemoteTag(i, key, now);
          break;
        case OP.CLEAR:
          this.#clear(i, now);
          break;
        case OP.RELEASE:
          if (arg?.kind !== 'release') throw new Error(`RELEASE op ${i} without a lease`);
          this.#defer(later, i, this.#giveBack(key, arg.lease));
          break;
        default:
          throw new Error(`unknown op ${op}`);
      }
    }
    if (this.l2 !== null && batchMisses.length > 0) this.#readMany(batchMisses, this.l2);
    this.#tally(tally, n);
    const end = performance.now();
    this.counters.addShard(this.index, SHARD_SLOT.BUSY_NS, Math.round((end - start) * 1e6));
    // Latency of the batch's ops as the shard saw them: from the front closing the batch to done here.
    this.#observe(batch, now, end);
    // A batch whose every op waits sends no empty first answer.
    if (later.deferred < n) send(now.pack());
  }

  /** Another node invalidated a tag: its entries leave this L1 (the bus's DROP_TAG). */
  #dropRemoteTag(i: number, tag: string, now: Answers): void {
    this.counters.addShard(this.index, SHARD_SLOT.L1_REMOTE_DROPS, this.#dropTagged(tag));
    now.set(i, STATUS.DONE);
  }

  #tally(t: Tally, ops: number): void {
    const { counters, index: s } = this;
    if (t.gets > 0) {
      counters.addShard(s, SHARD_SLOT.L1_GETS, t.gets);
      counters.addShard(s, SHARD_SLOT.L1_HITS, t.hits);
      counters.addShard(s, SHARD_SLOT.L1_MISSES, t.gets - t.hits);
    }
    if (t.sets > 0) counters.addShard(s, SHARD_SLOT.L1_SETS, t.sets);
    if (t.deletes > 0) counters.addShard(s, SHARD_SLOT.L1_DELETES, t.removed);
    if (t.puts > 0 || t.deletes > 0) this.publishGauges();
    counters.incShard(s, SHARD_SLOT.BATCHES);
    counters.addShard(s, SHARD_SLOT.BATCH_OPS, ops);
  }

  /** Answers op i in the batch's next part once work is done. */
  #defer(later: Later, i: number, work: Promise<Reply>): void {
    later.deferred++;
    later.now.set(i, STATUS.PENDING);
    work.then((reply) => this.#ready(later, i, reply), crash);
  }

  /**
   * #defer for a read: answers op i from the L2 read (see #resolved). The
   * common case (an L2 hit or miss) costs one reaction, not a promise of a reply.
   */
  #deferRead(later: Later, i: number, key: string, load: Load | null, rule: OriginRule | null, lease: GetArgs | null, fallback: L1Entry | null): void {
    later.deferred++;
    later.now.set(i, STATUS.PENDING);
    (load === null ? Promise.resolve(null) : load.promise).then(
      (hit) => {
        const reply = this.#resolved(key, hit, rule, lease, fallback, load?.found ?? null);
        if (typeof reply === 'function') this.#ready(later, i, reply);
        else reply.then((r) => this.#ready(later, i, r), crash);
      },
      (err: L2UnavailableError) => {
        if (fallback !== null) this.#ready(later, i, this.#staleReply(fallback));
        // The origin can still answer what the L2 cannot (see #load: a load without the cross-node lock).
        else if (rule !== null) this.#loadReply(key, rule, null).then((r) => this.#ready(later, i, r), crash);
        else this.#ready(later, i, (a, j) => a.set(j, STATUS.L2_ERROR, kindIndex(err)));
      },
    );
  }

  /** Queues op i's answer for the batch's next part, sent once the current turn's completions are in. */
  #ready(later: Later, i: number, reply: Reply): void {
    later.readyOps.push(i);
    later.readyReplies.push(reply);
    if (later.scheduled) return;
    later.scheduled = true;
    // One part for everything that completes in this turn (a batch's MGET answers all its misses at once).
    setImmediate(() => this.#sendPart(later));
  }

  #sendPart(later: Later): void {
    later.scheduled = false;
    const ops = later.readyOps;
    const replies = later.readyReplies;
    later.readyOps = [];
    later.readyReplies = [];
    const answers = new Answers(later.batch.id, later.batch.ops, true);
    for (let k = 0; k < ops.length; k++) (replies[k] as Reply)(answers, ops[k] as number);
    this.#observe(later.batch, answers, performance.now());
    // Gauges (items, bytes) are published by the worker's timers and after writes, not per answer.
    later.send(answers.pack());
  }

  /** Records per-op latency (front closing the batch → answered here) for the ops `answers` answers. */
  #observe(batch: Batch, answers: Answers, end: number): void {
    const latencyNs = (performance.timeOrigin + end - batch.sentAtMs) * 1e6;
    const { ops } = batch;
    let gets = 0;
    let puts = 0;
    let deletes = 0;
    for (let i = 0; i < ops.length; i++) {
      if (answers.status(i) === STATUS.PENDING) continue;
      const op = ops[i];
      if (op === OP.GET || op === OP.HEAD) gets++;
      else if (op === OP.PUT) puts++;
      else if (op === OP.DELETE || op === OP.INVALIDATE_TAG) deletes++;
    }
    const s = this.index;
    if (gets > 0) this.counters.observeShard(s, 'get', latencyNs, gets);
    if (puts > 0) this.counters.observeShard(s, 'put', latencyNs, puts);
    if (deletes > 0) this.counters.observeShard(s, 'delete', latencyNs, deletes);
  }

  // ---- reads ----

  /**
   * GET or HEAD. A fresh L1 entry is answered at once (and may start an
   * early refresh); a stale one within its stale-while-revalidate window is
   * answered STALE and refreshed in the background; anything else continues
   * in #deferRead and #resolved, with the stale-if-error copy (if any) as a fallback.
   */
  #get(i: number, key: string, isGet: boolean, args: GetArgs | null, now: Answers, tally: Tally, batchMisses: PendingLoad[], later: Later): void {
    tally.gets++;
    const rule = this.origins === null ? null : ruleFor(key, this.origins.rules);
    const entry = this.l1.get(key);
    let fallback: L1Entry | null = null;
    if (entry !== undefined) {
      const t = monoNow();
      if (t < entry.expiresMs) {
        tally.hits++;
        if (entry.negative) now.set(i, STATUS.NEGATIVE, LEVELS.indexOf('L1'));
        else now.hit(i, entry, LEVEL_SUFFIX.L1);
        if (isGet && !entry.negative) this.#publish(key, entry, t);
        // Checked first: near expiry XFetch says yes on most reads, and one refresh is enough.
        if (rule !== null && !this.#loading(key) && refreshEarly(t, entry.expiresMs, entry.deltaMs, this.#settings.earlyRefreshBeta))
          this.#refresh(key, rule, this.#l2EntryOf(entry), 'early');
        return;
      }
      if (t < entry.swrUntilMs && !entry.negative) {
        tally.hits++;
        if (rule === null && args !== null && args.leaseMs > 0) {
          // A cache-aside client asking for a lease on a stale value: the lease holder gets it with the token.
          this.#defer(later, i, this.#lease(key, args, entry));
          return;
        }
        this.counters.incShard(this.index, SHARD_SLOT.STALE_ANSWERS);
        now.hit(i, entry, LEVEL_SUFFIX.STALE);
        if (rule !== null && !this.#loading(key)) this.#refresh(key, rule, this.#l2EntryOf(entry), 'stale');
        return;
      }
      if (!entry.negative) fallback = entry;
    }
    // mget reads the cache only: no origin load, no lease.
    const cacheOnly = args?.cacheOnly ?? false;
    const loadRule = cacheOnly ? null : rule;
    const leases = !cacheOnly && rule === null && args !== null && args.leaseMs > 0;
    if (this.l2 === null && loadRule === null && !leases) return; // STATUS.MISS is 0
    const load = this.l2 === null ? null : this.#loadFor(key, batchMisses);
    this.#deferRead(later, i, key, load, loadRule, leases ? args : null, fallback);
  }

  /**
   * After the L2 read: answer what it found, or load from the origin (with
   * `rule`), or hand out a lease (with `lease`), or say it is absent.
   * `found`: the hit as L1 keeps it, if L1 took it in.
   */
  #resolved(
    key: string,
    hit: L2Hit | null,
    rule: OriginRule | null,
    lease: GetArgs | null,
    fallback: L1Entry | null,
    found: Found | null,
  ): Reply | Promise<Reply> {
    let stale: L2Entry | null = null;
    if (hit !== null) {
      const entry = hit.entry;
      const t = Date.now();
      if (t < entry.expiresMs) return this.#entryReply(entry, 'L2', found);
      if (t < entry.swrUntilMs && !entry.negative) {
        if (lease !== null) return this.#lease(key, lease, found ?? foundOf(entry));
        if (rule !== null) this.#refresh(key, rule, entry, 'stale');
        return this.#staleReply(found ?? foundOf(entry));
      }
      if (!entry.negative) stale = entry;
    }
    // The L1 copy (past its freshness) is the fallback only when the L2 has none.
    if (rule !== null) return this.#loadReply(key, rule, stale ?? (fallback === null ? null : this.#l2EntryOf(fallback)));
    if (lease !== null) return this.#lease(key, lease, null);
    return MISS_REPLY;
  }

  /** The answer of a found entry; `found` when it is at hand already (its L1 entry). */
  #entryReply(entry: L2Entry, level: Level, known: Found | null = null): Reply {
    if (entry.negative) return (a, i) => a.set(i, STATUS.NEGATIVE, LEVELS.indexOf(level));
    const found = known ?? foundOf(entry);
    const suffix = LEVEL_SUFFIX[level];
    return (a, i) => a.hit(i, found, suffix);
  }

  /** A stale answer (counted): the value with `x-cache: STALE`. */
  #staleReply(found: Found): Reply {
    this.counters.incShard(this.index, SHARD_SLOT.STALE_ANSWERS);
    return (a, i) => a.hit(i, found, LEVEL_SUFFIX.STALE);
  }

  /** Publishes a fresh entry to the hot-read index, withdrawn early enough for XFetch to see its last reads. */
  #publish(key: string, entry: L1Entry, t: number): void {
    const hot = this.hot;
    if (hot === null || hot.has(key)) return;
    const until = entry.expiresMs - earlyWindowMs(entry.deltaMs, this.#settings.earlyRefreshBeta);
    if (until > t) hot.publish(key, hashKey(key), hotHeadOf(entry.head), entry.value, until, entry.createdMs);
  }

  // ---- origin loads ----

  /** An origin load for a reader (one per key on this shard; see loadUnderLock for the cluster), and its answer. */
  async #loadReply(key: string, rule: OriginRule, stale: L2Entry | null): Promise<Reply> {
    const deadline = performance.now() + this.#settings.answerWithinMs;
    const { promise: flight, joined } = this.#originLoads.run(key, () => this.#load(key, rule, stale, deadline));
    if (joined) this.counters.incShard(this.index, SHARD_SLOT.LOADS_JOINED);
    let result: LoadResult | 'soft-timeout';
    if (stale !== null && rule.softTimeoutMs > 0) {
      // Slower than softTimeoutMs: answer the stale copy; the load goes on and updates the cache.
      let timer: NodeJS.Timeout | undefined;
      const soft = new Promise<'soft-timeout'>((resolve) => {
        timer = setTimeout(() => resolve('soft-timeout'), rule.softTimeoutMs);
      });
      result = await Promise.race([flight, soft]);
      clearTimeout(timer);
      if (result === 'soft-timeout') this.counters.incShard(this.index, SHARD_SLOT.REFRESHES);
    } else {
      result = await flight;
    }
    if (result === 'soft-timeout') return this.#staleReply(foundOf(stale as L2Entry));
    switch (result.kind) {
      case 'entry':
        return this.#entryReply(result.entry, result.level);
      case 'uncached':
        return this.#entryReply(result.entry, 'ORIGIN');
      case 'error':
        if (stale !== null) return this.#staleReply(foundOf(stale));
        return (a, i) => a.set(i, STATUS.ORIGIN_ERROR, result.status, result.message);
      case 'timeout':
        if (stale !== null) return this.#staleReply(foundOf(stale));
        return (a, i) => a.set(i, STATUS.ORIGIN_TIMEOUT, 0, result.message);
      case 'busy':
        if (stale !== null) return this.#staleReply(foundOf(stale));
        return (a, i) => a.set(i, STATUS.ORIGIN_BUSY, RETRY_AFTER_S);
    }
  }

  /**
   * The one origin load of key on this shard for its readers: under the
   * key's lock, or waiting for the holder's fill (loadUnderLock).
   */
  async #load(key: string, rule: OriginRule, stale: L2Entry | null, deadline: number): Promise<LoadResult> {
    try {
      const locked = await loadUnderLock(this.#stampede, key, rule.lockTtlMs, deadline, (token) => this.#produce(key, rule, token, stale, deadline));
      if (locked.kind === 'produced') return locked.result;
      if (locked.kind === 'filled') {
        this.counters.incShard(this.index, SHARD_SLOT.REMOTE_FILLS);
        this.#admit(key, locked.hit.entry, locked.hit.ttlMs);
        return { kind: 'entry', entry: locked.hit.entry, level: 'L2' };
      }
      if (locked.kind === 'failed') return failureOf(locked.note);
      return { kind: 'timeout', message: `a load of this key by another node did not finish within ${Math.round(this.#settings.answerWithinMs)} ms` };
    } catch (err) {
      // The L2 cannot be asked for the lock: load without it (this shard's single-flight still holds),
      // rather than fail reads the origin could answer. The L2 failure is counted; /readyz reports it.
      this.#l2Failed(err as L2UnavailableError);
      return this.#produce(key, rule, null, stale, deadline);
    }
  }

  /** Whether an origin load or a refresh of key is in flight on this shard. */
  #loading(key: string): boolean {
    return this.#originLoads.has(key) || this.#refreshes.has(key);
  }

  /**
   * A background refresh of a value that is stale (or soon will be); readers
   * are not waiting for it. It loads only if it gets the lock at once, and
   * only if nobody refreshed since this copy (the lock script compares
   * fresh-until): someone else refreshing is as good.
   */
  #refresh(key: string, rule: OriginRule, stale: L2Entry, why: 'early' | 'stale'): void {
    if (this.#loading(key)) return;
    this.counters.incShard(this.index, why === 'early' ? SHARD_SLOT.EARLY_REFRESHES : SHARD_SLOT.REFRESHES);
    this.#refreshes.run(key, async () => {
      try {
        const token = newToken(0);
        const attempt = await this.#locks.lockUnlessFresh(key, token, rule.lockTtlMs, Math.max(Date.now(), stale.expiresMs));
        if (!attempt.locked) {
          const newer = attempt.peek.hit;
          if (newer !== null && newer.entry.expiresMs > stale.expiresMs) this.#admit(key, newer.entry, newer.ttlMs);
          return;
        }
        this.counters.incShard(this.index, SHARD_SLOT.LOCKS_ACQUIRED);
        await this.#produce(key, rule, token, stale, performance.now() + rule.timeoutMs);
      } catch (err) {
        this.#l2Failed(err as L2UnavailableError);
      }
    });
  }

  /**
   * Holding key's lock (token): asks the origin, stores what it said under
   * the lock (fenced), and releases it. The origin's slot (maxConcurrent) is
   * taken for the request only. Without a token (the L2 is unreachable), the
   * answer goes to this shard's L1 only.
   */
  async #produce(key: string, rule: OriginRule, token: string | null, stale: L2Entry | null, deadline: number): Promise<LoadResult> {
    const origins = this.origins as ShardOrigins;
    const o = origins.rules.indexOf(rule);
    const counters = this.counters;
    if (!origins.slots.tryTake(o, rule.maxConcurrent)) {
      counters.addOrigin(o, ORIGIN_SLOT.BUSY);
      await this.#release(key, token, null);
      return { kind: 'busy' };
    }
    let answer: OriginAnswer;
    const started = performance.now();
    try {
      counters.addOrigin(o, ORIGIN_SLOT.LOADS);
      answer = await origins.client.load(rule, key, stale?.validators ?? null, Math.max(1, Math.min(rule.timeoutMs, deadline - started)));
    } finally {
      origins.slots.give(o);
    }
    const deltaMs = performance.now() - started;
    counters.observeOrigin(o, deltaMs * 1e6);
    const t = Date.now();
    let entry: L2Entry;
    switch (answer.kind) {
      case 'value': {
        counters.addOrigin(o, ORIGIN_SLOT.VALUES);
        const f = answer.freshness;
        entry = {
          value: answer.value,
          contentType: answer.contentType,
          etag: etagOf(answer.value),
          createdMs: t,
          expiresMs: t + f.freshMs,
          swrUntilMs: t + f.freshMs + f.swrMs,
          staleUntilMs: t + f.freshMs + Math.max(f.swrMs, f.sieMs),
          deltaMs,
          negative: false,
          validators: answer.validators,
          tags: null,
        };
        if (!f.store || entry.staleUntilMs <= t) {
          await this.#release(key, token, null);
          return { kind: 'uncached', entry };
        }
        break;
      }
      case 'not-modified': {
        counters.addOrigin(o, ORIGIN_SLOT.NOT_MODIFIED);
        if (stale === null) {
          await this.#release(key, token, null);
          return { kind: 'error', status: 304, message: 'the origin answered 304 to a request that was not conditional' };
        }
        const f = answer.freshness;
        entry = {
          ...stale,
          createdMs: t,
          expiresMs: t + f.freshMs,
          swrUntilMs: t + f.freshMs + f.swrMs,
          staleUntilMs: t + f.freshMs + Math.max(f.swrMs, f.sieMs),
          deltaMs,
          validators: answer.validators,
        };
        break;
      }
      case 'not-found':
        counters.addOrigin(o, ORIGIN_SLOT.NOT_FOUND);
        entry = {
          value: new Uint8Array(0),
          contentType: 'application/octet-stream',
          etag: '""',
          createdMs: t,
          expiresMs: t + answer.freshness.freshMs,
          swrUntilMs: t + answer.freshness.freshMs,
          staleUntilMs: t + answer.freshness.freshMs,
          deltaMs,
          negative: true,
          validators: null,
          tags: null,
        };
        if (answer.freshness.freshMs <= 0) {
          await this.#release(key, token, null);
          return { kind: 'entry', entry, level: 'ORIGIN' };
        }
        break;
      case 'error': {
        counters.addOrigin(o, ORIGIN_SLOT.ERRORS);
        const failure = { kind: 'error', status: answer.status, message: answer.message } as const;
        await this.#release(key, token, noteOf(failure));
        return failure;
      }
      case 'timeout': {
        counters.addOrigin(o, ORIGIN_SLOT.TIMEOUTS);
        const failure = { kind: 'timeout', message: `the origin did not answer within ${rule.timeoutMs} ms` } as const;
        await this.#release(key, token, noteOf(failure));
        return failure;
      }
    }
    if (token === null) {
      this.#admit(key, entry, entry.staleUntilMs - t);
      return { kind: 'entry', entry, level: 'ORIGIN' };
    }
    try {
      // Fenced off (our lock expired and another holder took over): their value, not ours, is the cache's.
      if (!(await this.#fill(key, token, entry))) this.counters.incShard(this.index, SHARD_SLOT.LOCKS_LOST);
    } catch (err) {
      // The origin answered; the L2 did not take it. The reader still gets the value.
      this.#l2Failed(err as L2UnavailableError);
    }
    return { kind: 'entry', entry, level: 'ORIGIN' };
  }

  /** Gives the lock back after a load that stores nothing: released, or replaced by a failure note. Never fails. */
  async #release(key: string, token: string | null, note: string | null): Promise<void> {
    if (token === null) return;
    try {
      if (note === null) await this.#locks.unlock(key, token);
      else await this.#locks.failed(key, token, note, FAILURE_NOTE_MS);
    } catch (err) {
      // The lock expires by itself.
      this.#l2Failed(err as L2UnavailableError);
    }
  }

  /** Stores entry under the lock (L2 and the bus, then L1; or this shard's own), and wakes local waiters. */
  async #fill(key: string, token: string, entry: L2Entry, epoch?: number): Promise<boolean> {
    const ttlMs = entry.staleUntilMs - Date.now();
    const l2 = this.l2;
    const announce = l2 === null ? null : this.#announce(l2, BUS_KIND.KEYS, key);
    const { result: filled, overtaken } = await this.#writing(key, () =>
      this.#locks.fill(key, token, entry, Math.max(1, ttlMs), {
        announce,
        late: () => this.#drop(key),
        ...(epoch === undefined ? {} : { epoch }),
      }),
    );
    // Without an L2 the fill went into this L1 (LocalLocks); with one, L1 follows the L2 as after a PUT.
    if (filled && l2 !== null) {
      this.counters.incShard(this.index, SHARD_SLOT.L2_SETS);
      this.#settle(key, entry, ttlMs, overtaken);
    }
    this.#waiters.notice(key);
    return filled;
  }

  /**
   * Runs a write of key to the L2, noting whether another node's write
   * overtook it: an invalidation of key that arrives while it is in flight
   * may be for a write Redis applied after ours (#dropRemote sets it).
   */
  async #writing<T>(key: string, write: () => Promise<T>): Promise<{ readonly result: T; readonly overtaken: boolean }> {
    let record = this.#writes.get(key);
    if (record === undefined) {
      record = { count: 0, overtaken: false };
      this.#writes.set(key, record);
    }
    record.count++;
    const mine = record;
    try {
      const result = await write();
      return { result, overtaken: mine.overtaken };
    } finally {
      if (--mine.count === 0 && this.#writes.get(key) === mine) this.#writes.delete(key);
    }
  }

  /** After this shard wrote key to the L2: L1 takes the value, unless a newer write overtook it (then Redis is current). */
  #settle(key: string, entry: L2Entry, ttlMs: number, overtaken: boolean): void {
    this.#forget(key);
    if (overtaken) this.#drop(key);
    else if (this.#admit(key, entry, ttlMs) !== null) this.counters.incShard(this.index, SHARD_SLOT.L1_SETS);
  }

  /** Keeps an entry from the L2 (or just written there) in L1, for at most l1MaxTtl; the L1 entry, or null when not stored. */
  #admit(key: string, entry: L2Entry, ttlMs: number): L1Entry | null {
    const l2 = this.l2;
    const l1TtlMs = l2 === null ? ttlMs : Math.min(ttlMs, l2.l1MaxTtlMs);
    if (l1TtlMs < 1) return null;
    // Asked first: a value TinyLFU turns away is not copied into an entry of its own.
    if (!this.l1.admits(key, entryBytes(key, entry.value.byteLength, baseHeadLength(entry.contentType, entry.etag)))) return null;
    const l1Entry = this.#l1EntryOf(entry);
    return this.l1.set(key, l1Entry, l1TtlMs) ? l1Entry : null;
  }

  // ---- leases ----

  /**
   * A cache-aside read with `?lease=`: one caller per key in the cluster gets
   * the lease (404 + token, or the stale value + token), the others the
   * stale value, or wait for the fill (`?wait=`).
   */
  async #lease(key: string, args: GetArgs, stale: Found | null): Promise<Reply> {
    const waitDeadline = performance.now() + Math.min(args.waitMs, this.#settings.answerWithinMs);
    // With a stale copy nobody waits: ask once, without waiting.
    const askDeadline = stale === null ? waitDeadline : performance.now();
    const { promise: ask, joined } = this.#leaseAsks.run(key, () => leaseOrWait(this.#stampede, key, args.leaseMs, askDeadline));
    if (joined) this.counters.incShard(this.index, SHARD_SLOT.LOADS_JOINED);
    let outcome: LeaseOutcome;
    try {
      outcome = await ask;
    } catch (err) {
      if (stale !== null) return this.#staleReply(stale);
      return (a, i) => a.set(i, STATUS.L2_ERROR, kindIndex(err as L2UnavailableError));
    }
    if (outcome.kind === 'leased' && !joined) {
      this.counters.incShard(this.index, SHARD_SLOT.LEASES_GRANTED);
      const token = outcome.token;
      if (stale !== null) {
        this.counters.incShard(this.index, SHARD_SLOT.STALE_ANSWERS);
        return (a, i) => a.hit(i, stale, LEVEL_SUFFIX.STALE, token);
      }
      return (a, i) => a.set(i, STATUS.LEASED, 0, token);
    }
    if (stale !== null) return this.#staleReply(stale);
    if (outcome.kind === 'leased') {
      // Another reader on this shard holds the lease: wait for its fill like any other waiter.
      outcome = await leaseOrWait(this.#stampede, key, args.leaseMs, waitDeadline, true).catch(() => ({ kind: 'timeout' }) as const);
      if (outcome.kind === 'leased') {
        this.counters.incShard(this.index, SHARD_SLOT.LEASES_GRANTED);
        const token = outcome.token;
        return (a, i) => a.set(i, STATUS.LEASED, 0, token);
      }
    }
    if (outcome.kind === 'filled') {
      this.counters.incShard(this.index, SHARD_SLOT.REMOTE_FILLS);
      return this.#entryReply(outcome.hit.entry, 'L2');
    }
    this.counters.incShard(this.index, SHARD_SLOT.WAIT_TIMEOUTS);
    return (a, i) => a.set(i, STATUS.WAIT_TIMEOUT, RETRY_AFTER_S);
  }

  // ---- writes ----

  /** PUT: the origin first (write-through), then under a lease or plainly: the L2 and the bus, then L1. */
  #put(i: number, key: string, put: PutArgs, now: Answers, tally: Tally, later: Later): void {
    tally.puts++;
    const t = Date.now();
    const etag = etagOf(put.value);
    const l2Entry: L2Entry = {
      value: put.value,
      contentType: put.contentType,
      etag,
      createdMs: t,
      expiresMs: t + put.ttlMs,
      swrUntilMs: t + put.ttlMs + put.swrMs,
      staleUntilMs: t + put.ttlMs + put.swrMs,
      deltaMs: 0,
      negative: false,
      validators: null,
      tags: put.tags,
    };
    const rule = this.origins === null ? null : ruleFor(key, this.origins.rules);
    if (put.lease !== null) {
      this.#defer(later, i, this.#leaseFill(key, put.lease, l2Entry));
      return;
    }
    if (rule?.writeThrough != null) {
      this.#defer(later, i, this.#writeToOrigin(key, rule, put, l2Entry));
      return;
    }
    if (this.l2 === null) {
      this.#storeLocal(i, key, l2Entry, now, tally);
      return;
    }
    this.#defer(later, i, this.#storeThrough(key, l2Entry, put.keep));
  }

  /** Without an L2: straight into L1 (the only copy). */
  #storeLocal(i: number, key: string, entry: L2Entry, now: Answers, tally: Tally): void {
    this.#local?.drop(key);
    if (this.l1.set(key, this.#l1EntryOf(entry), entry.staleUntilMs - entry.createdMs)) {
      tally.sets++;
      now.set(i, STATUS.STORED);
    } else {
      now.set(i, STATUS.TOO_LARGE);
    }
    this.#waiters.notice(key);
  }

  /** Write-through: the origin must take the value (2xx) before the cache does; otherwise the cache is untouched. */
  async #writeToOrigin(key: string, rule: OriginRule, put: PutArgs, entry: L2Entry): Promise<Reply> {
    const origins = this.origins as ShardOrigins;
    const o = origins.rules.indexOf(rule);
    this.counters.addOrigin(o, ORIGIN_SLOT.WRITES);
    const written = await origins.client.write(rule, key, put.value, put.contentType, Math.min(rule.timeoutMs, this.#settings.answerWithinMs));
    if (!written.ok) {
      this.counters.addOrigin(o, ORIGIN_SLOT.WRITE_ERRORS);
      return (a, i) => a.set(i, STATUS.ORIGIN_ERROR, written.status, `write-through failed: ${written.message}; the cache was left untouched`);
    }
    if (this.l2 !== null) return this.#storeThrough(key, entry);
    this.#local?.drop(key);
    const stored = this.l1.set(key, this.#l1EntryOf(entry), entry.staleUntilMs - entry.createdMs);
    if (stored) this.counters.incShard(this.index, SHARD_SLOT.L1_SETS);
    this.#waiters.notice(key);
    return (a, i) => a.set(i, stored ? STATUS.STORED : STATUS.TOO_LARGE);
  }

  /**
   * A lease holder gives its lease back without a fill (its load failed): the
   * lock goes if the token still holds it, and a waiter takes the lease over
   * (docs/leases.md). The value, if any, is left as it is.
   */
  async #giveBack(key: string, token: string): Promise<Reply> {
    let released: boolean;
    try {
      released = await this.#locks.unlock(key, token);
    } catch (err) {
      this.#l2Failed(err as L2UnavailableError);
      return (a, i) => a.set(i, STATUS.L2_ERROR, kindIndex(err as L2UnavailableError));
    }
    if (!released) return (a, i) => a.set(i, STATUS.LEASE_LOST, 0, 'the lease is no longer held (filled, voided or expired): nothing to give back');
    this.#waiters.notice(key);
    return (a, i) => a.set(i, STATUS.DONE, 0);
  }

  /** A lease holder's fill: stored only while its lease holds (and no tag invalidation came since). */
  async #leaseFill(key: string, token: string, entry: L2Entry): Promise<Reply> {
    const epoch = tokenEpoch(token) ?? -1;
    let filled: boolean;
    try {
      filled = await this.#fill(key, token, entry, epoch);
    } catch (err) {
      this.#drop(key);
      this.#l2Failed(err as L2UnavailableError);
      return (a, i) => a.set(i, STATUS.L2_ERROR, kindIndex(err as L2UnavailableError));
    }
    if (!filled) {
      this.counters.incShard(this.index, SHARD_SLOT.LEASES_VOIDED);
      return (a, i) =>
        a.set(
          i,
          STATUS.LEASE_LOST,
          0,
          'the lease is no longer held: the key was deleted, invalidated or written by a plain PUT since it was granted, or the lease expired; nothing was stored',
        );
    }
    this.counters.incShard(this.index, SHARD_SLOT.LEASES_FILLED);
    return (a, i) => a.set(i, STATUS.STORED);
  }

  /**
   * PUT with an L2: L2 and the bus message first, then L1 (or, when `keep`
   * is false, the key only leaves L1); acknowledged only when all are done.
   */
  async #storeThrough(key: string, entry: L2Entry, keep = true): Promise<Reply> {
    const l2 = this.l2 as ShardL2;
    const ttlMs = entry.staleUntilMs - entry.createdMs;
    const started = performance.now();
    const announce = this.#announce(l2, BUS_KIND.KEYS, key);
    let overtaken: boolean;
    try {
      // A write that outlives its deadline may still land: then what L1 read meanwhile is old.
      ({ overtaken } = await this.#writing(key, () => l2.store.set(key, entry, ttlMs, announce, () => this.#drop(key))));
    } catch (err) {
      // The write may or may not have reached Redis: this L1 must not keep the value it replaced.
      this.#drop(key);
      this.#l2Failed(err as L2UnavailableError);
      return (a, i) => a.set(i, STATUS.L2_ERROR, kindIndex(err as L2UnavailableError));
    }
    this.#l2Done(started);
    this.counters.incShard(this.index, SHARD_SLOT.L2_SETS);
    this.#settle(key, entry, ttlMs, overtaken || !keep);
    this.#waiters.notice(key);
    return (a, i) => a.set(i, STATUS.STORED);
  }

  /** DELETE: the key and its lock (a lease on it is void) from the L2 with the bus message, then L1 again. */
  #delete(i: number, key: string, now: Answers, tally: Tally, later: Later): void {
    tally.deletes++;
    const gone = this.#drop(key) ? 1 : 0;
    tally.removed += gone;
    this.#local?.drop(key);
    const l2 = this.l2;
    if (l2 === null) {
      now.set(i, STATUS.DONE, gone);
      return;
    }
    this.#defer(
      later,
      i,
      this.#removeThrough(() => l2.store.delete([key], this.#announce(l2, BUS_KIND.KEYS, key), () => this.#drop(key)), BUS_KIND.KEYS, key),
    );
  }

  /**
   * A tag's invalidation on this node. The tag's own shard (INVALIDATE_TAG)
   * sweeps the L2 and tells the other nodes; every shard (INVALIDATE_TAG_L1)
   * cleans its L1. Without an L2 each shard counts what its L1 held.
   */
  #invalidateTag(i: number, tag: string, l1Only: boolean, now: Answers, tally: Tally, later: Later): void {
    tally.deletes++;
    const gone = this.#dropTagged(tag);
    tally.removed += gone;
    // Without an L2, leases are this shard's own: a tag invalidation voids those taken before it.
    this.#local?.dropAll();
    const l2 = this.l2;
    if (l2 === null) now.set(i, STATUS.DONE, gone);
    else if (l1Only) now.set(i, STATUS.DONE, 0);
    else
      this.#defer(
        later,
        i,
        this.#removeThrough(() => l2.store.deleteTags([tag], this.#announce(l2, BUS_KIND.TAGS, tag)), BUS_KIND.TAGS, tag),
      );
  }

  /** DELETE or tag invalidation through the L2: answers how many the L2 held. */
  async #removeThrough(remove: () => Promise<number>, kind: BusKind, item: string): Promise<Reply> {
    const started = performance.now();
    let count: number;
    try {
      count = await remove();
    } catch (err) {
      this.#l2Failed(err as L2UnavailableError);
      return (a, i) => a.set(i, STATUS.L2_ERROR, kindIndex(err as L2UnavailableError));
    }
    this.#l2Done(started);
    // Reads that began before the L2 removal may have refilled L1 meanwhile.
    if (kind === BUS_KIND.KEYS) {
      this.#drop(item);
      this.#waiters.notice(item);
    } else {
      this.#dropTagged(item);
    }
    return (a, i) => a.set(i, STATUS.DONE, count);
  }

  /** Another node changed key: drop it here, keep a write in flight out of L1, wake waiters for its fill. */
  #dropRemote(i: number, key: string, now: Answers): void {
    const write = this.#writes.get(key);
    if (write !== undefined) write.overtaken = true;
    if (this.#drop(key)) this.counters.incShard(this.index, SHARD_SLOT.L1_REMOTE_DROPS);
    this.#waiters.notice(key);
    now.set(i, STATUS.DONE);
  }

  /** The bus may have lost messages: empty L1, let nothing in flight fill it, and make waiters look again. */
  #clear(i: number, now: Answers): void {
    for (const load of this.#loads.values()) load.stale = true;
    this.#loads.clear();
    for (const write of this.#writes.values()) write.overtaken = true;
    this.counters.addShard(this.index, SHARD_SLOT.L1_REMOTE_DROPS, this.l1.clear());
    this.#waiters.noticeAll();
    now.set(i, STATUS.DONE);
  }

  // ---- the L2 read path ----

  /**
   * The L2 read for key: one already in flight (joined, counted as
   * coalesced), or a new one that `#readMany` sends with the rest of the
   * batch's misses. A write or drop for the key while it is in flight keeps
   * its result out of L1.
   */
  #loadFor(key: string, batchMisses: PendingLoad[]): Load {
    const inFlight = this.#loads.get(key);
    if (inFlight !== undefined) {
      this.counters.incShard(this.index, SHARD_SLOT.LOADS_COALESCED);
      return inFlight;
    }
    let settle!: (hit: L2Hit | null) => void;
    let fail!: (err: unknown) => void;
    const promise = new Promise<L2Hit | null>((resolve, reject) => {
      settle = resolve;
      fail = reject;
    });
    // Joined reads may never look at a failure; this one is answered through them.
    promise.catch(() => {});
    const load: Load = { promise, stale: false, found: null };
    this.#loads.set(key, load);
    batchMisses.push({ key, load, settle, fail });
    return load;
  }

  /** Reads a batch's new misses from the L2 in one multi-key read (MGET per slot), then fills L1. */
  #readMany(misses: PendingLoad[], l2: ShardL2): void {
    const s = this.index;
    const counters = this.counters;
    counters.addShard(s, SHARD_SLOT.L2_GETS, misses.length);
    const started = performance.now();
    l2.store.mget(misses.map((m) => m.key)).then(
      (hits) => {
        this.#l2Done(started);
        for (let i = 0; i < misses.length; i++) {
          const { key, load, settle, fail } = misses[i] as PendingLoad;
          const hit = hits[i] ?? null;
          if (this.#loads.get(key) === load) this.#loads.delete(key);
          if (hit instanceof Error) {
            // This key's stored value is not one Strata can read; the batch's other keys are fine.
            this.#l2Failed(hit);
            fail(hit);
          } else if (hit === null) {
            counters.incShard(s, SHARD_SLOT.L2_MISSES);
            settle(null);
          } else {
            counters.incShard(s, SHARD_SLOT.L2_HITS);
            if (!load.stale) load.found = this.#admit(key, hit.entry, hit.ttlMs);
            settle(hit);
          }
        }
      },
      (err: L2UnavailableError) => {
        this.#l2Done(started);
        this.#l2Failed(err);
        for (const { key, load, fail } of misses) {
          if (this.#loads.get(key) === load) this.#loads.delete(key);
          fail(err);
        }
      },
    );
  }

  /** The bus message for a change, made (and counted) when the store publishes it. */
  #announce(l2: ShardL2, kind: typeof BUS_KIND.KEYS | typeof BUS_KIND.TAGS, item: string): Announce {
    return () => {
      this.counters.incShard(this.index, SHARD_SLOT.BUS_SENT);
      return l2.bus.next(kind, [item]);
    };
  }

  /** Removes key from L1 and keeps an L2 read in flight for it from filling L1. */
  #drop(key: string): boolean {
    this.#forget(key);
    return this.l1.delete(key);
  }

  #dropTagged(tag: string): number {
    // Which in-flight reads and writes carry the tag is unknown here: none of them may fill L1.
    for (const load of this.#loads.values()) load.stale = true;
    this.#loads.clear();
    for (const write of this.#writes.values()) write.overtaken = true;
    return this.l1.deleteTagged(new Set([tag]));
  }

  #forget(key: string): void {
    const load = this.#loads.get(key);
    if (load === undefined) return;
    load.stale = true;
    this.#loads.delete(key);
  }

  #l2Done(started: number): void {
    this.counters.observeShard(this.index, 'l2', (performance.now() - started) * 1e6);
  }

  #l2Failed(err: L2UnavailableError): void {
    this.counters.incShard(this.index, SHARD_SLOT.L2_ERRORS + kindIndex(err));
  }

  // ---- entries between the levels ----

  /** An L2 entry (epoch-ms times) as an L1 entry (times on the L1 clock), in a buffer of its own. */
  #l1EntryOf(entry: L2Entry): L1Entry {
    // The times move from epoch ms to the L1 clock.
    return ownedEntry(baseHeadOf(entry.contentType, entry.etag), entry.value, entry, monoNow() - Date.now());
  }

  /** An L1 entry back as an L2 entry (for a fill, or a stale fallback). */
  #l2EntryOf(entry: L1Entry): L2Entry {
    const text = LATIN1.decode(entry.head);
    const cut = text.indexOf('\r\netag: ');
    // The times move from the L1 clock back to epoch ms.
    const shift = Date.now() - monoNow();
    return {
      value: entry.value,
      contentType: text.slice(0, cut),
      etag: text.slice(cut + 8),
      createdMs: entry.createdMs,
      expiresMs: entry.expiresMs + shift,
      swrUntilMs: entry.swrUntilMs + shift,
      staleUntilMs: entry.staleUntilMs + shift,
      deltaMs: entry.deltaMs,
      negative: entry.negative,
      validators: entry.validators,
      tags: entry.tags,
    };
  }
}

/** A failed load as the note its lock keeps for a moment (L2Store.failed): `timeout <why>` or `<status> <why>`. */
function noteOf(
  failure: { readonly kind: 'error'; readonly status: number; readonly message: string } | { readonly kind: 'timeout'; readonly message: string },
): string {
  return failure.kind === 'timeout' ? `timeout ${failure.message}` : `${failure.status} ${failure.message}`;
}

/** The failure a note describes (another holder's, maybe on another node). */
function failureOf(note: string): LoadResult {
  const space = note.indexOf(' ');
  const head = space === -1 ? note : note.slice(0, space);
  const message = space === -1 ? 'the origin failed' : note.slice(space + 1);
  if (head === 'timeout') return { kind: 'timeout', message };
  return { kind: 'error', status: Number(head) || 0, message };
}

/** A rejected reply is a bug (every dependency failure is an answer): crash, and the pool replaces the worker. */
function crash(err: unknown): void {
  setImmediate(() => {
    throw err;
  });
}

/** The answer to a read that found nothing. */
const MISS_REPLY: Reply = (a, i) => a.set(i, STATUS.MISS);

/** The shard slot each lock event counts in. */
const LOCK_SLOTS: Readonly<Record<LockEvent, number>> = {
  acquired: SHARD_SLOT.LOCKS_ACQUIRED,
  waited: SHARD_SLOT.LOCK_WAITS,
  takeover: SHARD_SLOT.LOCK_TAKEOVERS,
  lost: SHARD_SLOT.LOCKS_LOST,
};

/** Index of an L2 failure's kind in L2_ERROR_KINDS (anything unexpected counts as a connection failure). */
function kindIndex(err: L2UnavailableError): number {
  const i = L2_ERROR_KINDS.indexOf(err?.kind);
  return i === -1 ? 1 : i;
}

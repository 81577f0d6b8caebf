import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { type L2ErrorKind, L2UnavailableError } from '../errors.js';
import { type BreakerOptions, CircuitBreaker } from './breaker.js';
import { BUS_CHANNEL } from './bus-format.js';
import { DeadlineQueue } from './deadlines.js';
import { decodeEnvelope, encodeEnvelope, type L2Entry } from './envelope.js';
import { LEASE_EPOCH_KEY, lockKey, tagKey, valueKey } from './keys.js';
import { slotOf } from './slot.js';
import { type Announce, FAILURE_PREFIX, type FillOptions, type L2Hit, type L2Peek, type L2Read, type L2Store, type LockAttempt, peekOf } from './store.js';
import { clusterAuth, parseClusterSeeds } from './target.js';

export { clusterNodes, type L2Target } from './target.js';

/** Where the L2 is and how long an operation may take. */
export interface RedisL2Options {
  /** `redis://` or `rediss://` URL of a standalone server (user and password allowed). */
  readonly url?: string;
  /** `host:port` seeds of a Redis Cluster. Exactly one of url and cluster. */
  readonly cluster?: readonly string[];
  /** Deadline of one store operation, ms: every method settles within it, its bus message included. */
  readonly commandTimeoutMs: number;
  /** Deadline of one connection attempt, ms. */
  readonly connectTimeoutMs: number;
  /** Circuit breaker in front of every command. @default { failureThreshold: 5, cooldownMs: 1000 } */
  readonly breaker?: BreakerOptions;
}

/**
 * Lua scripts, registered with ioredis's defineCommand: each call is an
 * EVALSHA, and ioredis sends the script itself (EVAL) when Redis answers
 * NOSCRIPT (a restarted or flushed server; test/e2e/l2-locks.test.ts flushes
 * the script cache to check). KEYS of one call share a slot (keys.ts).
 */
const SCRIPTS = {
  /** KEYS: lock. ARGV: token. Deletes the lock only if the token holds it. */
  strataUnlock: {
    numberOfKeys: 1,
    lua: "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end",
  },
  /** KEYS: value, lock. ARGV: token, envelope, px. Stores and releases only while the token holds the lock. */
  strataFill: {
    numberOfKeys: 2,
    lua: "if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]); redis.call('DEL', KEYS[2]); return 1 else return 0 end",
  },
  /** KEYS: value, lock. The value and the lock's content (a token, a failure note, or nil). */
  strataPeek: {
    numberOfKeys: 2,
    lua: "return {redis.call('GET', KEYS[1]), redis.call('GET', KEYS[2])}",
  },
  /**
   * KEYS: value, lock. ARGV: token, px, a time (epoch ms). Takes the lock unless
   * the value is fresh past that time (its envelope's fresh-until; the layout
   * is envelope.ts's, versions 3 and 2); otherwise answers what is there, as
   * strataPeek does: {1} when locked, else {0, value, lock}.
   */
  strataLockUnlessFresh: {
    numberOfKeys: 2,
    lua: `local v = redis.call('GET', KEYS[1])
if v and #v >= 21 then
  local version = string.byte(v, 1)
  local at = nil
  if version == 3 then
    local ct = string.byte(v, 4) + 256 * string.byte(v, 5)
    at = 6 + ct + 1 + string.byte(v, 6 + ct) + 8
  elseif version == 2 then
    local ct = string.byte(v, 3) + 256 * string.byte(v, 4)
    at = 5 + ct + 1 + string.byte(v, 5 + ct) + 8
  end
  if at and #v >= at + 7 and struct.unpack('<d', v, at) > tonumber(ARGV[3]) then
    return {0, v, redis.call('GET', KEYS[2])}
  end
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1} end
return {0, v or false, redis.call('GET', KEYS[2])}`,
  },
  /** KEYS: lock. ARGV: token, note, px. Replaces the lock with a note for px ms, only if the token holds it. */
  strataHandOver: {
    numberOfKeys: 1,
    lua: "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]); return 1 else return 0 end",
  },
} as const;

interface ScriptCommands {
  strataUnlock(lock: string, token: string): Promise<number>;
  strataFill(value: string, lock: string, token: string, envelope: Buffer, px: number): Promise<number>;
  strataPeekBuffer(value: string, lock: string): Promise<[Buffer | null, Buffer | null]>;
  strataHandOver(lock: string, token: string, note: string, px: number): Promise<number>;
  strataLockUnlessFreshBuffer(value: string, lock: string, token: string, px: number, now: number): Promise<[number, (Buffer | null)?, (Buffer | null)?]>;
}

/**
 * The L2 on Redis or Redis Cluster through ioredis, with the same behaviour on
 * both. Fail-fast settings: a command deadline, one retry, no offline queue
 * (a command while disconnected fails at once instead of waiting), and
 * auto-pipelining so concurrent commands share round trips.
 */
export class RedisL2Store implements L2Store {
  readonly #client: Redis | Cluster;
  readonly #breaker: CircuitBreaker;
  readonly #deadlines: DeadlineQueue;

  private constructor(client: Redis | Cluster, breaker: CircuitBreaker, deadlineMs: number) {
    this.#client = client;
    this.#breaker = breaker;
    this.#deadlines = new DeadlineQueue(deadlineMs);
  }

  /** True while the client is connected (for a Cluster: knows the slots) and takes commands. */
  get ready(): boolean {
    return this.#client.status === 'ready';
  }

  /** closed, open (commands refused at once) or half-open (one probe allowed). */
  get breakerState() {
    return this.#breaker.state;
  }

  /**
   * Runs one store operation through the breaker: refused at once while the
   * circuit is open; timeouts and connection or cluster failures count against
   * Redis, a reply it could not decode does not (Redis answered).
   */
  async #run<T>(operation: () => Promise<T>, late?: () => void, bounded = true): Promise<T> {
    if (!this.#breaker.allow()) throw new L2UnavailableError('breaker', 'circuit open after repeated failures; probing');
    const running = operation();
    try {
      // One deadline for the whole operation (several commands, round trips, cluster redirects), unless it bounds its parts itself.
      const result = await (bounded ? this.#deadlines.bound(running, 'the L2 operation') : running);
      this.#breaker.success();
      return result;
    } catch (err) {
      const l2 = toL2Error(err);
      if (l2.kind === 'reply') this.#breaker.success();
      else this.#breaker.failure();
      // Past its deadline the operation may still run in Redis; the caller may need to know when it did.
      if (l2.kind === 'timeout' && late !== undefined) running.then(late, () => {});
      throw l2;
    }
  }

  /** Connects and waits until the client is ready (rejects with L2UnavailableError). */
  static async connect(options: RedisL2Options): Promise<RedisL2Store> {
    const store = RedisL2Store.create(options, true);
    try {
      await new DeadlineQueue(options.connectTimeoutMs).bound(store.#client.connect(), 'connect');
    } catch (err) {
      store.#client.disconnect();
      throw toL2Error(err);
    }
    return store;
  }

  /**
   * A store that connects in the background and keeps reconnecting; until it
   * is ready its operations fail at once with kind `connection`. A node
   * starts with it, so a Redis that is down at boot heals like one lost later.
   */
  static create(options: RedisL2Options, lazy = false): RedisL2Store {
    // No ioredis commandTimeout: it arms a timer per command; the store's DeadlineQueue bounds every operation instead.
    const common: RedisOptions = {
      connectTimeout: options.connectTimeoutMs,
      maxRetriesPerRequest: 1,
      enableAutoPipelining: true,
      lazyConnect: lazy,
    };
    let client: Redis | Cluster;
    if (options.cluster !== undefined && options.cluster.length > 0) {
      const seeds = parseClusterSeeds(options.cluster);
      client = new Cluster(
        seeds.nodes.map((n) => ({ ...n })),
        {
          enableOfflineQueue: false,
          enableAutoPipelining: true,
          lazyConnect: lazy,
          clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
          // Learn a failover within a second even when no command is redirected (the default is 5 s).
          slotsRefreshInterval: 1000,
          // Credentials and TLS apply to every node, the ones the client discovers too.
          redisOptions: { connectTimeout: options.connectTimeoutMs, maxRetriesPerRequest: 1, ...clusterAuth(seeds) },
        },
      );
    } else if (options.url !== undefined) {
      client = new Redis(options.url, { ...common, enableOfflineQueue: false, retryStrategy: (times) => Math.min(50 * times, 2000) });
    } else {
      throw new RangeError('RedisL2Store needs url or cluster');
    }
    // ioredis reports connection trouble as 'error' events; the commands' own rejections carry what matters.
    client.on('error', () => {});
    for (const [name, script] of Object.entries(SCRIPTS)) client.defineCommand(name, script);
    return new RedisL2Store(client, new CircuitBreaker(options.breaker), options.commandTimeoutMs);
  }

  get(key: string): Promise<L2Hit | null> {
    return this.#run(() => this.#read(key));
  }

  mget(keys: readonly string[]): Promise<L2Read[]> {
    const client = this.#client;
    return this.#run(
      async () => {
        const redisKeys = keys.map(valueKey);
        const out = new Array<L2Read>(keys.length);
        if (!(client instanceof Cluster)) {
          const values = await client.mgetBuffer(...redisKeys);
          for (let i = 0; i < keys.length; i++) out[i] = readOf(values[i] ?? null);
          return out;
        }
        // One MGET per slot (a multi-key command must stay in one slot); auto-pipelining sends them in one round trip per node.
        const bySlot = new Map<number, number[]>();
        for (let i = 0; i < redisKeys.length; i++) {
          const slot = slotOf(redisKeys[i] as string);
          const group = bySlot.get(slot);
          if (group === undefined) bySlot.set(slot, [i]);
          else group.push(i);
        }
        // Each slot's read has its own deadline and its own failure: a master that is down or failing
        // over fails its keys only, and the batch's keys on the other masters are still answered.
        let firstError: L2UnavailableError | null = null;
        let failed = 0;
        await Promise.all(
          [...bySlot.values()].map(async (group) => {
            try {
              const values = await this.#deadlines.bound(client.mgetBuffer(...group.map((i) => redisKeys[i] as string)), 'the L2 operation');
              group.forEach((i, j) => {
                out[i] = readOf(values[j] ?? null);
              });
            } catch (err) {
              const l2 = toL2Error(err);
              firstError ??= l2;
              failed++;
              for (const i of group) out[i] = l2;
            }
          }),
        );
        // Only a read that failed everywhere counts against Redis (the breaker).
        if (firstError !== null && failed === bySlot.size) throw firstError;
        return out;
      },
      undefined,
      !(client instanceof Cluster),
    );
  }

  /** The key joins each of its tags' sets; a set lives as long as its longest-lived member (NX: a new set; GT: extend only). */
  #joinTags(key: string, tags: readonly string[], ttlMs: number): Promise<unknown> {
    const client = this.#client;
    return Promise.all(
      tags.map((tag) => Promise.all([client.sadd(tagKey(tag), key), client.pexpire(tagKey(tag), ttlMs, 'NX'), client.pexpire(tagKey(tag), ttlMs, 'GT')])),
    );
  }

  set(key: string, entry: L2Entry, ttlMs: number, announce: Announce | null = null, late?: () => void): Promise<void> {
    const tags = entry.tags ?? [];
    const client = this.#client;
    const steps: (() => Promise<unknown>)[] = [];
    // Before the value, so that no value exists that a sweep cannot find; after it again, in case a
    // sweep running meanwhile removed the membership (deleteTags removes only what it saw).
    if (tags.length > 0) steps.push(() => this.#joinTags(key, tags, ttlMs));
    // The key's lock goes first, in the same round trip (same slot): a lease taken before this write, or a
    // load under way, may no longer fill an older value over it (docs/leases.md).
    steps.push(() => Promise.all([client.del(lockKey(key)), client.set(valueKey(key), encodeEnvelope(entry), 'PX', ttlMs)]));
    if (tags.length > 0) steps.push(() => this.#joinTags(key, tags, ttlMs));
    if (announce !== null) steps.push(() => this.#announce(announce));
    return this.#run(async () => {
      await this.#inOrder(steps);
    }, late);
  }

  /**
   * Runs steps that must take effect in Redis in this order, and resolves
   * with their results. A standalone Redis runs what one connection sends in
   * the order sent: every step goes at once, in one round trip, and a bus
   * message sent last still reaches no subscriber before the steps ahead of
   * it are done. A Cluster spreads them over connections (the key's node,
   * the tags' nodes, the bus's publisher): there each waits for the one before.
   */
  async #inOrder(steps: readonly (() => Promise<unknown>)[]): Promise<unknown[]> {
    if (!(this.#client instanceof Cluster)) return Promise.all(steps.map((step) => step()));
    const results: unknown[] = [];
    for (const step of steps) results.push(await step());
    return results;
  }

  tryLock(key: string, token: string, ttlMs: number): Promise<boolean> {
    return this.#run(async () => (await this.#client.set(lockKey(key), token, 'PX', ttlMs, 'NX')) === 'OK');
  }

  unlock(key: string, token: string): Promise<boolean> {
    return this.#run(async () => (await this.#scripts.strataUnlock(lockKey(key), token)) === 1);
  }

  fill(key: string, token: string, entry: L2Entry, ttlMs: number, options: FillOptions = {}): Promise<boolean> {
    const tags = entry.tags ?? [];
    return this.#run(async () => {
      // Tags first, as in set(): a sweep that starts after this sees the key, and removes its lock,
      // so the fill below is refused; a sweep that came before moved the lease epoch on.
      if (tags.length > 0) await this.#joinTags(key, tags, ttlMs);
      if (options.epoch !== undefined && (await this.#epoch()) !== options.epoch) {
        await this.#scripts.strataUnlock(lockKey(key), token);
        return false;
      }
      const filled = (await this.#scripts.strataFill(valueKey(key), lockKey(key), token, encodeEnvelope(entry), Math.max(1, Math.ceil(ttlMs)))) === 1;
      if (!filled) return false;
      if (tags.length > 0) await this.#joinTags(key, tags, ttlMs);
      if (options.announce != null) await this.#announce(options.announce);
      return true;
    }, options.late);
  }

  peek(key: string): Promise<L2Peek> {
    return this.#run(async () => {
      const [value, lock] = await this.#scripts.strataPeekBuffer(valueKey(key), lockKey(key));
      return peekOf(hitOf(value), lock === null ? null : lock.toString('utf8'));
    });
  }

  lockUnlessFresh(key: string, token: string, ttlMs: number, freshAfterMs = Date.now()): Promise<LockAttempt> {
    return this.#run(async () => {
      const [locked, value, lock] = await this.#scripts.strataLockUnlessFreshBuffer(
        valueKey(key),
        lockKey(key),
        token,
        Math.max(1, Math.ceil(ttlMs)),
        freshAfterMs,
      );
      if (locked === 1) return { locked: true };
      return { locked: false, peek: peekOf(hitOf(value ?? null), lock == null ? null : lock.toString('utf8')) };
    });
  }

  failed(key: string, token: string, note: string, ttlMs: number): Promise<boolean> {
    return this.#run(async () => (await this.#scripts.strataHandOver(lockKey(key), token, `${FAILURE_PREFIX}${note}`, Math.max(1, Math.ceil(ttlMs)))) === 1);
  }

  leaseEpoch(): Promise<number> {
    return this.#run(() => this.#epoch());
  }

  async #epoch(): Promise<number> {
    return Number((await this.#client.get(LEASE_EPOCH_KEY)) ?? 0);
  }

  /** The client with the Lua commands defineCommand added. */
  get #scripts(): ScriptCommands {
    return this.#client as unknown as ScriptCommands;
  }

  deleteTags(tags: readonly string[], announce: Announce | null = null): Promise<number> {
    const client = this.#client;
    return this.#run(async () => {
      // First: a lease taken before this point may not fill a value this sweep would have removed (docs/leases.md).
      await client.incr(LEASE_EPOCH_KEY);
      const counts = await Promise.all(
        tags.map(async (tag) => {
          const k = tagKey(tag);
          const members = await client.smembers(k);
          if (members.length === 0) return 0;
          // Only the members seen: a PUT joining the tag meanwhile keeps its membership.
          await client.srem(k, ...members);
          // The lock too (same slot): a fill under it is refused, so no value read before the sweep lands after it.
          const deleted = await Promise.all(members.map((member) => this.#deleteWithLock(member)));
          return deleted.reduce((a, b) => a + b, 0);
        }),
      );
      if (announce !== null) await this.#announce(announce);
      return counts.reduce((a, b) => a + b, 0);
    });
  }

  /** Publishes a bus message made at the last moment, so a stream's numbers go out in order. */
  async #announce(announce: Announce): Promise<void> {
    await this.#publisher().publish(BUS_CHANNEL, announce());
  }

  publish(channel: string, message: Buffer): Promise<void> {
    return this.#run(async () => {
      await this.#publisher().publish(channel, message);
    });
  }

  ping(): Promise<void> {
    return this.#run(async () => {
      await this.#client.ping();
    });
  }

  /** 0 closed, 1 half-open, 2 open (the SHARD_SLOT.L2_BREAKER gauge). */
  get breakerCode(): number {
    const state = this.#breaker.state;
    return state === 'closed' ? 0 : state === 'half-open' ? 1 : 2;
  }

  /**
   * The connection a publish goes through. A Cluster client would send each
   * keyless PUBLISH to any node, and messages entering the cluster at
   * different nodes can arrive out of order (seen as gaps); so all of a
   * stream's messages go through one master, the first by address. After a
   * failover it changes, and receivers may see one gap: safe, they drop L1.
   */
  #publisher(): Redis | Cluster {
    const client = this.#client;
    if (!(client instanceof Cluster)) return client;
    let first: Redis | undefined;
    let firstName = '';
    for (const node of client.nodes('master')) {
      const name = `${node.options.host}:${node.options.port}`;
      if (first === undefined || name < firstName) {
        first = node;
        firstName = name;
      }
    }
    return first ?? client;
  }

  delete(keys: readonly string[], announce: Announce | null = null, late?: () => void): Promise<number> {
    // One DEL per key: in a cluster the keys live on different slots.
    return this.#run(async () => {
      const deletes = () => Promise.all(keys.map((key) => this.#deleteWithLock(key)));
      const [counts] = (await this.#inOrder(announce === null ? [deletes] : [deletes, () => this.#announce(announce)])) as [number[]];
      return counts.reduce((a, b) => a + b, 0);
    }, late);
  }

  /**
   * Deletes key's value and its lock (same slot, one round trip): a lease or
   * a load in progress on the key may no longer fill it. Counts the value only.
   */
  async #deleteWithLock(key: string): Promise<number> {
    const [values] = await Promise.all([this.#client.del(valueKey(key)), this.#client.del(lockKey(key))]);
    return values;
  }

  async #read(key: string): Promise<L2Hit | null> {
    // One GET: the envelope carries the expiry, so no PTTL round trip is needed.
    return hitOf(await this.#client.getBuffer(valueKey(key)));
  }

  /** Closes the connection: politely (QUIT) when Redis answers within the deadline, at once otherwise. */
  async close(): Promise<void> {
    const client = this.#client;
    await this.#deadlines.bound(client.quit(), 'QUIT').catch(() => undefined);
    client.disconnect();
    this.#deadlines.close();
  }
}

/** One key's answer in a multi-key read: a foreign value fails that key only. */
function readOf(bytes: Buffer | null): L2Read {
  try {
    return hitOf(bytes);
  } catch (err) {
    return err as L2UnavailableError;
  }
}

/**
 * A stored envelope as a hit, with the time it has left by its own expiry
 * stamp (the writer's clock; Redis drops the key at the same moment by PX).
 */
function hitOf(bytes: Buffer | null): L2Hit | null {
  if (bytes === null) return null;
  let entry: L2Entry;
  try {
    entry = decodeEnvelope(bytes);
  } catch (err) {
    throw new L2UnavailableError('reply', (err as Error).message, err);
  }
  const ttlMs = entry.staleUntilMs - Date.now();
  return ttlMs > 0 ? { entry, ttlMs } : null;
}

/**
 * Maps an ioredis failure to L2UnavailableError. ioredis gives most of its
 * errors no code, so the kind is read from the error's class, code or (for
 * the command timeout) its fixed message — the one place that does.
 */
export function toL2Error(err: unknown): L2UnavailableError {
  if (err instanceof L2UnavailableError) return err;
  const e = err as { name?: string; code?: string; message?: string };
  const message = e?.message ?? String(err);
  let kind: L2ErrorKind = 'connection';
  if (message === 'Command timed out') kind = 'timeout';
  else if (e?.name === 'ReplyError' && /^(CLUSTERDOWN|MOVED|ASK|TRYAGAIN)/.test(message)) kind = 'cluster';
  else if (e?.name === 'ReplyError') kind = 'reply';
  else if (e?.name === 'ClusterAllFailedError') kind = 'cluster';
  return new L2UnavailableError(kind, message, err);
}

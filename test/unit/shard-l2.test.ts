import { describe, expect, it } from 'vitest';
import { newToken } from '../../src/coordination/lease-token.js';
import { Counters } from '../../src/counters/counters.js';
import { L2_ERROR_KINDS, SHARD_SLOT } from '../../src/counters/layout.js';
import { L2UnavailableError } from '../../src/errors.js';
import { plainMeta } from '../../src/l1/partition.js';
import { BusPublisher, decodeBusMessage, newNodeId } from '../../src/l2/bus-format.js';
import { type L2Entry, PLAIN } from '../../src/l2/envelope.js';
import type { Announce, FillOptions, L2Hit, L2Peek, L2Store, LockAttempt } from '../../src/l2/store.js';
import { type Batch, BatchResult, OP, STATUS } from '../../src/shards/protocol.js';
import { Shard } from '../../src/shards/shard.js';

// The shard's L2 ordering rules, with a store whose replies the test releases one by one: the races
// these rules guard against (a reply overtaken by another node's invalidation) cannot be scheduled
// reliably against a real Redis. Behaviour against real Redis is in test/e2e/l2-*.test.ts.

/** An L2Store whose every call waits until the test releases it. */
class HeldStore implements L2Store {
  readonly data = new Map<string, L2Entry>();
  readonly held: (() => void)[] = [];
  gets = 0;
  readonly ready = true;
  readonly breakerCode = 0;
  #hold<T>(result: () => T): Promise<T> {
    return new Promise((resolve, reject) =>
      this.held.push(() => {
        try {
          resolve(result());
        } catch (err) {
          reject(err);
        }
      }),
    );
  }
  /** Lets the oldest held call finish. */
  release(): void {
    this.held.shift()?.();
  }
  get(key: string): Promise<L2Hit | null> {
    this.gets++;
    return this.#hold(() => {
      const entry = this.data.get(key);
      return entry === undefined ? null : { entry, ttlMs: 60_000 };
    });
  }
  mget(keys: readonly string[]): Promise<(L2Hit | null)[]> {
    return Promise.all(keys.map((k) => this.get(k)));
  }
  /** When set, writes fail as a Redis that timed out would. */
  failSets = false;
  /** Bus messages the shard announced, in order. */
  readonly announced: Buffer[] = [];
  set(key: string, entry: L2Entry, _ttlMs: number, announce?: Announce | null): Promise<void> {
    return this.#hold(() => {
      if (this.failSets) throw new L2UnavailableError('timeout', 'held too long');
      this.data.set(key, entry);
      if (announce) this.announced.push(announce());
    });
  }
  delete(keys: readonly string[]): Promise<number> {
    return this.#hold(() => keys.filter((k) => this.data.delete(k)).length);
  }
  deleteTags(): Promise<number> {
    return this.#hold(() => 0);
  }
  tryLock(): Promise<boolean> {
    return Promise.resolve(true);
  }
  unlock(): Promise<boolean> {
    return Promise.resolve(true);
  }
  fill(key: string, _token: string, entry: L2Entry, _ttlMs: number, options: FillOptions = {}): Promise<boolean> {
    return this.#hold(() => {
      this.data.set(key, entry);
      if (options.announce) this.announced.push(options.announce());
      return true;
    });
  }
  peek(): Promise<L2Peek> {
    return Promise.resolve({ hit: null, locked: false, failure: null });
  }
  failed(): Promise<boolean> {
    return Promise.resolve(true);
  }
  lockUnlessFresh(): Promise<LockAttempt> {
    return Promise.resolve({ locked: true });
  }
  leaseEpoch(): Promise<number> {
    return Promise.resolve(0);
  }
  publish(): Promise<void> {
    return Promise.resolve();
  }
  ping(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const entry = (text: string): L2Entry => ({
  ...PLAIN,
  swrUntilMs: Date.now() + 60_000,
  staleUntilMs: Date.now() + 60_000,
  value: new TextEncoder().encode(text),
  contentType: 'text/plain',
  etag: '"e"',
  createdMs: Date.now(),
  expiresMs: Date.now() + 60_000,
  tags: null,
});

let nextId = 1;
function batch(ops: number[], keys: string[], values: (string | null)[] = []): Batch {
  return {
    id: nextId++,
    sentAtMs: performance.timeOrigin + performance.now(),
    ops,
    keys,
    args:
      values.length === 0
        ? null
        : values.map((v) =>
            v === null
              ? null
              : { kind: 'put', value: new TextEncoder().encode(v), contentType: 'text/plain', ttlMs: 60_000, swrMs: 0, tags: null, lease: null, keep: true },
          ),
  };
}

/** A shard over a HeldStore, and the answers it sent, by batch id, as they arrive. */
function setup() {
  const store = new HeldStore();
  const counters = new Counters(1);
  const bus = new BusPublisher(newNodeId());
  const answers = new Map<number, BatchResult[]>();
  const arrived: (() => void)[] = [];
  const ops = new Map<number, number>();
  const shard = new Shard({
    index: 0,
    counters,
    l1MaxBytes: 1 << 20,
    l2: { store, bus, l1MaxTtlMs: 60_000, admission: 'lru' },
  });
  const send = (buffer: ArrayBuffer) => {
    const id = BatchResult.idOf(buffer);
    const list = answers.get(id) ?? [];
    list.push(new BatchResult(buffer, ops.get(id) ?? 0));
    answers.set(id, list);
    for (const wake of arrived.splice(0)) wake();
  };
  /** Runs a batch; its answers so far, and a wait for its next one. */
  const run = (b: Batch) => {
    ops.set(b.id, b.ops.length);
    shard.run(b, send);
    const sent = () => answers.get(b.id) ?? [];
    const next = async (count: number): Promise<BatchResult> => {
      while (sent().length < count) await new Promise<void>((r) => arrived.push(r));
      return sent()[count - 1] as BatchResult;
    };
    return { sent, next };
  };
  return { store, shard, counters, run };
}

const entryOf = (bytes: number) => ({ ...plainMeta(0, Number.MAX_VALUE), value: new Uint8Array(bytes), head: new Uint8Array(1) });
const text = (value: Uint8Array | undefined) => (value === undefined ? undefined : new TextDecoder().decode(value));
const settle = () => new Promise((r) => setImmediate(r));

describe('shard with an L2', () => {
  it('answers L1 hits at once and the L2 misses of the same batch in a second answer', async () => {
    const { store, shard, run } = setup();
    shard.l1.set('here', entryOf(1), 60_000);
    store.data.set('there', entry('from redis'));
    const answers = run(batch([OP.GET, OP.GET], ['here', 'there']));
    const now = await answers.next(1);
    expect([now.status(0), now.status(1)]).toEqual([STATUS.HIT, STATUS.PENDING]);
    store.release();
    const later = await answers.next(2);
    expect([later.status(0), later.status(1)]).toEqual([STATUS.PENDING, STATUS.HIT]);
    expect(new TextDecoder().decode(later.head(1))).toContain('x-cache: L2');
    expect(text(shard.l1.get('there')?.value)).toBe('from redis');
  });

  it('sends no first answer for a batch of L2 misses only, and reads one key once for concurrent misses', async () => {
    const { store, counters, run } = setup();
    store.data.set('k', entry('v'));
    const first = run(batch([OP.GET, OP.GET], ['k', 'k']));
    const second = run(batch([OP.HEAD], ['k']));
    expect(first.sent()).toEqual([]);
    expect(store.gets).toBe(1);
    expect(counters.shard(0, SHARD_SLOT.LOADS_COALESCED)).toBe(2);
    store.release();
    const one = await first.next(1);
    expect([one.status(0), one.status(1)]).toEqual([STATUS.HIT, STATUS.HIT]);
    expect((await second.next(1)).status(0)).toBe(STATUS.HIT);
  });

  it('keeps an L2 read overtaken by another node’s invalidation out of L1', async () => {
    const { store, shard, run } = setup();
    store.data.set('k', entry('old'));
    const read = run(batch([OP.GET], ['k']));
    run(batch([OP.DROP], ['k']));
    store.release();
    expect((await read.next(1)).status(0)).toBe(STATUS.HIT);
    expect(shard.l1.get('k')).toBeUndefined();
  });

  it('keeps its own write out of L1 when another node’s invalidation for the key arrives while the write is in flight', async () => {
    const { store, shard, run } = setup();
    const write = run(batch([OP.PUT], ['k'], ['mine']));
    // Another node wrote k too; its message may mean Redis applied that write after this one.
    run(batch([OP.DROP], ['k']));
    store.release();
    expect((await write.next(1)).status(0)).toBe(STATUS.STORED);
    expect(shard.l1.get('k')).toBeUndefined();
    // The write was announced to the other nodes all the same.
    expect(store.announced.map((m) => decodeBusMessage(m)?.items)).toEqual([['k']]);
    // Without such a message the write lands in L1.
    const alone = run(batch([OP.PUT], ['j'], ['mine']));
    await settle();
    store.release();
    await alone.next(1);
    expect(text(shard.l1.get('j')?.value)).toBe('mine');
  });

  it('keeps a lease holder’s fill out of L1 when another node’s invalidation for the key arrives while the fill is in flight', async () => {
    const { store, shard, run } = setup();
    const put = { kind: 'put', value: new TextEncoder().encode('filled'), contentType: 'text/plain', ttlMs: 60_000, swrMs: 0, tags: null, keep: true } as const;
    const fill = (key: string): Batch => ({
      id: nextId++,
      sentAtMs: performance.timeOrigin + performance.now(),
      ops: [OP.PUT],
      keys: [key],
      args: [{ ...put, lease: newToken(0) }],
    });
    const overtaken = run(fill('k'));
    run(batch([OP.DROP], ['k']));
    store.release();
    expect((await overtaken.next(1)).status(0)).toBe(STATUS.STORED);
    expect(shard.l1.get('k')).toBeUndefined();
    // Without such a message the fill lands in L1.
    const alone = run(fill('j'));
    await settle();
    store.release();
    expect((await alone.next(1)).status(0)).toBe(STATUS.STORED);
    expect(text(shard.l1.get('j')?.value)).toBe('filled');
  });

  it('a failed write leaves the key out of L1 (not the old value) and counts the failure by kind', async () => {
    const { store, shard, counters, run } = setup();
    store.failSets = true;
    shard.l1.set('k', entryOf(1), 60_000);
    const write = run(batch([OP.PUT], ['k'], ['new']));
    store.release();
    const answer = await write.next(1);
    expect(answer.status(0)).toBe(STATUS.L2_ERROR);
    expect(L2_ERROR_KINDS[answer.arg(0)]).toBe('timeout');
    expect(counters.shard(0, SHARD_SLOT.L2_ERRORS + L2_ERROR_KINDS.indexOf('timeout'))).toBe(1);
    expect(shard.l1.get('k')).toBeUndefined();
  });
});

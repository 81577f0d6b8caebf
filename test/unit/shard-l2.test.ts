import { describe, expect, it } from 'vitest';
import { Counters } from '../../src/counters/counters.js';
import { L2_ERROR_KINDS, SHARD_SLOT } from '../../src/counters/layout.js';
import { L2UnavailableError } from '../../src/errors.js';
import { BusPublisher, decodeBusMessage, newNodeId } from '../../src/l2/bus-format.js';
import type { L2Entry } from '../../src/l2/envelope.js';
import type { Announce, L2Hit, L2Store } from '../../src/l2/store.js';
import { type Batch, FIELD, FIELDS, OP, RESULT_PREFIX_BYTES, STATUS } from '../../src/shards/protocol.js';
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
    puts:
      values.length === 0
        ? null
        : values.map((v) => (v === null ? null : { value: new TextEncoder().encode(v), contentType: 'text/plain', ttlMs: 60_000, tags: null })),
  };
}

function setup() {
  const store = new HeldStore();
  const counters = new Counters(1);
  const bus = new BusPublisher(newNodeId());
  const shard = new Shard(0, counters, 1 << 20, null, { store, bus, l1MaxTtlMs: 60_000, admission: 'lru' });
  return { store, shard, counters };
}

const statusOf = (buffer: ArrayBuffer | null, i: number) =>
  new Float64Array(buffer as ArrayBuffer, RESULT_PREFIX_BYTES, (i + 1) * FIELDS)[i * FIELDS + FIELD.STATUS];
const text = (value: Uint8Array | undefined) => (value === undefined ? undefined : new TextDecoder().decode(value));
const settle = () => new Promise((r) => setImmediate(r));

describe('shard with an L2', () => {
  it('answers L1 hits at once and the L2 misses of the same batch in a second answer', async () => {
    const { store, shard } = setup();
    shard.l1.set('here', { value: new Uint8Array(1), head: new Uint8Array(1), createdMs: 0, expiresMs: Number.MAX_VALUE, tags: null }, 60_000);
    store.data.set('there', entry('from redis'));
    const outcome = shard.run(batch([OP.GET, OP.GET], ['here', 'there']));
    expect(statusOf(outcome.now, 0)).toBe(STATUS.HIT);
    expect(statusOf(outcome.now, 1)).toBe(STATUS.PENDING);
    store.release();
    const later = (await outcome.later) as ArrayBuffer;
    expect(statusOf(later, 0)).toBe(STATUS.PENDING);
    expect(statusOf(later, 1)).toBe(STATUS.HIT);
    expect(text(shard.l1.get('there')?.value)).toBe('from redis');
  });

  it('sends no first answer for a batch of L2 misses only, and reads one key once for concurrent misses', async () => {
    const { store, shard, counters } = setup();
    store.data.set('k', entry('v'));
    const first = shard.run(batch([OP.GET, OP.GET], ['k', 'k']));
    const second = shard.run(batch([OP.HEAD], ['k']));
    expect(first.now).toBeNull();
    expect(store.gets).toBe(1);
    expect(counters.shard(0, SHARD_SLOT.LOADS_COALESCED)).toBe(2);
    store.release();
    expect(statusOf((await first.later) as ArrayBuffer, 1)).toBe(STATUS.HIT);
    expect(statusOf((await second.later) as ArrayBuffer, 0)).toBe(STATUS.HIT);
  });

  it('keeps an L2 read overtaken by another node’s invalidation out of L1', async () => {
    const { store, shard } = setup();
    store.data.set('k', entry('old'));
    const read = shard.run(batch([OP.GET], ['k']));
    shard.run(batch([OP.DROP], ['k']));
    store.release();
    expect(statusOf((await read.later) as ArrayBuffer, 0)).toBe(STATUS.HIT);
    expect(shard.l1.get('k')).toBeUndefined();
  });

  it('keeps its own write out of L1 when another node’s invalidation for the key arrives while the write is in flight', async () => {
    const { store, shard } = setup();
    const write = shard.run(batch([OP.PUT], ['k'], ['mine']));
    // Another node wrote k too; its message may mean Redis applied that write after this one.
    shard.run(batch([OP.DROP], ['k']));
    store.release();
    expect(statusOf((await write.later) as ArrayBuffer, 0)).toBe(STATUS.STORED);
    expect(shard.l1.get('k')).toBeUndefined();
    // The write was announced to the other nodes all the same.
    expect(store.announced.map((m) => decodeBusMessage(m)?.items)).toEqual([['k']]);
    // Without such a message the write lands in L1.
    const alone = shard.run(batch([OP.PUT], ['j'], ['mine']));
    await settle();
    store.release();
    await alone.later;
    expect(text(shard.l1.get('j')?.value)).toBe('mine');
  });

  it('a failed write leaves the key out of L1 (not the old value) and counts the failure by kind', async () => {
    const { store, shard, counters } = setup();
    store.failSets = true;
    shard.l1.set('k', { value: new Uint8Array(1), head: new Uint8Array(1), createdMs: 0, expiresMs: Number.MAX_VALUE, tags: null }, 60_000);
    const write = shard.run(batch([OP.PUT], ['k'], ['new']));
    store.release();
    const answer = new Float64Array((await write.later) as ArrayBuffer, RESULT_PREFIX_BYTES, FIELDS);
    expect(answer[FIELD.STATUS]).toBe(STATUS.L2_ERROR);
    expect(L2_ERROR_KINDS[answer[FIELD.VALUE_LEN] as number]).toBe('timeout');
    expect(counters.shard(0, SHARD_SLOT.L2_ERRORS + L2_ERROR_KINDS.indexOf('timeout'))).toBe(1);
    expect(shard.l1.get('k')).toBeUndefined();
  });
});

import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { L2UnavailableError } from '../../src/errors.js';
import { type L2Entry, PLAIN } from '../../src/l2/envelope.js';
import { valueKey } from '../../src/l2/keys.js';
import { clusterNodes, RedisL2Store } from '../../src/l2/redis.js';
import type { L2Hit } from '../../src/l2/store.js';
import { RedisCluster, RedisServer } from '../helpers/redis.js';

// One behavioural suite, run against a standalone Redis and a 6-node Redis Cluster (issue 3 groundwork).

const entry = (text: string, tags: string[] | null = null, ttlMs = 60_000): L2Entry => ({
  ...PLAIN,
  swrUntilMs: Date.now() + ttlMs,
  staleUntilMs: Date.now() + ttlMs,
  value: new TextEncoder().encode(text),
  contentType: 'text/plain',
  etag: `"${text.length}"`,
  createdMs: Date.now(),
  expiresMs: Date.now() + ttlMs,
  tags,
});
const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : new TextDecoder().decode(bytes));

interface Target {
  store: RedisL2Store;
  /** A plain client on the same Redis, to put there what Strata would not. */
  raw: Redis | Cluster;
  stop(): Promise<void>;
}

const targets: [string, () => Promise<Target>][] = [
  [
    'standalone',
    async () => {
      const redis = await RedisServer.start();
      const store = await RedisL2Store.connect({ url: redis.url, commandTimeoutMs: 1000, connectTimeoutMs: 2000 });
      const raw = new Redis(redis.url);
      const stop = async () => {
        raw.disconnect();
        await store.close();
        await redis.stop();
      };
      return { store, raw, stop };
    },
  ],
  [
    'cluster',
    async () => {
      const cluster = await RedisCluster.start();
      const store = await RedisL2Store.connect({ cluster: cluster.seeds, commandTimeoutMs: 1000, connectTimeoutMs: 5000 });
      const raw = new Cluster(clusterNodes(cluster.seeds));
      const stop = async () => {
        raw.disconnect();
        await store.close();
        await cluster.stop();
      };
      return { store, raw, stop };
    },
  ],
];

describe.each(targets)('L2 store on Redis (%s)', (_name, start) => {
  let target: Target;
  beforeAll(async () => {
    target = await start();
  }, 60_000);
  afterAll(() => target?.stop());

  it('stores and reads back value and metadata with the remaining TTL', async () => {
    await target.store.set('user:1', entry('alice', ['people']), 60_000);
    const hit = await target.store.get('user:1');
    expect(text(hit?.entry.value)).toBe('alice');
    expect(hit?.entry).toMatchObject({ contentType: 'text/plain', etag: '"5"', tags: ['people'] });
    expect(hit?.ttlMs).toBeGreaterThan(0);
    expect(hit?.ttlMs).toBeLessThanOrEqual(60_000);
    expect(await target.store.get('user:2')).toBeNull();
  });

  it('reads many keys across slots in order, and deletes counting what existed', async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `many:${i}`);
    await Promise.all(keys.slice(0, 25).map((k) => target.store.set(k, entry(k), 60_000)));
    const hits = await target.store.mget(keys);
    expect(hits.map((h) => (h instanceof Error ? h : (text(h?.entry.value) ?? null)))).toEqual(keys.map((k, i) => (i < 25 ? k : null)));
    expect(await target.store.delete(['many:0', 'many:1', 'many:40'])).toBe(2);
    expect(await target.store.get('many:0')).toBeNull();
  });

  it('in a multi-key read, a value Strata did not write fails its own key only', async () => {
    await target.store.set('mine', entry('ok'), 60_000);
    await target.raw.set(valueKey('foreign'), 'not an envelope');
    const [mine, foreign, absent] = await target.store.mget(['mine', 'foreign', 'absent']);
    expect(text((mine as L2Hit | null)?.entry.value)).toBe('ok');
    expect(foreign).toBeInstanceOf(L2UnavailableError);
    expect(foreign).toMatchObject({ code: 'E_L2_UNAVAILABLE', kind: 'reply' });
    expect(absent).toBeNull();
    await expect(target.store.get('foreign')).rejects.toMatchObject({ kind: 'reply' });
  });

  it('locks: taken only when free and no fresh value is there, released only by the holder, fills fenced by the token', async () => {
    const { store } = target;
    expect(await store.tryLock('lk{1}', 'tok-a', 5000)).toBe(true);
    expect(await store.tryLock('lk{1}', 'tok-b', 5000)).toBe(false);
    expect(await store.lockUnlessFresh('lk{1}', 'tok-b', 5000)).toMatchObject({ locked: false, peek: { hit: null, locked: true, failure: null } });
    // Only the holder releases (compare-and-delete), and only the holder fills.
    expect(await store.unlock('lk{1}', 'tok-b')).toBe(false);
    expect(await store.fill('lk{1}', 'tok-b', entry('intruder'), 60_000)).toBe(false);
    expect(await store.fill('lk{1}', 'tok-a', entry('mine'), 60_000)).toBe(true);
    const peek = await store.peek('lk{1}');
    expect([text(peek.hit?.entry.value), peek.locked]).toEqual(['mine', false]);
    // A fresh value: no lock for anyone; a stale one: the lock is taken.
    expect(await store.lockUnlessFresh('lk{1}', 'tok-c', 5000)).toMatchObject({ locked: false, peek: { locked: false } });
    await store.set('lk{2}', { ...entry('old'), expiresMs: Date.now() - 1, swrUntilMs: Date.now() + 60_000, staleUntilMs: Date.now() + 60_000 }, 60_000);
    expect(await store.lockUnlessFresh('lk{2}', 'tok-d', 5000)).toEqual({ locked: true });
    // A failure note takes the lock's place for a moment, for the holder only.
    expect(await store.failed('lk{2}', 'tok-x', '500 no', 1000)).toBe(false);
    expect(await store.failed('lk{2}', 'tok-d', '500 the origin answered 500', 1000)).toBe(true);
    expect((await store.peek('lk{2}')).failure).toBe('500 the origin answered 500');
    // A DELETE takes the lock with the value: a lease on the key is void.
    expect(await store.tryLock('lk{3}', 'tok-e', 5000)).toBe(true);
    await store.delete(['lk{3}']);
    expect(await store.fill('lk{3}', 'tok-e', entry('late'), 60_000)).toBe(false);
  });

  it('a lease taken before a tag invalidation cannot fill (the epoch moved); one taken after can', async () => {
    const { store } = target;
    const before = await store.leaseEpoch();
    expect(await store.tryLock('le{1}', 'tok-1', 5000)).toBe(true);
    await store.deleteTags(['some-tag']);
    expect(await store.leaseEpoch()).toBe(before + 1);
    expect(await store.fill('le{1}', 'tok-1', entry('late', ['some-tag']), 60_000, { epoch: before })).toBe(false);
    expect((await store.peek('le{1}')).hit).toBeNull();
    expect(await store.tryLock('le{1}', 'tok-2', 5000)).toBe(true);
    expect(await store.fill('le{1}', 'tok-2', entry('fresh', ['some-tag']), 60_000, { epoch: before + 1 })).toBe(true);
  });

  it('the Lua scripts survive a SCRIPT FLUSH: EVALSHA falls back to EVAL on NOSCRIPT', async () => {
    const { store, raw } = target;
    if (raw instanceof Cluster) await Promise.all(raw.nodes('master').map((n) => n.script('FLUSH')));
    else await raw.script('FLUSH');
    expect(await store.tryLock('ns{1}', 'tok', 5000)).toBe(true);
    expect(await store.unlock('ns{1}', 'tok')).toBe(true);
    expect(await store.lockUnlessFresh('ns{1}', 'tok2', 5000)).toEqual({ locked: true });
    expect(await store.fill('ns{1}', 'tok2', entry('after flush'), 60_000)).toBe(true);
  });

  it('lets values expire in Redis', async () => {
    await target.store.set('brief', entry('x', null, 1), 1);
    const gone = async () => (await target.store.get('brief')) === null;
    for (let i = 0; i < 100 && !(await gone()); i++) await new Promise((r) => setImmediate(r));
    expect(await gone()).toBe(true);
  });
});

describe('L2 store when Redis is down', () => {
  it('rejects with E_L2_UNAVAILABLE instead of waiting, and works again once Redis is back', async () => {
    const redis = await RedisServer.start();
    const store = await RedisL2Store.connect({ url: redis.url, commandTimeoutMs: 300, connectTimeoutMs: 2000 });
    try {
      await store.set('k', entry('v'), 60_000);
      await redis.kill();
      await expect(store.get('k')).rejects.toMatchObject({ code: 'E_L2_UNAVAILABLE' });
      await redis.restart();
      let value: string | undefined;
      for (let i = 0; i < 200 && value !== 'again'; i++) {
        await store.set('k', entry('again'), 60_000).catch(() => undefined);
        value = text((await store.get('k').catch(() => null))?.entry.value);
        if (value !== 'again') await new Promise((r) => setTimeout(r, 50));
      }
      expect(value).toBe('again');
    } finally {
      await store.close();
      await redis.stop();
    }
  });

  it('opens its circuit after repeated failures (refusing at once), then closes through a probe once Redis is back', async () => {
    const redis = await RedisServer.start();
    const store = await RedisL2Store.connect({
      url: redis.url,
      commandTimeoutMs: 300,
      connectTimeoutMs: 2000,
      breaker: { failureThreshold: 3, cooldownMs: 100 },
    });
    try {
      await redis.kill();
      for (let i = 0; i < 3; i++) await expect(store.get('k')).rejects.toMatchObject({ code: 'E_L2_UNAVAILABLE' });
      expect(store.breakerState).toBe('open');
      await expect(store.get('k')).rejects.toMatchObject({ kind: 'breaker' });
      await redis.restart();
      let ok = false;
      for (let i = 0; i < 200 && !ok; i++) {
        ok = await store.get('k').then(
          () => true,
          () => false,
        );
        if (!ok) await new Promise((r) => setTimeout(r, 25));
      }
      expect(ok).toBe(true);
      expect(store.breakerState).toBe('closed');
    } finally {
      await store.close();
      await redis.stop();
    }
  });

  it('a hung Redis (SIGSTOP) fails commands at the command deadline', async () => {
    const redis = await RedisServer.start();
    const store = await RedisL2Store.connect({ url: redis.url, commandTimeoutMs: 200, connectTimeoutMs: 2000 });
    try {
      redis.pause();
      await expect(store.get('k')).rejects.toMatchObject({ code: 'E_L2_UNAVAILABLE', kind: 'timeout' });
      redis.resume();
    } finally {
      await store.close();
      await redis.stop();
    }
  });
});

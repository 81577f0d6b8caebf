import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StrataFileConfig } from '../../src/config/schema.js';
import { type L2Target, RedisL2Store } from '../../src/l2/redis.js';
import { startTestNode, until } from '../helpers/node.js';
import { RedisCluster, RedisServer } from '../helpers/redis.js';

// One behavioural suite for the L2, run against a standalone Redis and a Redis Cluster:
// two nodes share the L2, and what one writes or deletes the other sees on its next read.

type Node = Awaited<ReturnType<typeof startTestNode>>;

const targets: [string, () => Promise<{ target: L2Target; config: StrataFileConfig; stop: () => Promise<void> }>][] = [
  [
    'standalone',
    async () => {
      const redis = await RedisServer.start();
      return { target: { url: redis.url }, config: { redisUrl: redis.url }, stop: () => redis.stop() };
    },
  ],
  [
    'cluster',
    async () => {
      const cluster = await RedisCluster.start();
      return { target: { cluster: cluster.seeds }, config: { redisCluster: cluster.seeds }, stop: () => cluster.stop() };
    },
  ],
];

const put = (node: Node, key: string, body: string, query = '', headers: Record<string, string> = {}) =>
  fetch(`${node.url}/v1/keys/${encodeURIComponent(key)}${query}`, { method: 'PUT', body, headers });
const get = (node: Node, key: string, method = 'GET') => fetch(`${node.url}/v1/keys/${encodeURIComponent(key)}`, { method });
const del = (node: Node, key: string) => fetch(`${node.url}/v1/keys/${encodeURIComponent(key)}`, { method: 'DELETE' });
const post = (node: Node, path: string, body: unknown) =>
  fetch(`${node.url}${path}`, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
async function read(node: Node, key: string): Promise<{ status: number; body: string; cache: string | null }> {
  const res = await get(node, key);
  return { status: res.status, body: await res.text(), cache: res.headers.get('x-cache') };
}
async function stats(node: Node) {
  return (await (await fetch(`${node.url}/v1/stats`)).json()) as {
    levels: {
      L1: { hits: number; misses: number };
      L2: { gets: number; hits: number; misses: number; sets: number; coalesced: number; admissionRejects: number };
    };
    l2: { configured: boolean; up: boolean; mode: string; bus: { sent: number; received: number; gaps: number } };
  };
}

/**
 * PUT on `from`, then wait until `to` has received its bus message: otherwise that message, still on
 * its way, could drop what `to` reads next from the L2 (correct, but it makes "now in L1" unobservable).
 */
async function putSeen(from: Node, to: Node, key: string, body: string, query = '', headers: Record<string, string> = {}): Promise<void> {
  const before = (await stats(to)).l2.bus.received;
  expect((await put(from, key, body, query, headers)).status).toBe(204);
  await until(async () => (await stats(to)).l2.bus.received > before);
}

describe.each(targets)('L2 shared by two nodes (%s)', (mode, start) => {
  let env: Awaited<ReturnType<(typeof targets)[number][1]>>;
  let a: Node;
  let b: Node;
  let store: RedisL2Store;
  beforeAll(async () => {
    env = await start();
    a = await startTestNode({ ...env.config, shards: 2 });
    b = await startTestNode({ ...env.config, shards: 3 });
    store = await RedisL2Store.connect({ ...env.target, commandTimeoutMs: 2000, connectTimeoutMs: 5000 });
  }, 60_000);
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close(), store?.close()]);
    await env?.stop();
  });

  it('reports the L2 as up in /readyz and /v1/stats', async () => {
    const res = await fetch(`${a.url}/readyz`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { l2: { configured: boolean; up: boolean; mode: string } };
    expect(body.l2).toMatchObject({ configured: true, up: true, mode });
    expect((await stats(b)).l2).toMatchObject({ configured: true, up: true, mode });
  });

  it('a PUT is in Redis (value and metadata) when it is acknowledged', async () => {
    const res = await put(a, 'wt{1}', 'written through', '?ttl=120&tags=red', { 'content-type': 'text/plain' });
    expect(res.status).toBe(204);
    const hit = await store.get('wt{1}');
    expect(hit).not.toBeNull();
    expect(Buffer.from(hit?.entry.value ?? []).toString()).toBe('written through');
    expect(hit?.entry.contentType).toBe('text/plain');
    expect(hit?.entry.tags).toEqual(['red']);
    expect(hit?.ttlMs).toBeGreaterThan(100_000);
    expect(hit?.ttlMs).toBeLessThanOrEqual(120_000);
  });

  it('an L1 miss is read from the L2 (x-cache: L2), then served from L1', async () => {
    await putSeen(a, b, 'shared', 'from a', '', { 'content-type': 'text/plain' });
    const before = await stats(b);
    const first = await get(b, 'shared');
    expect(first.status).toBe(200);
    expect(first.headers.get('x-cache')).toBe('L2');
    expect(first.headers.get('content-type')).toBe('text/plain');
    expect(first.headers.get('etag')).toMatch(/^"/);
    expect(await first.text()).toBe('from a');
    const second = await read(b, 'shared');
    expect(second).toEqual({ status: 200, body: 'from a', cache: 'L1' });
    const after = await stats(b);
    expect(after.levels.L2.hits - before.levels.L2.hits).toBe(1);
    // HEAD reads through too.
    const head = await get(b, 'shared', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('6');
  });

  it('a key in neither level is 404, counted as an L2 miss', async () => {
    const before = await stats(b);
    expect((await get(b, 'nowhere')).status).toBe(404);
    const after = await stats(b);
    expect(after.levels.L2.misses - before.levels.L2.misses).toBe(1);
  });

  it('a write on one node is seen by the other’s next read, also when the other held the old value in L1', async () => {
    await putSeen(a, b, 'moving', 'v1');
    expect((await read(b, 'moving')).body).toBe('v1');
    expect((await read(b, 'moving')).cache).toBe('L1');
    await put(a, 'moving', 'v2');
    await until(async () => (await read(b, 'moving')).body === 'v2', 5000, 2);
    // And the other way round.
    await put(b, 'moving', 'v3');
    await until(async () => (await read(a, 'moving')).body === 'v3', 5000, 2);
  });

  it('a DELETE on one node removes the key from the L2 and from the other’s L1', async () => {
    await putSeen(a, b, 'doomed', 'x');
    expect((await read(b, 'doomed')).status).toBe(200);
    expect((await read(b, 'doomed')).cache).toBe('L1');
    expect((await del(b, 'doomed')).status).toBe(204);
    expect(await store.get('doomed')).toBeNull();
    await until(async () => (await read(a, 'doomed')).status === 404, 5000, 2);
    expect((await read(b, 'doomed')).status).toBe(404);
  });

  it('invalidating keys and tags removes them from the L2 and from every L1, and counts what the L2 held', async () => {
    for (const key of ['t1', 't2', 't3']) await putSeen(a, b, key, key, '?tags=blue');
    await putSeen(a, b, 'k1', 'k1');
    for (const key of ['t1', 't2', 't3', 'k1']) {
      await read(b, key);
      expect((await read(b, key)).cache).toBe('L1');
    }
    const res = await post(b, '/v1/invalidate', { keys: ['k1', 'never-there'], tags: ['blue'] });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ invalidated: 4 });
    for (const key of ['t1', 't2', 't3', 'k1']) {
      expect(await store.get(key)).toBeNull();
      expect((await read(b, key)).status).toBe(404);
      await until(async () => (await read(a, key)).status === 404, 5000, 2);
    }
  });

  it('mget reads its L1 misses from the L2', async () => {
    for (let i = 0; i < 30; i++) await put(a, `m${i}`, `value ${i}`);
    const keys = [...Array.from({ length: 30 }, (_, i) => `m${i}`), 'absent'];
    const res = await post(b, '/v1/mget', { keys });
    expect(res.status).toBe(200);
    const { values } = (await res.json()) as { values: Record<string, string | null> };
    for (let i = 0; i < 30; i++) expect(Buffer.from(values[`m${i}`] ?? '', 'base64').toString()).toBe(`value ${i}`);
    expect(values.absent).toBeNull();
  });

  it('a value expires in every level at its TTL', async () => {
    await put(a, 'brief', 'soon gone', '?ttl=1');
    expect((await read(b, 'brief')).status).toBe(200);
    await until(async () => (await read(a, 'brief')).status === 404 && (await read(b, 'brief')).status === 404, 5000, 50);
    expect(await store.get('brief')).toBeNull();
  });

  it('counts bus messages: what one node sent, the other received, with no gaps', async () => {
    const sa = await stats(a);
    const sb = await stats(b);
    expect(sa.l2.bus.sent).toBeGreaterThan(0);
    expect(sb.l2.bus.received).toBeGreaterThanOrEqual(sa.l2.bus.sent);
    // One gap each: the first subscription (nothing before it is known); none since.
    expect([sa.l2.bus.gaps, sb.l2.bus.gaps]).toEqual([1, 1]);
    const metrics = await (await fetch(`${a.url}/metrics`)).text();
    expect(metrics).toMatch(/^strata_l2_up 1$/m);
    expect(metrics).toMatch(/^strata_cache_hits_total\{level="L2"\} [1-9]/m);
    expect(metrics).toMatch(/^strata_bus_messages_total\{direction="sent"\} [1-9]/m);
    expect(metrics).toMatch(/^strata_l2_duration_seconds_count [1-9]/m);
  });
});

describe('a Redis Cluster that requires a password', () => {
  it('is used through seed URLs carrying the credentials; the password is never shown', async () => {
    const cluster = await RedisCluster.start({ password: 'cluster-s3cret' });
    // The cluster is stopped whatever happens after it started, a node that fails to start included.
    try {
      const seeds = cluster.nodes.map((n) => `redis://:cluster-s3cret@127.0.0.1:${n.port}`);
      const node = await startTestNode({ redisCluster: seeds, shards: 2 });
      try {
        expect(node.l2Status()).toMatchObject({ configured: true, mode: 'cluster', up: true });
        expect(node.internals.l2?.describe()).not.toContain('cluster-s3cret');
        expect((await put(node, 'guarded', 'behind a password')).status).toBe(204);
        expect(await cluster.nodes[0]?.cli('-c', 'exists', 'strata:v1:k:guarded')).toBe('1');
        // A second node, cold, reads it back through the L2.
        const other = await startTestNode({ redisCluster: seeds, shards: 1 });
        try {
          expect(await read(other, 'guarded')).toEqual({ status: 200, body: 'behind a password', cache: 'L2' });
        } finally {
          await other.close();
        }
      } finally {
        await node.close();
      }
    } finally {
      await cluster.stop();
    }
  }, 60_000);
});

describe('L1 admission with an L2', () => {
  it('TinyLFU keeps values read once out of a full L1 (counted); lru takes them all', async () => {
    const redis = await RedisServer.start();
    const writer = await startTestNode({ redisUrl: redis.url, shards: 1 });
    const small = { redisUrl: redis.url, shards: 1, l1MaxBytes: 1024 * 1024, maxValueBytes: 4096 };
    const tinylfu = await startTestNode({ ...small, l1Admission: 'tinylfu' });
    const lru = await startTestNode({ ...small, l1Admission: 'lru' });
    const value = 'v'.repeat(1024);
    const rejects = async (node: Node) => Number(/^strata_l1_admission_rejects_total (\d+)$/m.exec(await (await fetch(`${node.url}/metrics`)).text())?.[1]);
    try {
      // 2,000 values of 1 KiB: twice what a 1 MiB L1 holds.
      for (let i = 0; i < 2000; i += 100) {
        await Promise.all(Array.from({ length: 100 }, (_, j) => put(writer, `once${i + j}`, value)));
      }
      for (const node of [tinylfu, lru]) {
        for (let i = 0; i < 2000; i += 100) {
          const reads = await Promise.all(Array.from({ length: 100 }, (_, j) => read(node, `once${i + j}`)));
          expect(reads.every((r) => r.status === 200 && r.cache === 'L2')).toBe(true);
        }
      }
      expect(await rejects(tinylfu)).toBeGreaterThan(500);
      expect(await rejects(lru)).toBe(0);
      expect((await stats(tinylfu)).levels.L2.admissionRejects).toBe(await rejects(tinylfu));
    } finally {
      await Promise.all([writer.close(), tinylfu.close(), lru.close()]);
      await redis.stop();
    }
  }, 60_000);
});

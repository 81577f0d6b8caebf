import { describe, expect, it } from 'vitest';
import { startTestNode, until } from '../helpers/node.js';
import { freePort, RedisCluster, RedisServer, redisCli } from '../helpers/redis.js';

// Redis down, refusing, hung, failing over: every request ends with an answer (an L1 hit, or
// 503 E_L2_UNAVAILABLE), nothing is left half-written in L1, and the node heals without a restart.

type Node = Awaited<ReturnType<typeof startTestNode>>;

const url = (node: Node, key: string) => `${node.url}/v1/keys/${encodeURIComponent(key)}`;
const put = (node: Node, key: string, body: string) => fetch(url(node, key), { method: 'PUT', body });
async function read(node: Node, key: string): Promise<{ status: number; body: string; cache: string | null; code?: string }> {
  const res = await fetch(url(node, key));
  const body = await res.text();
  const code = res.status >= 400 && body.startsWith('{') ? (JSON.parse(body) as { error: { code: string } }).error.code : undefined;
  return { status: res.status, body, cache: res.headers.get('x-cache'), ...(code === undefined ? {} : { code }) };
}
async function errorCode(res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code;
}
const ready = async (node: Node) => (await fetch(`${node.url}/readyz`)).status === 200;
async function l2Errors(node: Node): Promise<Record<string, number>> {
  const stats = (await (await fetch(`${node.url}/v1/stats`)).json()) as { levels: { L2: { errors: Record<string, number> } } };
  return stats.levels.L2.errors;
}

describe('L2 faults (standalone)', () => {
  it('Redis killed: L1 hits still served, misses and writes 503 E_L2_UNAVAILABLE, not ready; heals when Redis returns', async () => {
    const redis = await RedisServer.start();
    const node = await startTestNode({ redisUrl: redis.url, l2TimeoutMs: 300, shards: 2 });
    try {
      expect((await put(node, 'warm', 'kept')).status).toBe(204);
      await redis.kill();
      expect(await read(node, 'warm')).toMatchObject({ status: 200, body: 'kept', cache: 'L1' });
      expect(await read(node, 'cold')).toMatchObject({ status: 503, code: 'E_L2_UNAVAILABLE' });
      const write = await put(node, 'new', 'lost');
      expect(write.status).toBe(503);
      expect(await errorCode(write)).toBe('E_L2_UNAVAILABLE');
      // The failed write left nothing in L1.
      expect(await read(node, 'new')).toMatchObject({ status: 503, code: 'E_L2_UNAVAILABLE' });
      await until(async () => !(await ready(node)));
      const readyz = (await (await fetch(`${node.url}/readyz`)).json()) as { l2: { up: boolean } };
      expect(readyz.l2.up).toBe(false);
      expect(await fetch(`${node.url}/metrics`).then((r) => r.text())).toMatch(/^strata_l2_up 0$/m);
      const errors = await l2Errors(node);
      expect(Object.values(errors).reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(3);

      await redis.restart();
      await until(() => ready(node), 15_000, 50);
      // The new Redis is empty: the write that failed is not there, and the node writes again.
      expect(await read(node, 'new')).toMatchObject({ status: 404 });
      expect((await put(node, 'new', 'now')).status).toBe(204);
      expect(await read(node, 'new')).toMatchObject({ status: 200, body: 'now' });
      expect(node.internals.pool.workerThreadIds().every((id) => id !== -1)).toBe(true);
    } finally {
      await node.close();
      await redis.stop();
    }
  });

  it('Redis hung (SIGSTOP): requests end at the L2 deadline with 503, L1 hits are served; heals after SIGCONT', async () => {
    const redis = await RedisServer.start();
    // One shard, so that its circuit breaker sees every failure.
    const node = await startTestNode({ redisUrl: redis.url, l2TimeoutMs: 200, shards: 1 });
    try {
      expect((await put(node, 'warm', 'kept')).status).toBe(204);
      redis.pause();
      expect(await read(node, 'warm')).toMatchObject({ status: 200, body: 'kept' });
      for (let i = 0; i < 8; i++) expect(await read(node, `cold${i}`)).toMatchObject({ status: 503, code: 'E_L2_UNAVAILABLE' });
      const write = await put(node, 'warm', 'changed');
      expect(write.status).toBe(503);
      // Timeouts first; then the circuit opens and later calls are refused at once.
      const errors = await l2Errors(node);
      expect(errors.timeout).toBeGreaterThan(0);
      expect(errors.breaker).toBeGreaterThan(0);
      await until(async () => !(await ready(node)));

      redis.resume();
      await until(() => ready(node), 15_000, 50);
      await until(async () => (await read(node, 'cold0')).status === 404, 5000, 50);
      expect((await put(node, 'after', 'fine')).status).toBe(204);
      expect(await read(node, 'after')).toMatchObject({ status: 200, body: 'fine' });
    } finally {
      redis.resume();
      await node.close();
      await redis.stop();
    }
  });

  it('Redis paused (CLIENT PAUSE ALL): misses and writes end at the deadline with 503, and all heals when the pause ends', async () => {
    const redis = await RedisServer.start();
    const node = await startTestNode({ redisUrl: redis.url, l2TimeoutMs: 200, shards: 1 });
    try {
      expect((await put(node, 'warm', 'kept')).status).toBe(204);
      await redisCli(redis.port, 'client', 'pause', '3000', 'ALL');
      expect(await read(node, 'warm')).toMatchObject({ status: 200, body: 'kept' });
      expect(await read(node, 'cold')).toMatchObject({ status: 503, code: 'E_L2_UNAVAILABLE' });
      expect((await put(node, 'other', 'x')).status).toBe(503);
      expect((await l2Errors(node)).timeout).toBeGreaterThan(0);
      // The pause ends by itself after 3 s; nothing is restarted.
      await until(async () => (await read(node, 'cold')).status === 404, 15_000, 100);
      expect((await put(node, 'other', 'y')).status).toBe(204);
      await until(() => ready(node), 15_000, 50);
    } finally {
      await node.close();
      await redis.stop();
    }
  });

  it('a tag invalidate that outlives its deadline (writes paused) leaves nothing stale in any shard once Redis applies it', async () => {
    const redis = await RedisServer.start();
    // Two shards: the tag's own shard sweeps (its connection then waits behind the paused write); the other reads on.
    const node = await startTestNode({ redisUrl: redis.url, l2TimeoutMs: 200, shards: 2 });
    const tagged = ['p1', 'p2', 'p3', 'p4'];
    try {
      for (const key of tagged) {
        expect((await fetch(`${url(node, key)}?tags=tt`, { method: 'PUT', body: key })).status).toBe(204);
        await read(node, key);
      }
      await redisCli(redis.port, 'client', 'pause', '1500', 'WRITE');
      const invalidate = await fetch(`${node.url}/v1/invalidate`, { method: 'POST', body: JSON.stringify({ tags: ['tt'] }) });
      expect(invalidate.status).toBe(503);
      expect(await errorCode(invalidate)).toBe('E_L2_UNAVAILABLE');
      // Meanwhile the other shard reads the old values from Redis again, into its L1.
      const meanwhile = await Promise.all(tagged.map((key) => read(node, key)));
      expect(meanwhile.every((r, i) => (r.status === 200 && r.body === tagged[i]) || r.code === 'E_L2_UNAVAILABLE')).toBe(true);
      expect(meanwhile.some((r) => r.status === 200)).toBe(true);
      // When the pause ends Redis applies the sweep and its bus message: no shard may keep what it read meanwhile.
      // Every value is gone (the lease epoch the sweep moved on stays: docs/leases.md).
      await until(async () => (await redisCli(redis.port, '--scan', '--pattern', 'strata:v1:k:*')) === '', 10_000, 50);
      await until(async () => (await Promise.all(tagged.map((key) => read(node, key)))).every((r) => r.status === 404), 5000, 50);
    } finally {
      await node.close();
      await redis.stop();
    }
  });

  it('concurrent misses for one key cause one L2 read', async () => {
    const redis = await RedisServer.start();
    const node = await startTestNode({ redisUrl: redis.url, l2TimeoutMs: 4000, requestTimeoutMs: 8000, shards: 2 });
    const other = await startTestNode({ redisUrl: redis.url, shards: 1 });
    try {
      expect((await put(other, 'popular', 'once')).status).toBe(204);
      // Hold Redis so that all 20 misses are waiting together, then let it answer.
      redis.pause();
      const reads = Array.from({ length: 20 }, () => read(node, 'popular'));
      await until(async () => {
        const stats = (await (await fetch(`${node.url}/v1/stats`)).json()) as { levels: { L1: { misses: number } } };
        return stats.levels.L1.misses === 20;
      });
      redis.resume();
      const results = await Promise.all(reads);
      expect(results.every((r) => r.status === 200 && r.body === 'once' && r.cache === 'L2')).toBe(true);
      const stats = (await (await fetch(`${node.url}/v1/stats`)).json()) as { levels: { L2: { gets: number; coalesced: number } } };
      expect(stats.levels.L2.gets).toBe(1);
      expect(stats.levels.L2.coalesced).toBe(19);
      expect(await fetch(`${node.url}/metrics`).then((r) => r.text())).toMatch(/^strata_loads_coalesced_total 19$/m);
    } finally {
      redis.resume();
      await Promise.all([node.close(), other.close()]);
      await redis.stop();
    }
  });

  it('a node whose Redis is down at boot starts, is not ready, and heals when Redis appears', async () => {
    const port = await freePort();
    const node = await startTestNode({ redisUrl: `redis://127.0.0.1:${port}`, l2TimeoutMs: 300, shards: 1 });
    let redis: RedisServer | null = null;
    try {
      expect(await ready(node)).toBe(false);
      const write = await put(node, 'k', 'v');
      expect(write.status).toBe(503);
      expect(await errorCode(write)).toBe('E_L2_UNAVAILABLE');
      redis = await RedisServer.start({ port });
      await until(() => ready(node), 15_000, 50);
      expect((await put(node, 'k', 'v')).status).toBe(204);
      expect(await redisCli(port, 'exists', 'strata:v1:k:k')).toBe('1');
    } finally {
      await node.close();
      await redis?.stop();
    }
  });

  it('Redis killed and restarted under load: every request is answered (200, 204, 404 or 503), and all succeed after', async () => {
    const redis = await RedisServer.start();
    const node = await startTestNode({ redisUrl: redis.url, l2TimeoutMs: 300, shards: 2 });
    const seen = new Map<string, number>();
    let stop = false;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const key = `load${(w * 7 + i) % 50}`;
        const res = i % 3 === 0 ? await put(node, key, `v${i}`) : await fetch(url(node, key));
        const label = res.status === 503 ? `503 ${await errorCode(res)}` : String(res.status);
        if (res.status !== 503) await res.arrayBuffer();
        seen.set(label, (seen.get(label) ?? 0) + 1);
      }
    };
    try {
      const workers = [0, 1, 2, 3].map(worker);
      await until(() => (seen.get('204') ?? 0) > 50);
      await redis.kill();
      await until(() => (seen.get('503 E_L2_UNAVAILABLE') ?? 0) > 20);
      await redis.restart();
      await until(() => ready(node), 15_000, 50);
      stop = true;
      await Promise.all(workers);
      expect([...seen.keys()].every((label) => ['200', '204', '404', '503 E_L2_UNAVAILABLE'].includes(label))).toBe(true);
      // After the restart every write and read succeeds again, without restarting the node.
      for (let i = 0; i < 50; i++) expect((await put(node, `after${i}`, 'x')).status).toBe(204);
      for (let i = 0; i < 50; i++) expect((await read(node, `after${i}`)).status).toBe(200);
    } finally {
      stop = true;
      await node.close();
      await redis.stop();
    }
  });
});

describe('L2 faults (cluster)', () => {
  it('a master killed: requests fail fast during the failover and succeed after its replica is promoted, no node restart', async () => {
    const cluster = await RedisCluster.start();
    const writer = await startTestNode({ redisCluster: cluster.seeds, l2TimeoutMs: 300, shards: 2 });
    const reader = await startTestNode({ redisCluster: cluster.seeds, l2TimeoutMs: 300, shards: 2 });
    const keys = Array.from({ length: 60 }, (_, i) => `fo${i}`);
    try {
      for (const key of keys) expect((await put(writer, key, key)).status).toBe(204);
      // Let every replica catch up before its master dies.
      await until(async () => {
        for (const node of cluster.nodes) {
          const info = await redisCli(node.port, 'info', 'replication');
          if (info.includes('role:slave')) {
            const offset = /slave_repl_offset:(\d+)/.exec(info)?.[1];
            const master = /master_port:(\d+)/.exec(info)?.[1];
            const masterInfo = await redisCli(Number(master), 'info', 'replication');
            if (offset !== /master_repl_offset:(\d+)/.exec(masterInfo)?.[1]) return false;
          }
        }
        return true;
      });
      const [victim] = await cluster.masters();
      await victim?.kill();
      const during = await Promise.all(keys.map((key) => read(reader, key)));
      expect(during.every((r, i) => (r.status === 200 && r.body === keys[i]) || (r.status === 503 && r.code === 'E_L2_UNAVAILABLE'))).toBe(true);
      expect(during.some((r) => r.status === 503)).toBe(true);
      // Keys on the masters still up are answered meanwhile, also when batched with the failing master's.
      expect(during.some((r) => r.status === 200)).toBe(true);
      await cluster.waitUntilOk();
      await until(async () => (await Promise.all(keys.map((key) => read(reader, key)))).every((r) => r.status === 200), 30_000, 200);
      for (const key of keys) expect(await read(reader, key)).toMatchObject({ status: 200, body: key });
      for (const key of keys) expect((await put(writer, key, `${key}!`)).status).toBe(204);
      await until(async () => (await Promise.all(keys.map((key) => read(reader, key)))).every((r) => r.body.endsWith('!')), 10_000, 50);
    } finally {
      await Promise.all([writer.close(), reader.close()]);
      await cluster.stop();
    }
  }, 90_000);
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { valueKey } from '../../src/l2/keys.js';
import { until } from '../helpers/node.js';
import { RedisCluster, RedisServer, redisCli } from '../helpers/redis.js';

// The fixtures the L2 suites (issue 3) build on: real redis-server processes on free ports.

describe('redis-server fixture', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start();
  });
  afterAll(() => redis?.stop());

  it('serves on its own port, keeps nothing across a restart', async () => {
    expect(redis.port).not.toBe(6379);
    expect(await redisCli(redis.port, 'set', 'fixture', 'v')).toBe('OK');
    expect(await redisCli(redis.port, 'get', 'fixture')).toBe('v');
    await redis.restart();
    expect(await redisCli(redis.port, 'exists', 'fixture')).toBe('0');
  });
});

describe('Redis Cluster fixture', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await RedisCluster.start();
  }, 60_000);
  afterAll(() => cluster?.stop());

  it('has 3 masters serving all slots, and keys written through one node are read through another', async () => {
    expect(await cluster.masters()).toHaveLength(3);
    const [a, b] = cluster.nodes as [RedisServer, RedisServer];
    for (let i = 0; i < 20; i++) expect(await redisCli(a.port, '-c', 'set', `k${i}`, `v${i}`)).toBe('OK');
    for (let i = 0; i < 20; i++) expect(await redisCli(b.port, '-c', 'get', `k${i}`)).toBe(`v${i}`);
  });

  it('spreads Strata keys whose user part has braces over several slots (no accidental hash tag)', async () => {
    const port = (cluster.nodes[0] as RedisServer).port;
    const slots = new Set<string>();
    for (const key of ['user{1}:a', 'user{1}:b', 'user{1}:c', 'user{1}:d']) slots.add(await redisCli(port, 'cluster', 'keyslot', valueKey(key)));
    expect(slots.size).toBeGreaterThan(1);
    // Unescaped, the same keys would all share the slot of "1".
    const raw = new Set<string>();
    for (const key of ['user{1}:a', 'user{1}:b']) raw.add(await redisCli(port, 'cluster', 'keyslot', `strata:v1:k:${key}`));
    expect(raw.size).toBe(1);
  });

  it('promotes a replica when a master is killed', async () => {
    const [victim] = await cluster.masters();
    await victim?.kill();
    // The other nodes notice after cluster-node-timeout; then the victim's replica becomes a master.
    await until(async () => (await cluster.masters()).length === 3, 30_000, 100);
    await cluster.waitUntilOk();
    expect((await cluster.masters()).map((m) => m.port)).not.toContain(victim?.port);
  }, 60_000);
});

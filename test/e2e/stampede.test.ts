import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OriginRuleInput } from '../../src/origin/rules.js';
import { startTestNode, until } from '../helpers/node.js';
import { TestOrigin } from '../helpers/origin.js';
import { RedisCluster, RedisServer } from '../helpers/redis.js';

// Stampede protection across three nodes sharing a real Redis (standalone, and a 6-node Cluster):
// one origin load (or one lease) for a cold key however many readers ask for it, wherever they ask.

type Node = Awaited<ReturnType<typeof startTestNode>>;

const targets: [string, () => Promise<{ config: { redisUrl: string } | { redisCluster: readonly string[] }; stop: () => Promise<void> }>][] = [
  [
    'standalone',
    async () => {
      const redis = await RedisServer.start();
      return { config: { redisUrl: redis.url }, stop: () => redis.stop() };
    },
  ],
  [
    'cluster',
    async () => {
      const cluster = await RedisCluster.start();
      return { config: { redisCluster: cluster.seeds }, stop: () => cluster.stop() };
    },
  ],
];

interface Stats {
  levels: { L1: { gets: number } };
  coordination: { locks: { acquired: number; waited: number }; leases: { granted: number; filled: number; voided: number }; earlyRefreshes: number };
}
const stats = async (node: Node) => (await (await fetch(`${node.url}/v1/stats`)).json()) as Stats;
const sum = async (nodes: Node[], pick: (s: Stats) => number) => (await Promise.all(nodes.map(stats))).reduce((n, s) => n + pick(s), 0);

describe.each(targets)('stampede protection on three nodes (%s)', (_mode, start) => {
  let env: Awaited<ReturnType<(typeof targets)[number][1]>>;
  let origin: TestOrigin;
  let nodes: Node[];
  beforeAll(async () => {
    origin = await TestOrigin.start();
    env = await start();
    const rules: OriginRuleInput[] = [
      { prefix: 'item:', url: `${origin.url}/items/{id}`, ttl: 60, timeoutMs: 2000 },
      { prefix: 'early:', url: `${origin.url}/early/{id}`, ttl: 2, timeoutMs: 2000 },
    ];
    nodes = await Promise.all([1, 2, 3].map(() => startTestNode({ ...env.config, shards: 2, origins: rules })));
  }, 90_000);
  afterAll(async () => {
    await Promise.all((nodes ?? []).map((n) => n.close()));
    await env?.stop();
    await origin?.stop();
  });

  it('1,000 concurrent reads of one cold key over three nodes cause exactly one origin load', async () => {
    origin.route('/items/cold', { body: 'the one value' });
    origin.hold();
    const before = await sum(nodes, (s) => s.levels.L1.gets);
    const reads = Array.from({ length: 1000 }, (_, i) =>
      fetch(`${(nodes[i % 3] as Node).url}/v1/keys/item:cold`).then(async (r) => [r.status, await r.text()]),
    );
    // Every read has reached its shard (and waits) before the origin answers.
    await until(async () => (await sum(nodes, (s) => s.levels.L1.gets)) - before >= 1000 && origin.hits('/items/cold') >= 1, 20_000, 50);
    expect(origin.hits('/items/cold')).toBe(1);
    origin.release();
    const answers = await Promise.all(reads);
    expect(answers.every(([status, body]) => status === 200 && body === 'the one value')).toBe(true);
    expect(origin.hits('/items/cold')).toBe(1);
    expect(await sum(nodes, (s) => s.coordination.locks.acquired)).toBeGreaterThanOrEqual(1);
    expect(await sum(nodes, (s) => s.coordination.locks.waited)).toBeGreaterThanOrEqual(2);
  }, 60_000);

  it('a failing origin: every waiter on every node gets 502 promptly, from one origin request', async () => {
    origin.route('/items/down', { status: 500, body: 'down' });
    origin.hold();
    const before = await sum(nodes, (s) => s.levels.L1.gets);
    const reads = Array.from({ length: 150 }, (_, i) => fetch(`${(nodes[i % 3] as Node).url}/v1/keys/item:down`).then((r) => r.status));
    await until(async () => (await sum(nodes, (s) => s.levels.L1.gets)) - before >= 150, 20_000, 50);
    origin.release();
    expect(new Set(await Promise.all(reads))).toEqual(new Set([502]));
    expect(origin.hits('/items/down')).toBe(1);
  }, 60_000);

  it('leases: of 1,000 concurrent cache-aside readers over three nodes exactly one gets the lease, the others the value it fills', async () => {
    const url = (i: number) => `${(nodes[i % 3] as Node).url}/v1/keys/aside:cold?lease=5000&wait=3500`;
    let resolveLease!: (token: string) => void;
    const leaseSeen = new Promise<string>((r) => {
      resolveLease = r;
    });
    const reads = Array.from({ length: 1000 }, (_, i) =>
      fetch(url(i)).then(async (r) => {
        const token = r.headers.get('strata-lease');
        if (token !== null) resolveLease(token);
        return { status: r.status, token, body: await r.text() };
      }),
    );
    const token = await leaseSeen;
    // The holder loads from its own database, then fills.
    const fill = await fetch(`${(nodes[0] as Node).url}/v1/keys/aside:cold?ttl=60`, {
      method: 'PUT',
      body: 'filled by the holder',
      headers: { 'strata-lease': token },
    });
    expect(fill.status).toBe(204);
    const answers = await Promise.all(reads);
    const holders = answers.filter((a) => a.token !== null);
    expect(holders.length, JSON.stringify(holders.map((h) => [h.status, h.token, h.body]))).toBe(1);
    const others = answers.filter((a) => a.token === null);
    expect(others.length).toBe(999);
    expect(others.every((a) => a.status === 200 && a.body === 'filled by the holder')).toBe(true);
    expect(await sum(nodes, (s) => s.coordination.leases.granted)).toBe(1);
    expect(await sum(nodes, (s) => s.coordination.leases.filled)).toBe(1);
  }, 60_000);

  it('a lease voided by a DELETE or a tag invalidation stores nothing: 409 E_LEASE_LOST', async () => {
    const [a, b] = nodes as [Node, Node];
    const take = async (key: string) => (await fetch(`${a.url}/v1/keys/${key}?lease=5000`)).headers.get('strata-lease') as string;
    const fill = (key: string, token: string, query = '') =>
      fetch(`${b.url}/v1/keys/${key}${query}`, { method: 'PUT', body: 'late', headers: { 'strata-lease': token } });
    const t1 = await take('aside:deleted');
    expect(t1).toMatch(/^\d+\.[0-9a-f]{32}$/);
    expect((await fetch(`${b.url}/v1/keys/aside:deleted`, { method: 'DELETE' })).status).toBe(204);
    const lost = await fill('aside:deleted', t1);
    expect(lost.status).toBe(409);
    expect(((await lost.json()) as { error: { code: string } }).error.code).toBe('E_LEASE_LOST');
    expect((await fetch(`${a.url}/v1/keys/aside:deleted`)).status).toBe(404);
    const t2 = await take('aside:tagged');
    await fetch(`${b.url}/v1/invalidate`, { method: 'POST', body: JSON.stringify({ tags: ['t1'] }) });
    expect((await fill('aside:tagged', t2, '?tags=t1')).status).toBe(409);
    expect((await fetch(`${a.url}/v1/keys/aside:tagged`)).status).toBe(404);
    // A lease not voided fills, once; the same token again is refused.
    const t3 = await take('aside:kept');
    expect((await fill('aside:kept', t3)).status).toBe(204);
    expect((await fill('aside:kept', t3)).status).toBe(409);
    expect(await (await fetch(`${a.url}/v1/keys/aside:kept`)).text()).toBe('late');
  });

  it('a plain PUT between a lease and its fill voids the lease: the newer value stays; an invalidation counts values, not locks', async () => {
    const [a, b, c] = nodes as [Node, Node, Node];
    const token = (await fetch(`${a.url}/v1/keys/aside:put-between?lease=5000`)).headers.get('strata-lease') as string;
    expect(token).toMatch(/^\d+\.[0-9a-f]{32}$/);
    expect((await fetch(`${c.url}/v1/keys/aside:put-between`, { method: 'PUT', body: 'newer' })).status).toBe(204);
    const late = await fetch(`${b.url}/v1/keys/aside:put-between`, { method: 'PUT', body: 'older', headers: { 'strata-lease': token } });
    expect(late.status).toBe(409);
    expect(((await late.json()) as { error: { code: string } }).error.code).toBe('E_LEASE_LOST');
    for (const node of nodes) expect(await (await fetch(`${node.url}/v1/keys/aside:put-between`)).text()).toBe('newer');
    // A key with a lease out and no value: the invalidation removes the lease and reports no value removed.
    expect((await fetch(`${a.url}/v1/keys/aside:leased-only?lease=5000`)).headers.get('strata-lease')).not.toBeNull();
    const invalidated = await fetch(`${b.url}/v1/invalidate`, { method: 'POST', body: JSON.stringify({ keys: ['aside:leased-only'] }) });
    expect(await invalidated.json()).toEqual({ invalidated: 0 });
  });

  it('a waiter whose wait ends gets 404 with Retry-After; a stale copy is answered STALE instead of waiting', async () => {
    const [a, b] = nodes as [Node, Node];
    const holder = await fetch(`${a.url}/v1/keys/aside:slow?lease=5000`);
    expect(holder.headers.get('strata-lease')).not.toBeNull();
    const waiter = await fetch(`${b.url}/v1/keys/aside:slow?lease=5000&wait=50`);
    expect(waiter.status).toBe(404);
    expect(waiter.headers.get('retry-after')).toBe('1');
    // A value written with a stale window: once stale, lease readers get it at once, and one of them the lease with it.
    expect((await fetch(`${a.url}/v1/keys/aside:stale?ttl=1&swr=60`, { method: 'PUT', body: 'old' })).status).toBe(204);
    await until(async () => (await fetch(`${b.url}/v1/keys/aside:stale`)).headers.get('x-cache') === 'STALE', 5000, 50);
    const readers = await Promise.all([a, b, a, b].map((n) => fetch(`${n.url}/v1/keys/aside:stale?lease=5000&wait=3000`)));
    expect(readers.map((r) => [r.status, r.headers.get('x-cache')])).toEqual(Array(4).fill([200, 'STALE']));
    expect(readers.filter((r) => r.headers.get('strata-lease') !== null).length).toBe(1);
  });

  it('early refresh (XFetch): under steady reads a hot key is refreshed before it expires, and no reader waits for a load', async () => {
    origin.route('/early/hot', { body: (n) => `gen ${n}`, delayMs: 150 });
    const first = await fetch(`${(nodes[0] as Node).url}/v1/keys/early:hot`);
    expect(first.headers.get('x-cache')).toBe('ORIGIN');
    const seen: string[] = [];
    // Steady reads for longer than the 2 s TTL.
    const until = Date.now() + 3500;
    while (Date.now() < until) {
      const res = await fetch(`${(nodes[0] as Node).url}/v1/keys/early:hot`);
      seen.push(res.headers.get('x-cache') ?? '');
      await res.arrayBuffer();
    }
    expect(origin.hits('/early/hot')).toBeGreaterThanOrEqual(2);
    expect(seen.filter((c) => c !== 'L1')).toEqual([]);
    expect((await stats(nodes[0] as Node)).coordination.earlyRefreshes).toBeGreaterThanOrEqual(1);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemberConfig } from '../../src/cluster/members.js';
import { Ring } from '../../src/cluster/ring.js';
import type { StrataFileConfig } from '../../src/config/schema.js';
import type { StrataNode } from '../../src/node.js';
import { CliNode } from '../helpers/cli-node.js';
import { startTestNode, until } from '../helpers/node.js';
import { rawRequest } from '../helpers/raw.js';
import { freePort, RedisServer } from '../helpers/redis.js';

// Many nodes over one Redis: the ring, owner forwarding, membership (docs/cluster.md).

type TestNode = StrataNode & { url: string };

interface ClusterView {
  node: string;
  ring: { fingerprint: string; members: { id: string; weight: number }[] };
  members: { id: string; state: string; registered: boolean }[];
  forwarding: { forwarded: number; fallbacks: { breaker: number; unreachable: number; timeout: number }; servedForPeers: number };
  breakers: Record<string, string>;
}

async function cluster(node: { url: string }): Promise<ClusterView> {
  return (await (await fetch(`${node.url}/v1/cluster`)).json()) as ClusterView;
}

async function get(node: { url: string }, key: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${node.url}/v1/keys/${encodeURIComponent(key)}`, { headers });
  return { status: res.status, node: res.headers.get('x-strata-node'), cache: res.headers.get('x-cache'), body: await res.text() };
}

async function put(node: { url: string }, key: string, value: string, query = ''): Promise<void> {
  const res = await fetch(`${node.url}/v1/keys/${encodeURIComponent(key)}${query}`, { method: 'PUT', body: value });
  expect(res.status).toBe(204);
  expect(res.headers.get('x-strata-node')).not.toBeNull();
}

/** A key the ring gives to `owner`. */
function keyOwnedBy(ring: Ring, owner: string, prefix: string): string {
  for (let i = 0; ; i++) if (ring.owner(`${prefix}${i}`) === owner) return `${prefix}${i}`;
}

const HOP = { 'x-strata-hop': 'test' };

describe('three nodes with static members', () => {
  let redis: RedisServer;
  const ids = ['n1', 'n2', 'n3'];
  let members: MemberConfig[];
  let ring: Ring;
  const nodes = new Map<string, TestNode>();
  const extra: TestNode[] = [];
  const start = async (id: string, options: StrataFileConfig = {}) => {
    const port = Number(new URL((members.find((m) => m.id === id) as MemberConfig).url).port);
    const node = await startTestNode({ port, nodeId: id, members, redisUrl: redis.url, shards: 1, fronts: 1, ...options });
    nodes.set(id, node);
    return node;
  };
  const node = (id: string) => nodes.get(id) as TestNode;

  beforeAll(async () => {
    redis = await RedisServer.start();
    members = [];
    for (const id of ids) members.push({ id, url: `http://127.0.0.1:${await freePort()}`, weight: 1 });
    ring = new Ring(members);
    for (const id of ids) await start(id);
  });
  afterAll(async () => {
    await Promise.all([...nodes.values(), ...extra].map((n) => n.close()));
    await redis?.stop();
  });

  it('every node has the same ring, the one any process computes from the members', async () => {
    for (const id of ids) {
      const view = await cluster(node(id));
      expect(view.node).toBe(id);
      expect(view.ring.fingerprint).toBe(ring.fingerprint);
      expect(view.ring.members.map((m) => m.id)).toEqual(ids);
    }
  });

  it('answers a key from its owner through every node, each answer naming the node that served it', async () => {
    const before = await Promise.all(ids.map(async (id) => (await cluster(node(id))).forwarding));
    const keys = Array.from({ length: 30 }, (_, i) => `user:${i}`);
    for (const key of keys) await put(node('n1'), key, `v-${key}`);
    const owners = new Set<string>();
    for (const key of keys) {
      const owner = ring.owner(key);
      owners.add(owner);
      for (const id of ids) {
        const answer = await get(node(id), key);
        expect(answer).toMatchObject({ status: 200, node: owner, body: `v-${key}` });
      }
    }
    expect(owners.size).toBe(3);
    // A miss and an error carry the serving node too.
    const missing = keyOwnedBy(ring, 'n2', 'missing:');
    expect(await get(node('n1'), missing)).toMatchObject({ status: 404, node: 'n2' });
    const after = await Promise.all(ids.map(async (id) => (await cluster(node(id))).forwarding));
    ids.forEach((_, i) => {
      // Each node forwarded the keys it does not own (2 of 3 reads of every key happen on a non-owner).
      expect((after[i]?.forwarded ?? 0) - (before[i]?.forwarded ?? 0)).toBeGreaterThan(0);
      expect((after[i]?.servedForPeers ?? 0) - (before[i]?.servedForPeers ?? 0)).toBeGreaterThan(0);
    });
    // The owner caches the key: a second read through another node is an L1 hit at the owner.
    const key = keyOwnedBy(ring, 'n3', 'user:');
    expect(await get(node('n1'), key)).toMatchObject({ node: 'n3', cache: 'L1' });
    const head = await fetch(`${node('n2').url}/v1/keys/${key}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('x-strata-node')).toBe('n3');
    expect(head.headers.get('content-length')).toBe(String(`v-${key}`.length));
  });

  it("forwards keys that arrive as raw UTF-8 in the path, and a client cannot trip a peer's breaker with them", async () => {
    const keys = Array.from({ length: 400 }, (_, i) => `ключ-é-${i}`).filter((k) => ring.owner(k) === 'n2');
    for (const key of keys.slice(0, 4)) {
      await put(node('n1'), key, `v-${key}`);
      const reply = await rawRequest(node('n1').port, Buffer.from(`GET /v1/keys/${key} HTTP/1.1\r\nHost: x\r\n\r\n`, 'utf8'));
      expect(reply.text).toMatch(/^HTTP\/1\.1 200 /);
      expect(reply.text).toMatch(/x-strata-node: n2\r\n/i);
      // The raw reply is read as latin1: the value's UTF-8 bytes, byte for byte.
      expect(reply.text.endsWith(Buffer.from(`v-${key}`, 'utf8').toString('latin1'))).toBe(true);
    }
    expect((await cluster(node('n1'))).breakers.n2).toBe('closed');
  });

  it('writes and deletes go to the owner too: a read through any node sees them at once, and no other L1 keeps a copy', async () => {
    const key = keyOwnedBy(ring, 'n2', 'write:');
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${node(ids[i % 3] as string).url}/v1/keys/${key}`, { method: 'PUT', body: `v${i}` });
      expect(res.status).toBe(204);
      expect(res.headers.get('x-strata-node')).toBe('n2');
      // Read your write, through another node, with no wait for the bus.
      expect(await get(node(ids[(i + 1) % 3] as string), key)).toMatchObject({ status: 200, node: 'n2', cache: 'L1', body: `v${i}` });
    }
    // Asked as if forwarded, n1 serves the key itself: from the L2, since its L1 never took the writes.
    expect(await get(node('n1'), key, HOP)).toMatchObject({ status: 200, node: 'n1', cache: 'L2', body: 'v19' });
    const del = await fetch(`${node('n3').url}/v1/keys/${key}`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    expect(del.headers.get('x-strata-node')).toBe('n2');
    expect(await get(node('n1'), key)).toMatchObject({ status: 404, node: 'n2' });
  });

  it('never forwards a forwarded request, even between nodes whose rings disagree', async () => {
    const key = keyOwnedBy(ring, 'n2', 'hop:');
    await put(node('n1'), key, 'x');
    // Marked as forwarded: n1 serves it itself although n2 owns it.
    const before = (await cluster(node('n1'))).forwarding;
    expect(await get(node('n1'), key, HOP)).toMatchObject({ status: 200, node: 'n1' });
    const after = (await cluster(node('n1'))).forwarding;
    expect(after.forwarded).toBe(before.forwarded);
    expect(after.servedForPeers).toBe(before.servedForPeers + 1);
    // A fourth node that knows only n1 and itself: its ring sends some of n2's keys to n1, which must not send them on.
    const partial = [members[0] as MemberConfig, { id: 'n4', url: `http://127.0.0.1:${await freePort()}`, weight: 1 }];
    const n4 = await startTestNode({
      port: Number(new URL((partial[1] as MemberConfig).url).port),
      nodeId: 'n4',
      members: partial,
      redisUrl: redis.url,
      shards: 1,
      fronts: 1,
    });
    extra.push(n4);
    const disputed = Array.from({ length: 200 }, (_, i) => `dispute:${i}`).find((k) => ring.owner(k) === 'n2' && new Ring(partial).owner(k) === 'n1') as string;
    await put(node('n1'), disputed, 'y');
    const n1Before = (await cluster(node('n1'))).forwarding;
    expect(await get(n4, disputed)).toMatchObject({ status: 200, node: 'n1', body: 'y' });
    const n1After = (await cluster(node('n1'))).forwarding;
    expect(n1After.forwarded).toBe(n1Before.forwarded);
    expect(n1After.servedForPeers).toBe(n1Before.servedForPeers + 1);
  });

  it('invalidations reach every node', async () => {
    const key = 'inv:1';
    await put(node('n2'), key, 'old', '?tags=group');
    // Read through every node as if forwarded to it: each serves and caches it itself.
    for (const id of ids) expect(await get(node(id), key, HOP)).toMatchObject({ status: 200, node: id, body: 'old' });
    for (const id of ids) expect(await get(node(id), key, HOP)).toMatchObject({ cache: 'L1' });
    await put(node('n3'), key, 'new', '?tags=group');
    for (const id of ids) await until(async () => (await get(node(id), key, HOP)).body === 'new');
    const res = await fetch(`${node('n1').url}/v1/invalidate`, { method: 'POST', body: JSON.stringify({ tags: ['group'] }) });
    expect(res.status).toBe(200);
    for (const id of ids) await until(async () => (await get(node(id), key, HOP)).status === 404);
  });

  it('serves an owner-down key itself, counted, and forwards again once the owner is back', async () => {
    const key = keyOwnedBy(ring, 'n3', 'down:');
    await put(node('n1'), key, 'kept');
    expect(await get(node('n1'), key)).toMatchObject({ node: 'n3' });
    await node('n3').close();
    nodes.delete('n3');
    const before = (await cluster(node('n1'))).forwarding;
    for (let i = 0; i < 5; i++) expect(await get(node('n1'), key)).toMatchObject({ status: 200, node: 'n1', body: 'kept' });
    const view = await cluster(node('n1'));
    expect(view.forwarding.fallbacks.unreachable - before.fallbacks.unreachable).toBeGreaterThanOrEqual(3);
    // After three failures in a row the breaker is open: the next reads do not even try.
    expect(view.forwarding.fallbacks.breaker).toBeGreaterThan(before.fallbacks.breaker);
    expect(view.breakers.n3).not.toBe('closed');
    // A write to the missing owner's key is taken here, and read back here.
    const res = await fetch(`${node('n1').url}/v1/keys/${key}`, { method: 'PUT', body: 'while down' });
    expect(res.status).toBe(204);
    expect(res.headers.get('x-strata-node')).toBe('n1');
    expect(await get(node('n1'), key)).toMatchObject({ status: 200, node: 'n1', body: 'while down' });
    await start('n3');
    await until(async () => (await get(node('n1'), key)).node === 'n3', 10_000, 100);
    expect((await cluster(node('n1'))).breakers.n3).toBe('closed');
  });
});

describe('membership through the registry', () => {
  let redis: RedisServer;
  const nodes: TestNode[] = [];
  const cli: CliNode[] = [];

  const ringOf = async (node: { url: string }) => (await cluster(node)).ring.members.map((m) => m.id);

  beforeAll(async () => {
    redis = await RedisServer.start();
    for (const id of ['r1', 'r2']) nodes.push(await startTestNode({ nodeId: id, registry: true, redisUrl: redis.url, shards: 1, fronts: 1 }));
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.close()));
    await Promise.all(cli.map((n) => n.stop()));
    await redis?.stop();
  });

  it('a node joins without a restart, leaves when it stops, and is dropped when it dies', async () => {
    const [r1, r2] = nodes as [TestNode, TestNode];
    await until(async () => (await ringOf(r1)).length === 2 && (await ringOf(r2)).length === 2);
    const r3 = await startTestNode({ nodeId: 'r3', registry: true, redisUrl: redis.url, shards: 1, fronts: 1 });
    await until(async () => (await ringOf(r1)).includes('r3') && (await ringOf(r2)).includes('r3'));
    const views = await Promise.all([r1, r2, r3].map(cluster));
    expect(new Set(views.map((v) => v.ring.fingerprint)).size).toBe(1);
    expect(views[0]?.members.find((m) => m.id === 'r3')).toMatchObject({ state: 'up', registered: true });
    // Keys the new node owns are forwarded to it.
    const ring = new Ring(['r1', 'r2', 'r3'].map((id) => ({ id, weight: 1 })));
    const key = keyOwnedBy(ring, 'r3', 'join:');
    await put(r1, key, 'j');
    expect(await get(r2, key)).toMatchObject({ status: 200, node: 'r3' });

    // A graceful stop leaves at once (announced), before its record would expire.
    await r3.close();
    await until(async () => !(await ringOf(r1)).includes('r3') && !(await ringOf(r2)).includes('r3'), 2000);
    expect(await get(r2, key)).toMatchObject({ status: 200, body: 'j' });

    // A node that dies says nothing: it goes once its record expired and the grace period passed.
    const dead = await CliNode.start({ nodeId: 'r4', registry: true, redisUrl: redis.url, shards: 1, fronts: 1 });
    cli.push(dead);
    await until(async () => (await ringOf(r1)).includes('r4'));
    dead.signal('SIGKILL');
    await until(async () => (await cluster(r1)).members.find((m) => m.id === 'r4')?.state === 'suspect', 8000, 100);
    await until(async () => !(await ringOf(r1)).includes('r4') && !(await ringOf(r2)).includes('r4'), 10_000, 100);

    // And a node that comes back rejoins.
    nodes.push(await startTestNode({ nodeId: 'r3', registry: true, redisUrl: redis.url, shards: 1, fronts: 1 }));
    await until(async () => (await ringOf(r1)).includes('r3') && (await ringOf(r2)).includes('r3'));
  }, 40_000);
});

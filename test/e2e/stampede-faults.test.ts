import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliNode } from '../helpers/cli-node.js';
import { until } from '../helpers/node.js';
import { TestOrigin } from '../helpers/origin.js';
import { RedisServer, redisCli } from '../helpers/redis.js';

// The holder of a key's lock dies (SIGKILL) or freezes (SIGSTOP) in the middle of its load: nodes in
// processes of their own, a real Redis, and the test's origin holding the holder's request.

let origin: TestOrigin;
let redis: RedisServer;
const nodes: CliNode[] = [];

beforeAll(async () => {
  origin = await TestOrigin.start();
  redis = await RedisServer.start();
}, 30_000);
afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await Promise.all([redis?.stop(), origin?.stop()]);
});

async function node(lockTtlMs?: number): Promise<CliNode> {
  const rule = { prefix: 'f:', url: `${origin.url}/f/{id}`, ttl: 60, timeoutMs: 2000, ...(lockTtlMs === undefined ? {} : { lockTtlMs }) };
  const n = await CliNode.start({ redisUrl: redis.url, shards: 1, origins: [rule] });
  nodes.push(n);
  return n;
}
const stats = async (n: CliNode) =>
  ((await (await fetch(`${n.url}/v1/stats`)).json()) as { coordination: { locks: { waited: number; takeovers: number; lost: number } } }).coordination.locks;

describe('a lock holder that fails mid-load', () => {
  it('killed (SIGKILL): its lock expires and a waiting node takes the load over and completes it', async () => {
    const [a, b] = await Promise.all([node(), node()]);
    origin.route('/f/killed', { body: (n) => `load ${n}` });
    origin.hold();
    const lost = fetch(`${a.url}/v1/keys/f:killed`).catch(() => null);
    await origin.arrived(origin.received.length + 1);
    const waiting = fetch(`${b.url}/v1/keys/f:killed`);
    await until(async () => (await stats(b)).waited >= 1);
    a.signal('SIGKILL');
    origin.release(true);
    const res = await waiting;
    expect(res.status).toBe(200);
    expect(res.headers.get('x-cache')).toBe('ORIGIN');
    expect(await res.text()).toBe('load 2');
    expect((await stats(b)).takeovers).toBe(1);
    expect(origin.hits('/f/killed')).toBe(2);
    expect(await lost).toBeNull();
  }, 30_000);

  it('frozen (SIGSTOP) past its lock: another node takes over, and the late fill of the frozen one is refused (fencing)', async () => {
    // A lock shorter than the load's own deadline: the frozen holder can still finish its load after it lost the lock.
    const [a, b] = await Promise.all([node(300), node(300)]);
    origin.route('/f/frozen', { body: (n) => `load ${n}` });
    origin.hold();
    const slow = fetch(`${a.url}/v1/keys/f:frozen`);
    await origin.arrived(origin.received.length + 1);
    a.signal('SIGSTOP');
    // b waits, sees the lock expire, takes over and loads (this request is answered at once).
    const res = await fetch(`${b.url}/v1/keys/f:frozen`);
    expect([res.status, await res.text()]).toEqual([200, 'load 2']);
    expect((await stats(b)).takeovers).toBe(1);
    // The frozen holder's origin answer arrives, then it resumes and tries to fill.
    origin.release();
    a.signal('SIGCONT');
    expect(await (await slow).text()).toBe('load 1');
    await until(async () => (await stats(a)).lost === 1);
    // The newer value stays: in Redis, and on both nodes.
    expect(await redisCli(redis.port, '--no-raw', 'exists', 'strata:v1:k:f:frozen')).toBe('(integer) 1');
    expect(await (await fetch(`${b.url}/v1/keys/f:frozen`)).text()).toBe('load 2');
    const fresh = await node(300);
    expect(await (await fetch(`${fresh.url}/v1/keys/f:frozen`)).text()).toBe('load 2');
  }, 30_000);
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OriginRuleInput } from '../../src/origin/rules.js';
import { startTestNode, until } from '../helpers/node.js';
import { TestOrigin } from '../helpers/origin.js';
import { freePort, RedisServer, redisCli } from '../helpers/redis.js';

// Read-through from an HTTP origin written for the test, through two nodes sharing a real Redis.

type Node = Awaited<ReturnType<typeof startTestNode>>;
let origin: TestOrigin;
let redis: RedisServer;
let a: Node;
let b: Node;

const rules = (): OriginRuleInput[] => [
  { prefix: 'user:', url: `${origin.url}/users/{id}`, ttl: 60, negativeTtl: 30, timeoutMs: 1000, headers: { 'X-Origin-Key': 'u-456' } },
  { prefix: 'swr:', url: `${origin.url}/swr/{id}`, ttl: 1, staleWhileRevalidate: 60, timeoutMs: 1000 },
  { prefix: 'sie:', url: `${origin.url}/sie/{id}`, ttl: 1, staleIfError: 60, timeoutMs: 1000 },
  { prefix: 'cond:', url: `${origin.url}/cond/{id}`, ttl: 1, staleWhileRevalidate: 60, timeoutMs: 1000 },
  { prefix: 'slow:', url: `${origin.url}/slow/{id}`, ttl: 1, staleIfError: 60, softTimeoutMs: 100, timeoutMs: 1500 },
  { prefix: 'busy:', url: `${origin.url}/busy/{id}`, maxConcurrent: 1, timeoutMs: 1000 },
  { prefix: 'wt:', url: `${origin.url}/wt/{id}`, writeThrough: 'PUT', headers: { 'x-api-key': 'k-123' }, timeoutMs: 1000 },
];

beforeAll(async () => {
  origin = await TestOrigin.start();
  redis = await RedisServer.start();
  // No early refresh (XFetch, tested in stampede.test.ts): these tests poll a 1 s value until it is
  // stale, and a poll that refreshed it early would move the origin's answer on by one (v2 became v3).
  const options = { redisUrl: redis.url, shards: 2, origins: rules(), earlyRefreshBeta: 0 };
  [a, b] = await Promise.all([startTestNode(options), startTestNode(options)]);
}, 60_000);
afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  await Promise.all([redis?.stop(), origin?.stop()]);
});

const get = (node: Node, key: string) => fetch(`${node.url}/v1/keys/${encodeURIComponent(key)}`);
async function read(node: Node, key: string) {
  const res = await get(node, key);
  return { status: res.status, cache: res.headers.get('x-cache'), type: res.headers.get('content-type'), body: await res.text() };
}
async function errorOf(res: Response) {
  return ((await res.json()) as { error: { code: string; originStatus?: number } }).error;
}

describe('read-through origins', () => {
  it('loads a miss from the origin (x-cache: ORIGIN), then serves it from L1 and, on the other node, from the L2', async () => {
    origin.route('/users/1', { body: '{"id":1}', headers: { 'content-type': 'application/json' } });
    expect(await read(a, 'user:1')).toEqual({ status: 200, cache: 'ORIGIN', type: 'application/json', body: '{"id":1}' });
    expect((await read(a, 'user:1')).cache).toBe('L1');
    expect(await read(b, 'user:1')).toMatchObject({ status: 200, cache: 'L2', body: '{"id":1}' });
    expect(origin.hits('/users/1')).toBe(1);
    // Keys outside every rule are plain cache keys.
    expect((await get(a, 'other:1')).status).toBe(404);
  });

  it('encodes the id into the URL and sends the rule’s headers', async () => {
    origin.route('/users/a%2Fb%20c', { body: 'odd id' });
    expect((await read(a, 'user:a/b c')).body).toBe('odd id');
    const request = origin.received.find((r) => r.path === '/users/a%2Fb%20c');
    expect(request?.headers['user-agent']).toBe('strata');
    // The rule's headers go with every load (header names are sent lower-cased).
    expect(request?.headers['x-origin-key']).toBe('u-456');
    expect(origin.received.filter((r) => r.path.startsWith('/users/')).map((r) => r.headers['x-origin-key'])).not.toContain(undefined);
  });

  it('remembers an origin 404 for negativeTtl: 404 without asking again', async () => {
    const first = await get(a, 'user:404');
    expect(first.status).toBe(404);
    expect(first.headers.get('x-cache')).toBe('ORIGIN');
    expect((await errorOf(first)).code).toBe('E_KEY_NOT_FOUND');
    const again = await get(a, 'user:404');
    expect([again.status, again.headers.get('x-cache')]).toEqual([404, 'L1']);
    expect((await get(b, 'user:404')).headers.get('x-cache')).toBe('L2');
    expect(origin.hits('/users/404')).toBe(1);
  });

  it('an origin 5xx is 502 E_ORIGIN_ERROR with its status, not cached; a slow origin 504 E_ORIGIN_TIMEOUT', async () => {
    origin.route('/users/500', { status: 500, body: 'boom' });
    const res = await get(a, 'user:500');
    expect(res.status).toBe(502);
    expect(await errorOf(res)).toMatchObject({ code: 'E_ORIGIN_ERROR', originStatus: 500 });
    // The failure is remembered for a moment on every node: no second request, and the same answer.
    const again = await get(b, 'user:500');
    expect(again.status).toBe(502);
    expect(await errorOf(again)).toMatchObject({ code: 'E_ORIGIN_ERROR', originStatus: 500 });
    expect(origin.hits('/users/500')).toBe(1);
    await until(async () => (await get(a, 'user:500')).status === 502 && origin.hits('/users/500') === 2, 5000, 100);
    origin.route('/users/slow', { body: 'late' });
    origin.hold();
    const slow = await get(a, 'user:slow');
    expect(slow.status).toBe(504);
    expect((await errorOf(slow)).code).toBe('E_ORIGIN_TIMEOUT');
    origin.release();
  });

  it('honours Cache-Control: no-store and private are never cached, s-maxage wins over max-age', async () => {
    origin.route('/users/nostore', { body: 'fresh each time', headers: { 'cache-control': 'no-store' } });
    origin.route('/users/private', { body: 'mine', headers: { 'cache-control': 'private, max-age=600' } });
    for (let i = 0; i < 3; i++) {
      expect((await read(a, 'user:nostore')).cache).toBe('ORIGIN');
      expect((await read(a, 'user:private')).cache).toBe('ORIGIN');
    }
    expect(origin.hits('/users/nostore')).toBe(3);
    expect(origin.hits('/users/private')).toBe(3);
    origin.route('/users/shared', { body: 's', headers: { 'cache-control': 'max-age=0, s-maxage=600' } });
    await read(a, 'user:shared');
    expect((await read(a, 'user:shared')).cache).toBe('L1');
    expect(origin.hits('/users/shared')).toBe(1);
  });

  it('stale-while-revalidate: a stale value is answered at once (STALE) and refreshed exactly once', async () => {
    origin.route('/swr/1', { body: (n) => `v${n}` });
    expect((await read(a, 'swr:1')).body).toBe('v1');
    // ttl 1 s: wait until it is stale.
    await until(async () => (await read(a, 'swr:1')).cache === 'STALE', 5000, 50);
    const answers = await Promise.all(Array.from({ length: 20 }, () => read(a, 'swr:1')));
    expect(answers.every((r) => r.status === 200 && (r.cache === 'STALE' || r.body === 'v2'))).toBe(true);
    await until(async () => (await read(a, 'swr:1')).body === 'v2');
    expect(origin.hits('/swr/1')).toBe(2);
  });

  it('refreshes conditionally: If-None-Match with the origin’s ETag, and a 304 keeps the value, fresh again', async () => {
    origin.route('/cond/1', { body: (n) => `body ${n}`, etag: '"v1"', headers: { 'last-modified': 'Tue, 01 Dec 2026 10:00:00 GMT' } });
    expect((await read(a, 'cond:1')).body).toBe('body 1');
    await until(async () => (await read(a, 'cond:1')).cache === 'STALE', 5000, 50);
    await until(async () => (await read(a, 'cond:1')).cache === 'L1', 5000, 20);
    expect((await read(a, 'cond:1')).body).toBe('body 1');
    const refresh = origin.received.filter((r) => r.path === '/cond/1')[1];
    expect(refresh?.headers['if-none-match']).toBe('"v1"');
    expect(refresh?.headers['if-modified-since']).toBe('Tue, 01 Dec 2026 10:00:00 GMT');
    const stats = (await (await fetch(`${a.url}/v1/stats`)).json()) as { origins: { name: string; notModified: number }[] };
    expect(stats.origins.find((o) => o.name === 'cond:')?.notModified).toBe(1);
  });

  it('stale-if-error: a stale value is answered when the refresh fails, and the error when there is none', async () => {
    origin.route('/sie/1', { body: 'good' });
    expect((await read(a, 'sie:1')).body).toBe('good');
    origin.route('/sie/1', { status: 503, body: 'down' });
    await until(async () => origin.hits('/sie/1') >= 2 || (await read(a, 'sie:1')).cache === 'STALE', 5000, 50);
    expect(await read(a, 'sie:1')).toMatchObject({ status: 200, cache: 'STALE', body: 'good' });
    origin.route('/sie/2', { status: 503, body: 'down' });
    expect((await get(a, 'sie:2')).status).toBe(502);
  });

  it('softTimeoutMs: a slow refresh answers the stale copy and goes on to update the cache', async () => {
    origin.route('/slow/1', { body: (n) => `s${n}` });
    expect((await read(b, 'slow:1')).body).toBe('s1');
    await until(
      async () => {
        origin.hold();
        const r = await read(b, 'slow:1');
        if (r.cache !== 'STALE') origin.release(true);
        return r.cache === 'STALE';
      },
      10_000,
      50,
    );
    // The held request is the load that went on: once it is answered, its value is the cache's.
    const held = `s${origin.hits('/slow/1')}`;
    origin.release(true);
    await until(async () => (await read(b, 'slow:1')).body === held);
  });

  it('maxConcurrent: a load beyond it gets 503 E_ORIGIN_BUSY with Retry-After', async () => {
    origin.route('/busy/1', { body: 'one' });
    origin.route('/busy/2', { body: 'two' });
    origin.hold();
    const first = read(a, 'busy:1');
    await origin.arrived(origin.received.length + 1);
    // The same node's other shard or this one: the limit is per node.
    const results = await Promise.all([get(a, 'busy:2')]);
    const busy = results[0] as Response;
    expect(busy.status).toBe(503);
    expect(busy.headers.get('retry-after')).toBe('1');
    expect((await errorOf(busy)).code).toBe('E_ORIGIN_BUSY');
    origin.release();
    expect((await first).body).toBe('one');
  });

  it('write-through: the origin takes the PUT first; a failing origin leaves the cache untouched and answers 502 with its status', async () => {
    origin.route('/wt/1', { body: 'from origin' });
    const put = await fetch(`${a.url}/v1/keys/wt:1`, { method: 'PUT', body: 'written', headers: { 'content-type': 'text/plain' } });
    expect(put.status).toBe(204);
    const sent = origin.received.filter((r) => r.path === '/wt/1' && r.method === 'PUT');
    expect(sent.map((r) => [r.body, r.headers['content-type'], r.headers['x-api-key']])).toEqual([['written', 'text/plain', 'k-123']]);
    expect(await read(b, 'wt:1')).toMatchObject({ status: 200, body: 'written' });
    origin.route('/wt/1', { status: 500 });
    const failed = await fetch(`${a.url}/v1/keys/wt:1`, { method: 'PUT', body: 'lost' });
    expect(failed.status).toBe(502);
    expect(await errorOf(failed)).toMatchObject({ code: 'E_ORIGIN_ERROR', originStatus: 500 });
    expect((await read(a, 'wt:1')).body).toBe('written');
    expect((await read(b, 'wt:1')).body).toBe('written');
  });

  it('mget reads the cache only: an origin key not cached is null, never loaded', async () => {
    const before = origin.received.length;
    const res = await fetch(`${a.url}/v1/mget`, { method: 'POST', body: JSON.stringify({ keys: ['user:1', 'user:never'] }) });
    expect(await res.json()).toEqual({ values: { 'user:1': Buffer.from('{"id":1}').toString('base64'), 'user:never': null } });
    expect(origin.received.length).toBe(before);
  });

  it('with the L2 unreachable, an origin key is still loaded and answered (one load per node), and the failure counted', async () => {
    const dead = await freePort();
    const lonely = await startTestNode({ redisUrl: `redis://127.0.0.1:${dead}`, shards: 1, origins: rules() });
    try {
      origin.route('/users/nol2', { body: 'from the origin' });
      // Readers of one key all in flight behind one held origin request: the shard's single-flight shares it.
      const readers = 8;
      origin.hold();
      const pending = Array.from({ length: readers }, () => get(lonely, 'user:nol2'));
      const joined = async () => Number(/^strata_loads_joined_total (\d+)$/m.exec(await (await fetch(`${lonely.url}/metrics`)).text())?.[1]);
      await until(async () => origin.hits('/users/nol2') > 1 || (await joined()) === readers - 1);
      origin.release();
      const answers = await Promise.all(pending);
      expect(origin.hits('/users/nol2')).toBe(1);
      expect(await joined()).toBe(readers - 1);
      for (const res of answers) expect([res.status, res.headers.get('x-cache'), await res.text()]).toEqual([200, 'ORIGIN', 'from the origin']);
      expect((await read(lonely, 'user:nol2')).cache).toBe('L1');
      expect(origin.hits('/users/nol2')).toBe(1);
      const stats = (await (await fetch(`${lonely.url}/v1/stats`)).json()) as { levels: { L2: { errors: Record<string, number> } } };
      expect(Object.values(stats.levels.L2.errors).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    } finally {
      await lonely.close();
    }
  });

  it('counts loads, results and duration per origin in /metrics and /v1/stats', async () => {
    const text = await (await fetch(`${a.url}/metrics`)).text();
    expect(text).toMatch(/strata_origin_requests_total\{origin="user:",result="value"\} [1-9]/);
    expect(text).toMatch(/strata_origin_requests_total\{origin="user:",result="error"\} [1-9]/);
    expect(text).toMatch(/strata_origin_request_duration_seconds_count\{origin="user:"\} [1-9]/);
    const stats = (await (await fetch(`${a.url}/v1/stats`)).json()) as { origins: { name: string; loads: number }[] };
    expect(stats.origins.find((o) => o.name === 'user:')?.loads).toBeGreaterThan(0);
    expect(await redisCli(redis.port, 'exists', 'strata:v1:k:user:1')).toBe('1');
  });
});

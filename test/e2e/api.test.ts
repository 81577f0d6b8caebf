import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';
import { shardOf } from '../../src/shards/route.js';
import { startTestNode, until } from '../helpers/node.js';
import { rawRequest } from '../helpers/raw.js';

type Node = Awaited<ReturnType<typeof startTestNode>>;
let node: Node;

beforeAll(async () => {
  node = await startTestNode({ shards: 3, maxValueBytes: 64 * 1024, maxTtl: 3600 });
});
afterAll(async () => {
  await node?.close();
});

const url = (path: string) => `${node.url}${path}`;
const put = (key: string, body: string | Uint8Array, query = '', headers: Record<string, string> = {}) =>
  fetch(url(`/v1/keys/${encodeURIComponent(key)}${query}`), { method: 'PUT', body, headers });
const get = (key: string, method = 'GET') => fetch(url(`/v1/keys/${encodeURIComponent(key)}`), { method });

async function expectError(res: Response, code: keyof typeof ERROR_CODES): Promise<void> {
  expect(res.status).toBe(ERROR_CODES[code].status);
  expect(res.headers.get('content-type')).toBe('application/json');
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(0);
}

async function stats() {
  return (await (await fetch(url('/v1/stats'))).json()) as {
    levels: { L1: { gets: number; hits: number; misses: number; sets: number; deletes: number; items: number; bytes: number } };
    shards: { shard: number; up: boolean; l1: { gets: number; hits: number; sets: number; items: number } }[];
  };
}

describe('keys', () => {
  it('PUT stores a value with its content type; GET and HEAD return it with x-cache, age and etag', async () => {
    const res = await put('greeting', 'hello world', '?ttl=60', { 'content-type': 'text/plain; charset=utf-8' });
    expect(res.status).toBe(204);
    expect(res.headers.get('content-length')).toBeNull();
    const hit = await get('greeting');
    expect(hit.status).toBe(200);
    expect(await hit.text()).toBe('hello world');
    expect(hit.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(hit.headers.get('x-cache')).toBe('L1');
    expect(Number(hit.headers.get('age'))).toBeGreaterThanOrEqual(0);
    const etag = hit.headers.get('etag');
    expect(etag).toMatch(/^"[0-9a-f]{8}-[0-9a-f]+"$/);
    const head = await get('greeting', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('11');
    expect(head.headers.get('etag')).toBe(etag);
    expect(await head.text()).toBe('');
  });

  it('keeps binary values byte for byte and defaults the content type', async () => {
    const bytes = new Uint8Array(40_000).map((_, i) => (i * 7) & 0xff);
    expect((await put('bin', bytes)).status).toBe(204);
    const res = await get('bin');
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
  });

  it('percent-decodes keys: "a/b c" and "a%2Fb%20c" are the same key, unicode works', async () => {
    await put('a/b c', 'slash');
    const res = await fetch(url('/v1/keys/a%2Fb%20c'));
    expect(await res.text()).toBe('slash');
    await put('ключ-😀', 'unicode');
    expect(await (await get('ключ-😀')).text()).toBe('unicode');
  });

  it('overwrites change the value and the etag', async () => {
    await put('versioned', 'one');
    const first = (await get('versioned')).headers.get('etag');
    await put('versioned', 'two');
    const second = await get('versioned');
    expect(await second.text()).toBe('two');
    expect(second.headers.get('etag')).not.toBe(first);
  });

  it('GET and HEAD of an absent key answer 404 E_KEY_NOT_FOUND', async () => {
    await expectError(await get('never-stored'), 'E_KEY_NOT_FOUND');
    const head = await get('never-stored', 'HEAD');
    expect(head.status).toBe(404);
  });

  it('DELETE removes a key and answers 204 also when absent', async () => {
    await put('doomed', 'x');
    expect((await get('doomed', 'DELETE')).status).toBe(204);
    expect((await get('doomed')).status).toBe(404);
    expect((await get('doomed', 'DELETE')).status).toBe(204);
  });

  it('expires a value after its TTL', async () => {
    await put('ephemeral', 'soon gone', '?ttl=1');
    expect((await get('ephemeral')).status).toBe(200);
    await until(async () => (await get('ephemeral')).status === 404, 5000, 50);
  });
});

describe('mget and invalidate', () => {
  it('mget returns base64 values and null for misses, across shards', async () => {
    const keys = Array.from({ length: 30 }, (_, i) => `m${i}`);
    expect(new Set(keys.map((k) => shardOf(k, 3))).size).toBe(3);
    for (const k of keys.slice(0, 20)) await put(k, `v-${k}`);
    const res = await fetch(url('/v1/mget'), { method: 'POST', body: JSON.stringify({ keys: [...keys, 'm0'] }) });
    expect(res.status).toBe(200);
    const { values } = (await res.json()) as { values: Record<string, string | null> };
    expect(Object.keys(values).sort()).toEqual([...keys].sort());
    for (const k of keys.slice(0, 20)) expect(Buffer.from(values[k] as string, 'base64').toString()).toBe(`v-${k}`);
    for (const k of keys.slice(20)) expect(values[k]).toBeNull();
    const empty = await fetch(url('/v1/mget'), { method: 'POST', body: '{"keys":[]}' });
    expect(await empty.json()).toEqual({ values: {} });
  });

  it('invalidate removes keys and tagged entries and counts what it removed', async () => {
    await put('t1', 'a', '?tags=red,blue');
    await put('t2', 'b', '?tags=red');
    await put('t3', 'c', '?tags=green');
    await put('k-plain', 'd');
    const res = await fetch(url('/v1/invalidate'), { method: 'POST', body: JSON.stringify({ keys: ['k-plain', 'k-absent'], tags: ['red'] }) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ invalidated: 3 });
    for (const k of ['t1', 't2', 'k-plain']) expect((await get(k)).status).toBe(404);
    expect((await get('t3')).status).toBe(200);
  });

  it.each([
    ['{', 'E_INVALID_JSON'],
    ['[]', 'E_INVALID_BODY'],
    ['{"keys":"a"}', 'E_INVALID_BODY'],
    ['{"keys":[1]}', 'E_INVALID_BODY'],
    ['{"keys":[""]}', 'E_INVALID_KEY'],
    ['{}', 'E_INVALID_BODY'],
    [JSON.stringify({ keys: Array.from({ length: 1001 }, (_, i) => `k${i}`) }), 'E_TOO_MANY_KEYS'],
  ] as const)('mget %s → %s', async (body, code) => {
    await expectError(await fetch(url('/v1/mget'), { method: 'POST', body }), code);
  });

  it('invalidate rejects bad tags and more than 1000 keys', async () => {
    await expectError(await fetch(url('/v1/invalidate'), { method: 'POST', body: '{"tags":["a,b"]}' }), 'E_INVALID_TAGS');
    const keys = Array.from({ length: 1001 }, (_, i) => `k${i}`);
    await expectError(await fetch(url('/v1/invalidate'), { method: 'POST', body: JSON.stringify({ keys }) }), 'E_TOO_MANY_KEYS');
    await expectError(await fetch(url('/v1/invalidate'), { method: 'POST', body: '{"nothing":1}' }), 'E_INVALID_BODY');
  });

  it('refuses a JSON body over 1 MiB with 413', async () => {
    const body = JSON.stringify({ keys: ['x'.repeat(1024 * 1024)] });
    await expectError(await fetch(url('/v1/mget'), { method: 'POST', body }), 'E_BODY_TOO_LARGE');
  });
});

describe('bad input stores nothing', () => {
  it.each([
    ['/v1/keys/%', 'E_INVALID_KEY'],
    ['/v1/keys/%FF', 'E_INVALID_KEY'],
    ['/v1/keys/a%00b', 'E_INVALID_KEY'],
    ['/v1/keys/a%0Ab', 'E_INVALID_KEY'],
    [`/v1/keys/${'k'.repeat(513)}`, 'E_INVALID_KEY'],
    ['/v1/keys/a/b', 'E_INVALID_KEY'],
    ['/v1/keys/', 'E_INVALID_KEY'],
    ['/v1/keys/ok?ttl=0', 'E_INVALID_TTL'],
    ['/v1/keys/ok?ttl=3601', 'E_INVALID_TTL'],
    ['/v1/keys/ok?ttl=1.5', 'E_INVALID_TTL'],
    ['/v1/keys/ok?ttl=x', 'E_INVALID_TTL'],
    ['/v1/keys/ok?tags=a,,b', 'E_INVALID_TAGS'],
    ['/v1/keys/ok?color=red', 'E_INVALID_QUERY'],
  ] as const)('PUT %s → %s', async (path, code) => {
    const before = (await stats()).levels.L1.sets;
    await expectError(await fetch(url(path), { method: 'PUT', body: 'value' }), code);
    expect((await stats()).levels.L1.sets).toBe(before);
  });

  it('GET with a bad key → 400 E_INVALID_KEY', async () => {
    await expectError(await fetch(url('/v1/keys/%E0%A4%A')), 'E_INVALID_KEY');
    await expectError(await fetch(url(`/v1/keys/${'é'.repeat(257)}`)), 'E_INVALID_KEY');
  });

  it('a value over maxValueBytes → 413, announced or chunked, and nothing stored', async () => {
    await expectError(await put('too-big', new Uint8Array(64 * 1024 + 1)), 'E_VALUE_TOO_LARGE');
    const chunked = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 20; i++) controller.enqueue(new Uint8Array(8 * 1024));
        controller.close();
      },
    });
    const res = await fetch(url('/v1/keys/too-big-chunked'), { method: 'PUT', body: chunked, duplex: 'half' } as RequestInit);
    await expectError(res, 'E_VALUE_TOO_LARGE');
    expect((await get('too-big')).status).toBe(404);
    expect((await get('too-big-chunked')).status).toBe(404);
    expect((await put('just-fits', new Uint8Array(64 * 1024))).status).toBe(204);
  });

  it('a Content-Type over 256 characters or with DEL → 400 E_INVALID_CONTENT_TYPE', async () => {
    await expectError(await put('ct', 'x', '', { 'content-type': `text/${'x'.repeat(256)}` }), 'E_INVALID_CONTENT_TYPE');
    const res = await rawRequest(node.port, 'PUT /v1/keys/ct HTTP/1.1\r\nHost: x\r\nContent-Type: text/\x7fplain\r\nContent-Length: 1\r\n\r\nx');
    expect(res.text).toMatch(/^HTTP\/1.1 400/);
    expect(res.text).toContain('E_INVALID_CONTENT_TYPE');
    expect((await get('ct')).status).toBe(404);
  });

  it('unknown routes → 404, wrong methods → 405 with Allow', async () => {
    await expectError(await fetch(url('/nope')), 'E_ROUTE_NOT_FOUND');
    await expectError(await fetch(url('/v2/keys/a')), 'E_ROUTE_NOT_FOUND');
    const patch = await fetch(url('/v1/keys/a'), { method: 'PATCH', body: 'x' });
    expect(patch.headers.get('allow')).toBe('GET, HEAD, PUT, DELETE');
    await expectError(patch, 'E_METHOD_NOT_ALLOWED');
    const mget = await fetch(url('/v1/mget'));
    expect(mget.headers.get('allow')).toBe('POST');
    await expectError(mget, 'E_METHOD_NOT_ALLOWED');
    const health = await fetch(url('/healthz'), { method: 'POST' });
    expect(health.headers.get('allow')).toBe('GET, HEAD');
    await expectError(health, 'E_METHOD_NOT_ALLOWED');
  });
});

describe('HEAD (RFC 9110 §9.3.2)', () => {
  it('answers errors and probes with headers and Content-Length but no body, keeping the connection usable', async () => {
    const reply = await rawRequest(
      node.port,
      'HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\nHEAD /v1/keys/%zz HTTP/1.1\r\nHost: x\r\n\r\nHEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /livez HTTP/1.1\r\nHost: x\r\n\r\n',
    );
    const heads = reply.text.split('HTTP/1.1 ').slice(1);
    expect(heads.map((h) => h.slice(0, 3))).toEqual(['404', '400', '200', '200']);
    // Only the final GET carries a body.
    for (const h of heads.slice(0, 3)) expect(h.endsWith('\r\n\r\n')).toBe(true);
    expect(heads[0]).toMatch(/content-length: \d+/i);
    expect(reply.text.endsWith('{"status":"ok"}')).toBe(true);
  });

  it('is allowed wherever GET is', async () => {
    for (const path of ['/healthz', '/livez', '/readyz', '/metrics', '/v1/stats']) {
      const res = await fetch(url(path), { method: 'HEAD' });
      expect(res.status, path).toBe(200);
      expect(await res.text()).toBe('');
    }
  });
});

describe('message framing (RFC 9112 §6.3)', () => {
  const cases = {
    'two different Content-Length': 'PUT /v1/keys/smuggle1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
    'two equal Content-Length': 'PUT /v1/keys/smuggle2 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello',
    'Transfer-Encoding not ending in chunked': 'PUT /v1/keys/smuggle3 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    'GET with two Content-Length': 'GET /v1/keys/smuggle4 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 3\r\n\r\nabc',
  };
  it.each(Object.entries(cases))('%s → 400 E_BAD_FRAMING and the connection closed', async (_name, payload) => {
    const reply = await rawRequest(node.port, payload);
    expect(reply.text).toMatch(/^HTTP\/1.1 400 /);
    expect(reply.text).toContain('E_BAD_FRAMING');
    expect(reply.closedByServer).toBe(true);
  });

  // uWS's own parser closes these connections before any handler can answer (docs/errors.md, "Framing").
  const refusedByParser = {
    'both Content-Length and Transfer-Encoding':
      'PUT /v1/keys/smuggle5 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    'Content-Length not a number': 'PUT /v1/keys/smuggle6 HTTP/1.1\r\nHost: x\r\nContent-Length: 5x\r\n\r\nhello',
    'Transfer-Encoding gzip': 'PUT /v1/keys/smuggle7 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello',
  };
  it.each(Object.entries(refusedByParser))('%s: no success answer, connection closed', async (_name, payload) => {
    const reply = await rawRequest(node.port, payload);
    expect(reply.text).not.toMatch(/^HTTP\/1.1 [23]/);
    expect(reply.closedByServer).toBe(true);
  });

  it('nothing framed ambiguously was stored', async () => {
    for (let i = 1; i <= 7; i++) expect((await get(`smuggle${i}`)).status).toBe(404);
  });

  it('a well-framed chunked PUT is stored', async () => {
    const reply = await rawRequest(
      node.port,
      'PUT /v1/keys/chunky HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n',
    );
    expect(reply.text).toMatch(/^HTTP\/1.1 204 /);
    expect(await (await get('chunky')).text()).toBe('hello world');
  });
});

describe('health, metrics, stats', () => {
  it('/healthz, /livez and /readyz answer 200 with JSON', async () => {
    for (const path of ['/healthz', '/livez']) expect(await (await fetch(url(path))).json()).toEqual({ status: 'ok' });
    const ready = await fetch(url('/readyz'));
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', shards: { up: 3, total: 3 } });
  });

  it('/metrics is Prometheus text with the design names, fed from the shared counters', async () => {
    await put('metric-key', 'v');
    await get('metric-key');
    await get('metric-miss');
    const res = await fetch(url('/metrics'));
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    const s = await stats();
    const value = (line: string) => Number(new RegExp(`^${line.replace(/[{}"+.]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('strata_cache_hits_total{level="L1"}')).toBe(s.levels.L1.hits);
    expect(value('strata_cache_misses_total{level="L1"}')).toBe(s.levels.L1.misses);
    expect(value('strata_cache_items{level="L1"}')).toBe(s.levels.L1.items);
    for (const name of [
      'strata_requests_total{route="get",code="200"}',
      'strata_requests_total{route="get",code="404"}',
      'strata_l2_up',
      'strata_loads_coalesced_total',
      'strata_request_duration_seconds_bucket{route="get",le="+Inf"}',
      'strata_cache_evictions_total{level="L1"}',
      'strata_cache_bytes{level="L1"}',
      'strata_shard_utilization{shard="2"}',
      'strata_shard_op_duration_seconds_count{op="get"}',
    ]) {
      expect(Number.isFinite(value(name)), name).toBe(true);
    }
    expect(text).not.toContain('metric-key');
  });

  it('a concurrent burst leaves the shared counters equal to the client counts', async () => {
    const before = await stats();
    const N = 600;
    const keys = Array.from({ length: N }, (_, i) => `burst:${i}`);
    await Promise.all(keys.map((k) => put(k, `value-${k}`).then((r) => expect(r.status).toBe(204))));
    const results = await Promise.all([...keys, ...keys.map((k) => `${k}:miss`)].map((k) => get(k).then((r) => r.status)));
    const hits = results.filter((s) => s === 200).length;
    const misses = results.filter((s) => s === 404).length;
    expect(hits).toBe(N);
    expect(misses).toBe(N);
    const after = await stats();
    expect(after.levels.L1.sets - before.levels.L1.sets).toBe(N);
    expect(after.levels.L1.hits - before.levels.L1.hits).toBe(hits);
    expect(after.levels.L1.misses - before.levels.L1.misses).toBe(misses);
    expect(after.levels.L1.items - before.levels.L1.items).toBe(N);
    // Key affinity: each key was counted by exactly the shard shardOf names.
    for (let s = 0; s < 3; s++) {
      const expected = keys.filter((k) => shardOf(k, 3) === s).length;
      expect((after.shards[s]?.l1.sets ?? 0) - (before.shards[s]?.l1.sets ?? 0)).toBe(expected);
      expect((after.shards[s]?.l1.hits ?? 0) - (before.shards[s]?.l1.hits ?? 0)).toBe(expected);
    }
  });
});

describe('clients that go away', () => {
  it('a client that disconnects mid-body or mid-request does not hurt the node', async () => {
    for (let i = 0; i < 20; i++) {
      await rawRequest(node.port, `PUT /v1/keys/partial${i} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly-a-little`, 5);
      await rawRequest(node.port, `GET /v1/keys/partial${i} HTTP/1.1\r\nHo`, 1);
    }
    expect((await fetch(url('/healthz'))).status).toBe(200);
    expect((await get('partial0')).status).toBe(404);
  });
});

describe('hot reads (served by the front from the shard-published index)', () => {
  const twice = async (key: string) => {
    await get(key); // through the shard: publishes
    return get(key); // from the front
  };

  it('serves repeat hits with the same bytes and headers, counted as L1 hits', async () => {
    const bytes = new Uint8Array(5000).map((_, i) => (i * 13) & 0xff);
    await put('hot-1', bytes, '', { 'content-type': 'image/x-test' });
    const first = await get('hot-1');
    const before = (await stats()).levels.L1.hits;
    const second = await get('hot-1');
    expect(second.status).toBe(200);
    expect(second.headers.get('content-type')).toBe('image/x-test');
    expect(second.headers.get('etag')).toBe(first.headers.get('etag'));
    expect(second.headers.get('x-cache')).toBe('L1');
    expect(new Uint8Array(await second.arrayBuffer())).toEqual(bytes);
    expect((await stats()).levels.L1.hits).toBe(before + 1);
  });

  it('never serves a value after it was overwritten, deleted, invalidated by key or by tag', async () => {
    await put('hot-w', 'one');
    await twice('hot-w');
    await put('hot-w', 'two');
    expect(await (await get('hot-w')).text()).toBe('two');
    await twice('hot-d');
    await put('hot-d', 'x');
    await twice('hot-d');
    await get('hot-d', 'DELETE');
    expect((await get('hot-d')).status).toBe(404);
    await put('hot-i', 'x');
    await twice('hot-i');
    await fetch(url('/v1/invalidate'), { method: 'POST', body: '{"keys":["hot-i"]}' });
    expect((await get('hot-i')).status).toBe(404);
    await put('hot-t', 'x', '?tags=hot-tag');
    await twice('hot-t');
    await fetch(url('/v1/invalidate'), { method: 'POST', body: '{"tags":["hot-tag"]}' });
    expect((await get('hot-t')).status).toBe(404);
  });

  it('stops serving at the TTL', async () => {
    await put('hot-ttl', 'brief', '?ttl=1');
    expect((await twice('hot-ttl')).status).toBe(200);
    await until(async () => (await get('hot-ttl')).status === 404, 5000, 50);
  });
});

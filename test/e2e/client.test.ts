import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createClient, json, msgpack, raw, StrataError, schema, text } from '../../src/client/index.js';
import { fetchTransport, TransportError, undiciTransport } from '../../src/client/transport.js';
import type { MemberConfig } from '../../src/cluster/members.js';
import type { StrataNode } from '../../src/node.js';
import { ROOT, startTestNode } from '../helpers/node.js';
import { TestOrigin } from '../helpers/origin.js';
import { freePort, RedisServer } from '../helpers/redis.js';

// The typed client against really started nodes (docs/client.md).

type TestNode = StrataNode & { url: string };

interface User {
  id: number;
  name: string;
  tags: string[];
  note?: string;
}

const run = promisify(execFile);

const forwarded = async (node: TestNode) =>
  ((await (await fetch(`${node.url}/v1/cluster`)).json()) as { forwarding: { forwarded: number } }).forwarding.forwarded;

describe('typed client, the package', () => {
  it('is the export strata/client, types included', async () => {
    const script = "import('strata/client').then((m) => console.log(Object.keys(m).sort().join(',')))";
    const { stdout } = await run(process.execPath, ['-e', script], { cwd: ROOT });
    expect(stdout.trim()).toBe('Namespace,StrataClient,StrataError,createClient,json,msgpack,raw,schema,text');
    expect(existsSync(`${ROOT}dist/src/client/index.d.ts`)).toBe(true);
  });
});

describe('typed client, one node', () => {
  let redis: RedisServer;
  let node: TestNode;
  beforeAll(async () => {
    redis = await RedisServer.start();
    node = await startTestNode({ redisUrl: redis.url, shards: 2, fronts: 1, tokens: ['client-token-1'] });
  });
  afterAll(async () => {
    await node?.close();
    await redis?.stop();
  });

  it('gets, sets, deletes, mgets and invalidates typed values', async () => {
    const client = createClient({ url: node.url, token: 'client-token-1' });
    const users = client.namespace('users', { codec: json<User>(), ttl: 60, tags: ['people'] });
    const ada: User = { id: 1, name: 'Ada', tags: ['math'], note: 'ünïcode ✓' };
    expect(await users.get('1')).toBeUndefined();
    await users.set('1', ada);
    expect(await users.get('1')).toEqual(ada);
    // Stored under the namespace, as JSON.
    const res = await fetch(`${node.url}/v1/keys/users%3A1`);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual(ada);
    await users.set('2', { id: 2, name: 'Grace', tags: [] });
    expect(await users.mget(['1', '2', '3'])).toEqual(
      new Map([
        ['1', ada],
        ['2', { id: 2, name: 'Grace', tags: [] }],
        ['3', undefined],
      ]),
    );
    await users.delete('1');
    expect(await users.get('1')).toBeUndefined();
    // The namespace's tags went with every write: one invalidation takes them.
    expect(await users.invalidate({ tags: ['people'] })).toBe(1);
    expect(await users.get('2')).toBeUndefined();

    const blobs = client.namespace('blobs', { codec: raw() });
    const bytes = new Uint8Array([0, 1, 2, 255, 254]);
    await blobs.set('b', bytes);
    expect(await blobs.get('b')).toEqual(bytes);
    const notes = client.namespace('notes', { codec: text() });
    await notes.set('empty', '');
    expect(await notes.get('empty')).toBe('');
  });

  it('round-trips edge values through every codec; a schema codec refuses what does not match', async () => {
    const client = createClient({ url: node.url, token: 'client-token-1' });
    const edges = client.namespace('edges', { codec: json<{ s: string; n: number; b: boolean; z: null; a: number[]; o: Record<string, string> }>() });
    const value = { s: '\u0000 \ud83d\ude42 "quoted" \\', n: -0.1e-300, b: false, z: null, a: [], o: {} };
    await edges.set('e', value);
    expect(await edges.get('e')).toEqual(value);
    const packed = client.namespace('packed', { codec: msgpack<{ at: Date; blob: Uint8Array; big: number; nested: { deep: string[] } }>() });
    const rich = { at: new Date(1_700_000_000_123), blob: new Uint8Array([0, 255, 7]), big: 2 ** 53 - 1, nested: { deep: ['x', ''] } };
    await packed.set('r', rich);
    const back = await packed.get('r');
    expect(back?.at).toBeInstanceOf(Date);
    expect(back?.at.getTime()).toBe(rich.at.getTime());
    expect(back).toEqual(rich);
    expect((await fetch(`${node.url}/v1/keys/packed%3Ar`)).headers.get('content-type')).toBe('application/msgpack');

    const Person = z.object({ name: z.string(), born: z.number().int() });
    const people = client.namespace('people', { codec: schema(Person) });
    await people.set('ada', { name: 'Ada', born: 1815 });
    expect(await people.get('ada')).toEqual({ name: 'Ada', born: 1815 });
    // Another writer stored a shape the schema does not accept: the read fails, it never returns it typed.
    await fetch(`${node.url}/v1/keys/people%3Aold`, {
      method: 'PUT',
      body: '{"name":"Old","born":"1900"}',
      headers: { authorization: 'Bearer client-token-1' },
    });
    expect(await people.get('old').catch((e: unknown) => e)).toMatchObject({ code: 'E_CLIENT_CODEC' });
    // And a value that does not match is not written.
    expect(await people.set('bad', { name: 'x', born: 1.5 }).catch((e: unknown) => e)).toMatchObject({ code: 'E_CLIENT_CODEC' });
    expect(await people.get('bad')).toBeUndefined();
  });

  it('both transports answer alike: undici on Node.js, fetch elsewhere', async () => {
    const undici = await undiciTransport();
    for (const send of [fetchTransport, undici]) {
      const put = await send('PUT', `${node.url}/v1/keys/t%3Ax`, { authorization: 'Bearer client-token-1', 'content-type': 'text/plain' }, 'v', 2000);
      expect(put.status).toBe(204);
      const got = await send('GET', `${node.url}/v1/keys/t%3Ax`, {}, null, 2000);
      expect([got.status, got.ok, got.text(), got.header('content-type'), got.header('x-strata-node')]).toEqual([200, true, 'v', 'text/plain', node.nodeId]);
      const missing = await send('GET', `${node.url}/v1/keys/t%3Anone`, {}, null, 2000);
      expect([missing.ok, (missing.json() as { error: { code: string } }).error.code]).toEqual([false, 'E_KEY_NOT_FOUND']);
      const refused = await send('GET', `http://127.0.0.1:${await freePort()}/`, {}, null, 2000).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(TransportError);
      expect((refused as TransportError).timedOut).toBe(false);
    }
    await undici.close();
  });

  it('a loader that fails gives its lease back: a waiting caller loads and stores at once', async () => {
    const a = createClient({ url: node.url, token: 'client-token-1' }).namespace('giveback', { codec: text() });
    const b = createClient({ url: node.url, token: 'client-token-1' }).namespace('giveback', { codec: text() });
    let releaseA: () => void = () => {};
    const aLoading = new Promise<void>((r) => {
      releaseA = r;
    });
    let aStarted: () => void = () => {};
    const started = new Promise<void>((r) => {
      aStarted = r;
    });
    // A holds the lease (a 60 s lease: without a give-back, B could only wait for it to expire).
    const first = a.getOrSet(
      'k',
      async () => {
        aStarted();
        await aLoading;
        throw new Error('database down');
      },
      { leaseMs: 60_000 },
    );
    await started;
    let bLoads = 0;
    const second = b.getOrSet(
      'k',
      async () => {
        bLoads++;
        return 'from b';
      },
      { leaseMs: 60_000, waitMs: 4000 },
    );
    await new Promise((r) => setTimeout(r, 100));
    releaseA();
    await expect(first).rejects.toThrow('database down');
    expect(await second).toBe('from b');
    expect(bLoads).toBe(1);
    // B held the lease handed over, so its value was stored.
    expect(await a.get('k')).toBe('from b');
    // The route itself: a token no longer held is 409; a malformed one 400.
    const stale = await fetch(`${node.url}/v1/keys/giveback%3Ak`, {
      method: 'DELETE',
      headers: { authorization: 'Bearer client-token-1', 'strata-lease': '1.0123456789abcdef0123456789abcdef' },
    });
    expect(stale.status).toBe(409);
    expect(await stale.json()).toMatchObject({ error: { code: 'E_LEASE_LOST' } });
    const bad = await fetch(`${node.url}/v1/keys/giveback%3Ak`, {
      method: 'DELETE',
      headers: { authorization: 'Bearer client-token-1', 'strata-lease': 'nope' },
    });
    expect(bad.status).toBe(400);
    // Neither touched the value.
    expect(await a.get('k')).toBe('from b');
  });

  it("throws StrataError with the server's code and status, or its own when there is no answer", async () => {
    const anonymous = createClient({ url: node.url }).namespace('users', { codec: json<User>() });
    const denied = await anonymous.set('x', { id: 0, name: '', tags: [] }).catch((e: unknown) => e);
    expect(denied).toBeInstanceOf(StrataError);
    expect(denied).toMatchObject({ code: 'E_UNAUTHORIZED', status: 401 });
    const client = createClient({ url: node.url, token: 'client-token-1' });
    const tooLong = client.namespace('k', { codec: text() });
    expect(await tooLong.set('x'.repeat(600), 'v').catch((e: unknown) => e)).toMatchObject({ code: 'E_INVALID_KEY', status: 400 });
    const gone = createClient({ url: `http://127.0.0.1:${await freePort()}`, timeoutMs: 2000 }).namespace('n', { codec: text() });
    expect(await gone.get('a').catch((e: unknown) => e)).toMatchObject({ code: 'E_CLIENT_UNREACHABLE', status: 0 });
    // A stored value the codec cannot read is the client's error, not a wrong value.
    await fetch(`${node.url}/v1/keys/users%3Abad`, { method: 'PUT', body: '{not json', headers: { authorization: 'Bearer client-token-1' } });
    expect(
      await client
        .namespace('users', { codec: json<User>() })
        .get('bad')
        .catch((e: unknown) => e),
    ).toMatchObject({ code: 'E_CLIENT_CODEC' });
    expect(() => client.namespace('a:b', { codec: text() })).toThrow(TypeError);
    expect(() => createClient({})).toThrow(TypeError);
  });

  it('getOrSet: 200 concurrent calls for a cold key, from two clients, run the loader once', async () => {
    let calls = 0;
    const loader = async (): Promise<User> => {
      calls++;
      await new Promise((r) => setTimeout(r, 100));
      return { id: 7, name: 'loaded', tags: ['db'] };
    };
    const a = createClient({ url: node.url, token: 'client-token-1' }).namespace('users', { codec: json<User>() });
    const b = createClient({ url: node.url, token: 'client-token-1' }).namespace('users', { codec: json<User>() });
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).getOrSet('7', loader, { waitMs: 3000 })));
    expect(calls).toBe(1);
    expect(results.every((u) => u.name === 'loaded')).toBe(true);
    // Now cached: no loader at all.
    expect(await a.getOrSet('7', loader)).toEqual({ id: 7, name: 'loaded', tags: ['db'] });
    expect(calls).toBe(1);
    // wrap memoizes a function by a key of its arguments.
    let fnCalls = 0;
    const square = a.wrap(
      async (n: number) => {
        fnCalls++;
        return { id: n * n, name: 'sq', tags: [] };
      },
      (n) => `sq-${n}`,
    );
    expect((await square(9)).id).toBe(81);
    expect((await square(9)).id).toBe(81);
    expect(fnCalls).toBe(1);
  });
});

describe('typed client, three nodes', () => {
  let redis: RedisServer;
  const nodes: TestNode[] = [];
  let members: MemberConfig[];
  beforeAll(async () => {
    redis = await RedisServer.start();
    members = [];
    for (const id of ['c1', 'c2', 'c3']) members.push({ id, url: `http://127.0.0.1:${await freePort()}`, weight: 1 });
    for (const m of members) {
      nodes.push(await startTestNode({ port: Number(new URL(m.url).port), nodeId: m.id, members, redisUrl: redis.url, shards: 1, fronts: 1 }));
    }
  });
  afterAll(async () => {
    await Promise.all(nodes.map((n) => n.close()));
    await redis?.stop();
  });

  it('200 concurrent getOrSet for one cold key in each of 3 client processes: one loader call in all', async () => {
    const origin = await TestOrigin.start();
    try {
      // The "database": every load is a request here, and takes a while.
      origin.route('/db/hot', { body: '{"n":1}', delayMs: 200 });
      const script = `
        const { createClient, json } = await import(${JSON.stringify(`${ROOT}dist/src/client/index.js`)});
        const [nodes, db] = [JSON.parse(process.argv[1]), process.argv[2]];
        const users = createClient({ nodes, timeoutMs: 8000 }).namespace('stampede', { codec: json() });
        const load = async () => (await fetch(db)).json();
        const values = await Promise.all(Array.from({ length: 200 }, () => users.getOrSet('hot', load, { waitMs: 4000 })));
        console.log(values.every((v) => v.n === 1) ? 'ok' : JSON.stringify(values));
      `;
      const nodeList = JSON.stringify(members.map(({ id, url }) => ({ id, url })));
      const outputs = await Promise.all(
        [0, 1, 2].map(() => run(process.execPath, ['--input-type=module', '-e', script, nodeList, `${origin.url}/db/hot`], { cwd: ROOT })),
      );
      expect(outputs.map((o) => o.stdout.trim())).toEqual(['ok', 'ok', 'ok']);
      expect(origin.hits('/db/hot')).toBe(1);
    } finally {
      await origin.stop();
    }
  });

  it('sends each key to its owner (no node forwards), and fails over when a node is gone', async () => {
    const client = createClient({ nodes: members.map(({ id, url }) => ({ id, url })) });
    const items = client.namespace('items', { codec: json<{ n: number }>() });
    const before = await Promise.all(nodes.map(forwarded));
    for (let i = 0; i < 30; i++) await items.set(String(i), { n: i });
    for (let i = 0; i < 30; i++) expect(await items.get(String(i))).toEqual({ n: i });
    // Every other method through the ring too.
    expect(await items.mget(['1', '2', 'none'])).toEqual(
      new Map([
        ['1', { n: 1 }],
        ['2', { n: 2 }],
        ['none', undefined],
      ]),
    );
    await items.set('extra', { n: -1 });
    await items.delete('extra');
    expect(await items.get('extra')).toBeUndefined();
    expect(await items.getOrSet('extra', async () => ({ n: 33 }))).toEqual({ n: 33 });
    expect(await items.get('extra')).toEqual({ n: 33 });
    const tagged = client.namespace('tagged', { codec: json<{ n: number }>(), tags: ['batch'] });
    for (let i = 0; i < 6; i++) await tagged.set(String(i), { n: i });
    expect(await tagged.invalidate({ tags: ['batch'] })).toBe(6);
    for (let i = 0; i < 6; i++) expect(await tagged.get(String(i))).toBeUndefined();
    const after = await Promise.all(nodes.map(forwarded));
    expect(after).toEqual(before);

    // The members as the nodes report them: the same routing.
    const refreshed = createClient({ url: (nodes[0] as TestNode).url });
    await refreshed.refresh();
    const viaRefresh = refreshed.namespace('items', { codec: json<{ n: number }>() });
    for (let i = 0; i < 10; i++) expect(await viaRefresh.get(String(i))).toEqual({ n: i });
    expect(await Promise.all(nodes.map(forwarded))).toEqual(before);

    // A node goes away: its keys are read through the next node (which serves them from the L2).
    await (nodes[2] as TestNode).close();
    for (let i = 0; i < 30; i++) expect(await items.get(String(i))).toEqual({ n: i });
  });
});

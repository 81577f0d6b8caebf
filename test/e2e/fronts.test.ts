import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FrontSnapshot } from '../../src/counters/counters.js';
import type { StrataNode } from '../../src/node.js';
import { startTestNode, until } from '../helpers/node.js';
import { TestOrigin } from '../helpers/origin.js';

type Node = StrataNode & { url: string };
interface Stats {
  fronts: Omit<FrontSnapshot, 'threadId'>[];
  levels: { L1: { gets: number; hits: number } };
  requestsInFlight: number;
  threads: { main: number; fronts: number[]; shards: number[] };
}

const stats = async (node: Node): Promise<Stats> => (await (await fetch(`${node.url}/v1/stats`)).json()) as Stats;
/** Requests each front has answered. */
const perFront = async (node: Node): Promise<number[]> => (await stats(node)).fronts.map((f) => f.requests);

/** One keep-alive connection: every request on it is served by the front the kernel gave it to. */
function connection(node: Node): Client {
  return new Client(node.url, { pipelining: 1, keepAliveTimeout: 60_000 });
}

async function get(client: Client, key: string): Promise<{ status: number; body: string }> {
  const res = await client.request({ method: 'GET', path: `/v1/keys/${encodeURIComponent(key)}` });
  return { status: res.statusCode, body: await res.body.text() };
}

async function put(client: Client, key: string, value: string): Promise<number> {
  const res = await client.request({ method: 'PUT', path: `/v1/keys/${encodeURIComponent(key)}?ttl=300`, body: value });
  await res.body.dump();
  return res.statusCode;
}

/** Which front serves a connection: the one whose request count grew by the 50 requests sent on it. */
async function frontOf(node: Node, client: Client): Promise<number> {
  const before = await perFront(node);
  for (let i = 0; i < 50; i++) await get(client, 'probe');
  const after = await perFront(node);
  const grew = after.map((n, f) => n - (before[f] as number));
  const front = grew.findIndex((d) => d >= 50);
  if (front === -1) throw new Error(`no front served the 50 requests: ${grew}`);
  return front;
}

/** Opens connections until it has one on each of the first `fronts` fronts. */
async function oneConnectionPerFront(node: Node, fronts: number): Promise<Client[]> {
  const byFront: (Client | undefined)[] = new Array(fronts);
  const spare: Client[] = [];
  for (let tries = 0; tries < 64 && byFront.filter(Boolean).length < fronts; tries++) {
    const client = connection(node);
    const front = await frontOf(node, client);
    if (front < fronts && byFront[front] === undefined) byFront[front] = client;
    else spare.push(client);
  }
  await Promise.all(spare.map((c) => c.close()));
  if (byFront.filter(Boolean).length < fronts) throw new Error('the kernel put 64 connections on the same front');
  return byFront as Client[];
}

describe('several front threads on one port', () => {
  let node: Node;
  beforeAll(async () => {
    node = await startTestNode({ fronts: 2, shards: 2 });
  });
  afterAll(async () => {
    await node?.close();
  });

  it('start, each listening and serving: connections land on every front, and every front reports its thread', async () => {
    // A shard worker reports its thread once it has taken its shard.
    await until(async () => (await stats(node)).threads.shards.every((tid) => tid > 0));
    const s = await stats(node);
    expect(s.fronts.map((f) => f.front)).toEqual([0, 1]);
    expect(s.fronts.every((f) => f.starts === 1)).toBe(true);
    expect(s.threads.fronts).toHaveLength(2);
    expect(new Set([s.threads.main, ...s.threads.fronts, ...s.threads.shards]).size, JSON.stringify(s.threads)).toBe(5);
    // 40 fresh connections, one request each: the kernel spreads them by their address hash.
    const before = await perFront(node);
    await Promise.all(
      Array.from({ length: 40 }, async () => {
        const res = await fetch(`${node.url}/healthz`, { headers: { connection: 'close' } });
        expect(res.status).toBe(200);
        await res.text();
      }),
    );
    const after = await perFront(node);
    const grew = after.map((n, f) => n - (before[f] as number));
    expect(grew.every((d) => d > 0)).toBe(true);
    expect(grew.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(40);
  });

  it('counts every front: requests, hot-index hits as L1 hits, in /v1/stats and /metrics', async () => {
    const clients = await oneConnectionPerFront(node, 2);
    const [a, b] = clients as [Client, Client];
    expect(await put(a, 'counted', 'v')).toBe(204);
    const before = await stats(node);
    const metricBefore = await getRequestsMetric(node);
    // The first read publishes the entry; the rest are answered by the fronts from the hot-read index.
    for (let i = 0; i < 100; i++) {
      expect((await get(a, 'counted')).body).toBe('v');
      expect((await get(b, 'counted')).body).toBe('v');
    }
    const after = await stats(node);
    expect(after.levels.L1.hits - before.levels.L1.hits).toBe(200);
    expect(after.levels.L1.gets - before.levels.L1.gets).toBe(200);
    const hot = after.fronts.map((f, i) => f.hotHits - (before.fronts[i] as FrontSnapshot).hotHits);
    // Both fronts answered from shared memory (at most the first read of each went to the shard).
    expect(hot.every((h) => h >= 98)).toBe(true);
    // The /metrics counter sums the fronts: 200 GETs answered 200 (plus the one /v1/stats request in between).
    expect((await getRequestsMetric(node)) - metricBefore).toBe(200);
    await Promise.all(clients.map((c) => c.close()));
  });

  it('a write acknowledged through one front is never read stale through another (keys in the hot-read index)', async () => {
    const [writer, reader] = (await oneConnectionPerFront(node, 2)) as [Client, Client];
    for (let trial = 0; trial < 300; trial++) {
      const key = `coherent:${trial % 7}`;
      // Read twice first: the shard publishes the entry, then the reader's front serves it from the index.
      await get(reader, key);
      await get(reader, key);
      expect(await put(writer, key, `v${trial}`)).toBe(204);
      const seen = await get(reader, key);
      expect(seen, `trial ${trial}`).toEqual({ status: 200, body: `v${trial}` });
      if (trial % 50 === 49) {
        const deleted = await writer.request({ method: 'DELETE', path: `/v1/keys/${encodeURIComponent(key)}` });
        await deleted.body.dump();
        expect((await get(reader, key)).status).toBe(404);
      }
    }
    await Promise.all([writer.close(), reader.close()]);
  });

  it('a front that dies is replaced; the other front keeps serving, its connections untouched', async () => {
    const [onFirst, onSecond] = (await oneConnectionPerFront(node, 2)) as [Client, Client];
    expect(await put(onSecond, 'survivor', 'still here')).toBe(204);
    const thread = node.internals.fronts.threadOf(0);
    const exited = new Promise<number>((resolve) => thread?.once('exit', resolve));
    const lost = new Promise<void>((resolve) => onFirst.once('disconnect', () => resolve()));
    let secondLost = false;
    onSecond.once('disconnect', () => {
      secondLost = true;
    });
    node.internals.fronts.crash(0);
    expect(await exited).not.toBe(0);
    // The connection on front 0 is gone with it; the one on front 1 serves on.
    await lost;
    for (let i = 0; i < 20; i++) expect(await get(onSecond, 'survivor')).toEqual({ status: 200, body: 'still here' });
    // New connections meanwhile are served (by whichever front listens).
    for (let i = 0; i < 10; i++) expect((await fetch(`${node.url}/v1/keys/survivor`, { headers: { connection: 'close' } })).status).toBe(200);
    expect(secondLost).toBe(false);
    await until(async () => (await stats(node)).fronts[0]?.starts === 2, 15_000, 50);
    // The replacement serves again, from the same shards and their indexes.
    const clients = await oneConnectionPerFront(node, 2);
    expect(await get(clients[0] as Client, 'survivor')).toEqual({ status: 200, body: 'still here' });
    await Promise.all([onFirst.close(), onSecond.close(), ...clients.map((c) => c.close())]);
    const text = await (await fetch(`${node.url}/metrics`)).text();
    expect(text).toMatch(/^strata_front_starts_total\{front="0"\} 2$/m);
    expect(text).toMatch(/^strata_front_starts_total\{front="1"\} 1$/m);
  });
});

describe('graceful shutdown with several fronts', () => {
  let origin: TestOrigin;
  beforeAll(async () => {
    origin = await TestOrigin.start();
  });
  afterAll(async () => {
    await origin?.stop();
  });

  it('drains every front: requests in flight on each are answered, then nothing listens', async () => {
    const node = await startTestNode({ fronts: 2, shards: 2, origins: [{ prefix: 'slow:', url: `${origin.url}/slow/{id}`, ttl: 60, timeoutMs: 2000 }] });
    const clients = await oneConnectionPerFront(node, 2);
    origin.route('/slow/a', { body: 'answered' });
    origin.hold();
    const inFlight = clients.map((c) => get(c, 'slow:a'));
    // One read in flight on each front (behind one origin request), and this stats request.
    await until(async () => {
      const s = await stats(node);
      return s.fronts.every((f) => f.requestsInFlight >= 1) && s.requestsInFlight >= 3;
    });
    const closed = node.close();
    await new Promise((r) => setTimeout(r, 100));
    origin.release();
    expect(await Promise.all(inFlight)).toEqual(new Array(2).fill({ status: 200, body: 'answered' }));
    await closed;
    await expect(fetch(`${node.url}/healthz`)).rejects.toThrow();
    await Promise.all(clients.map((c) => c.close()));
  });
});

async function getRequestsMetric(node: Node): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  return Number(/^strata_requests_total\{route="get",code="200"\} (\d+)$/m.exec(text)?.[1] ?? 0);
}

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHARD_SLOT } from '../../src/counters/layout.js';
import { shardOf } from '../../src/shards/route.js';
import { startTestNode, until } from '../helpers/node.js';

type Node = Awaited<ReturnType<typeof startTestNode>>;
let node: Node;

beforeAll(async () => {
  node = await startTestNode({ shards: 2 });
});
afterAll(async () => {
  await node?.close();
});

/** A key that lives on the given shard. */
function keyOn(shard: number, prefix: string): string {
  for (let i = 0; ; i++) if (shardOf(`${prefix}${i}`, 2) === shard) return `${prefix}${i}`;
}

describe('a shard worker that dies', () => {
  it('fails its waiting requests with 503 E_SHARD_UNAVAILABLE, is replaced, and the node heals without a restart', async () => {
    const pool = node.internals.pool;
    const victim = keyOn(0, 'victim');
    const survivor = keyOn(1, 'survivor');
    await fetch(`${node.url}/v1/keys/${victim}`, { method: 'PUT', body: 'v' });
    await fetch(`${node.url}/v1/keys/${survivor}`, { method: 'PUT', body: 's' });
    const oldThread = pool.workerThreadIds()[0];
    const worker = pool.workerThreadOf(0);
    expect(worker).toBeDefined();

    // Requests in flight to shard 0 while its worker is killed.
    const inFlight: Promise<Response>[] = Array.from({ length: 50 }, () => fetch(`${node.url}/v1/keys/${victim}`));
    const killed = worker?.terminate();
    const statuses = await Promise.all(
      inFlight.map(async (p) => {
        const res = await p;
        const body = res.status === 200 ? null : ((await res.json()) as { error: { code: string } });
        return body === null ? 200 : `${res.status} ${body.error.code}`;
      }),
    );
    await killed;
    // Every request ends: served before the kill, failed fast while the shard is down, or a miss on the new empty L1.
    for (const s of statuses) expect([200, '503 E_SHARD_UNAVAILABLE', '404 E_KEY_NOT_FOUND']).toContain(s);

    // The other shard never noticed.
    expect(await (await fetch(`${node.url}/v1/keys/${survivor}`)).text()).toBe('s');

    // A new worker takes shard 0; its L1 starts empty, and writes work again.
    await until(() => pool.isUp(0) && pool.workerThreadIds()[0] !== oldThread && node.counters.shard(0, SHARD_SLOT.WORKER_STARTS) === 2);
    expect((await fetch(`${node.url}/v1/keys/${victim}`)).status).toBe(404);
    expect((await fetch(`${node.url}/v1/keys/${victim}`, { method: 'PUT', body: 'again' })).status).toBe(204);
    expect(await (await fetch(`${node.url}/v1/keys/${victim}`)).text()).toBe('again');
    expect((await fetch(`${node.url}/readyz`)).status).toBe(200);
  });

  it('while a shard has no worker, its requests get 503 at once instead of hanging', async () => {
    const pool = node.internals.pool;
    const key = keyOn(1, 'waiting');
    const worker = pool.workerThreadOf(1);
    await worker?.terminate();
    // Between the death and the replacement, answers are immediate 503s; afterwards 404 (empty L1).
    const res = await fetch(`${node.url}/v1/keys/${key}`);
    expect([503, 404]).toContain(res.status);
    await until(() => pool.isUp(1));
    expect((await fetch(`${node.url}/v1/keys/${key}`)).status).toBe(404);
  });
});

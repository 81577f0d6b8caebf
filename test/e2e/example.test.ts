import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Service, startService, type User } from '../../docs/examples/cache-aside/service.js';
import { ROOT, startTestNode, until } from '../helpers/node.js';
import { RedisServer } from '../helpers/redis.js';

// The cache-aside example (docs/examples/cache-aside/) against a real node with Redis and the real PostgreSQL
// on 127.0.0.1:5432: two instances of the service share the node and a table of this run's own.

type TestNode = Awaited<ReturnType<typeof startTestNode>>;
const PG = 'postgres://postgres@127.0.0.1:5432/test';
const table = `example_users_${randomBytes(4).toString('hex')}`;

interface LeaseStats {
  granted: number;
  filled: number;
}

let redis: RedisServer;
let node: TestNode;
let admin: pg.Client;
let a: Service;
let b: Service;

const leaseStats = async (): Promise<LeaseStats> =>
  ((await (await fetch(`${node.url}/v1/stats`)).json()) as { coordination: { leases: LeaseStats } }).coordination.leases;

/** GET /users/:id, its status and JSON body. */
async function getUser(service: { url: string }, id: number): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${service.url}/users/${id}`);
  return { status: res.status, body: await res.json() };
}

const loads = () => a.loads + b.loads;

beforeAll(async () => {
  admin = new pg.Client({ connectionString: PG });
  await admin.connect();
  redis = await RedisServer.start();
  node = await startTestNode({ redisUrl: redis.url, shards: 2, fronts: 1 });
  // One after the other: the first creates and seeds the table, the second finds it there.
  a = await startService({ strataUrl: node.url, pgUrl: PG, port: 0, table });
  b = await startService({ strataUrl: node.url, pgUrl: PG, port: 0, table });
});

afterAll(async () => {
  await a?.close();
  await b?.close();
  await node?.close();
  await redis?.stop();
  await admin?.query(`DROP TABLE IF EXISTS ${table}`);
  await admin?.end();
});

describe('cache-aside example over PostgreSQL', () => {
  it('reads a user from PostgreSQL once, then from Strata, from either instance', async () => {
    const ada: User = { id: 1, name: 'Ada Lovelace', email: 'ada@example.org' };
    expect(await getUser(a, 1)).toEqual({ status: 200, body: ada });
    expect(a.loads).toBe(1);
    expect(b.loads).toBe(0);
    // The copy is in Strata, under the namespace, as JSON.
    const cached = await fetch(`${node.url}/v1/keys/users%3A1`);
    expect(cached.headers.get('content-type')).toBe('application/json');
    expect(await cached.json()).toEqual(ada);
    // Again, and from the other instance (which never loaded it): no query.
    expect(await getUser(a, 1)).toEqual({ status: 200, body: ada });
    expect(await getUser(b, 1)).toEqual({ status: 200, body: ada });
    expect(loads()).toBe(1);
  });

  it('50 concurrent GETs of a cold user, over both instances, load it from PostgreSQL once', async () => {
    const grace: User = { id: 2, name: 'Grace Hopper', email: 'grace@example.org' };
    const before = { loads: loads(), leases: await leaseStats() };
    // The table is locked, so the first load waits in PostgreSQL until all 50 requests are being answered.
    const locker = new pg.Client({ connectionString: PG });
    await locker.connect();
    try {
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
      const answers = Array.from({ length: 50 }, (_, i) => getUser(i % 2 === 0 ? a : b, 2));
      const lockedOut = async () =>
        Number(
          (await admin.query("SELECT count(*) AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE $1", [`SELECT % FROM ${table} %`]))
            .rows[0].n,
        );
      await until(async () => a.inFlight + b.inFlight === 50 && (await lockedOut()) >= 1);
      expect(loads()).toBe(before.loads + 1);
      await locker.query('COMMIT');
      for (const answer of await Promise.all(answers)) expect(answer).toEqual({ status: 200, body: grace });
    } finally {
      await locker.end();
    }
    expect(loads()).toBe(before.loads + 1);
    // One lease in the cluster, and its fill stored the value.
    const after = await leaseStats();
    expect(after.granted - before.leases.granted).toBe(1);
    expect(after.filled - before.leases.filled).toBe(1);
    expect(await getUser(b, 2)).toEqual({ status: 200, body: grace });
    expect(loads()).toBe(before.loads + 1);
  });

  it('a PUT updates the row and drops the cached copy: the next GET, on either instance, has the new value', async () => {
    const old: User = { id: 3, name: 'Edsger Dijkstra', email: 'edsger@example.org' };
    expect(await getUser(a, 3)).toEqual({ status: 200, body: old });
    const before = loads();
    const put = await fetch(`${a.url}/users/3`, { method: 'PUT', body: JSON.stringify({ email: 'ewd@example.org' }) });
    const updated: User = { ...old, email: 'ewd@example.org' };
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual(updated);
    expect((await admin.query(`SELECT email FROM ${table} WHERE id = 3`)).rows).toEqual([{ email: 'ewd@example.org' }]);
    expect((await fetch(`${node.url}/v1/keys/users%3A3`)).status).toBe(404);
    expect(await getUser(b, 3)).toEqual({ status: 200, body: updated });
    expect(loads()).toBe(before + 1);
    expect(await getUser(a, 3)).toEqual({ status: 200, body: updated });
    expect(loads()).toBe(before + 1);
  });

  it('answers 404 for a user that is not there (nothing cached), 400 for a bad body, 405 for another method', async () => {
    expect(await getUser(a, 999)).toEqual({ status: 404, body: { error: 'no user 999' } });
    expect((await fetch(`${node.url}/v1/keys/users%3A999`)).status).toBe(404);
    const bad = await fetch(`${a.url}/users/4`, { method: 'PUT', body: '{"name": 42}' });
    expect(bad.status).toBe(400);
    expect((await admin.query(`SELECT name FROM ${table} WHERE id = 4`)).rows).toEqual([{ name: 'Barbara Liskov' }]);
    expect((await fetch(`${a.url}/users/4`, { method: 'PUT', body: '{"name":"B. Liskov"}' })).status).toBe(200);
    expect((await fetch(`${a.url}/users/5`, { method: 'PUT', body: '{"name":"nobody"}' })).status).toBe(404);
    expect((await fetch(`${a.url}/users/4`, { method: 'DELETE' })).status).toBe(405);
    expect((await fetch(`${a.url}/users/abc`)).status).toBe(404);
  });

  it('runs as its README says, from the build (node dist/docs/examples/cache-aside/service.js)', async () => {
    const child: ChildProcess = spawn(process.execPath, [`${ROOT}dist/docs/examples/cache-aside/service.js`], {
      cwd: ROOT,
      env: { ...process.env, STRATA_URL: node.url, DATABASE_URL: PG, PORT: '0', USERS_TABLE: table, STRATA_TOKEN: '' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = once(child, 'exit');
    try {
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
      });
      await until(() => /listening on http:\/\/127\.0\.0\.1:\d+/.test(out) || child.exitCode !== null);
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
      expect(url).toBeDefined();
      // A third instance of the same application: user 1 is cached already, and its PUT shows on the others.
      expect(await getUser({ url: url as string }, 1)).toEqual({ status: 200, body: { id: 1, name: 'Ada Lovelace', email: 'ada@example.org' } });
      const before = loads();
      expect((await fetch(`${url}/users/1`, { method: 'PUT', body: '{"name":"Ada King"}' })).status).toBe(200);
      expect(await getUser(a, 1)).toEqual({ status: 200, body: { id: 1, name: 'Ada King', email: 'ada@example.org' } });
      expect(loads()).toBe(before + 1);
    } finally {
      child.kill('SIGTERM');
    }
    // SIGTERM closes the server and the pool, and the process ends by itself.
    expect(await exited).toEqual([0, null]);
  });
});

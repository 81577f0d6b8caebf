import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BATCH_KEYS } from '../../src/api/input.js';
import { MIGRATION } from '../../src/invalidation/outbox.js';
import { startTestNode, until } from '../helpers/node.js';
import { RedisServer } from '../helpers/redis.js';

// Invalidation from the real PostgreSQL on 127.0.0.1:5432 (database test), in a schema of this test's own:
// a trigger writes the outbox in the same transaction as the change; three nodes sharing Redis drop the key.

type Node = Awaited<ReturnType<typeof startTestNode>>;
const PG = 'postgres://postgres@127.0.0.1:5432/test';
const schema = `strata_t_${randomBytes(4).toString('hex')}`;
const url = `${PG}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
let admin: pg.Client;
let redis: RedisServer;
let nodes: Node[];
let solo: Node;

interface PgStatus {
  up: boolean;
  appliedId: number;
  role: string;
  applied: number;
  reconnects: number;
  lag: number;
}
const pgStatus = async (node: Node) => ((await (await fetch(`${node.url}/v1/stats`)).json()) as { postgres: PgStatus }).postgres;
const status = async (node: Node, key: string) => (await fetch(`${node.url}/v1/keys/${key}`)).status;

beforeAll(async () => {
  admin = new pg.Client({ connectionString: PG });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  redis = await RedisServer.start();
  nodes = await Promise.all([1, 2, 3].map(() => startTestNode({ redisUrl: redis.url, shards: 2, postgresUrl: url })));
  solo = await startTestNode({ shards: 1, postgresUrl: url });
  // The nodes created the outbox and its trigger function; the application's table uses it.
  await until(async () => (await Promise.all([...nodes, solo].map(pgStatus))).every((s) => s.up), 20_000);
  await admin.query(`SET search_path = ${schema}`);
  await admin.query('CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)');
  await admin.query("CREATE TRIGGER items_strata AFTER INSERT OR UPDATE OR DELETE ON items FOR EACH ROW EXECUTE FUNCTION strata_invalidate_row('item:', 'id')");
  await admin.query("INSERT INTO items SELECT g, 'v0' FROM generate_series(1, 40) g");
  // The inserts' own invalidations are applied before the tests cache anything.
  await settled();
}, 60_000);

/** Resolves once the outbox is applied up to its last entry (by the applier, and by the L1-only follower). */
async function settled(): Promise<void> {
  const last = Number((await admin.query('SELECT COALESCE(max(id), 0) AS id FROM strata_invalidations')).rows[0].id);
  await until(async () => {
    const all = await Promise.all([...nodes, solo].map(pgStatus));
    return all.filter((s) => s.role !== 'standby').every((s) => s.appliedId >= last);
  }, 20_000);
}
afterAll(async () => {
  await Promise.all([...(nodes ?? []), solo].filter(Boolean).map((n) => n.close()));
  await redis?.stop();
  await admin?.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
  await admin?.end();
});

/** Caches item:id on every node (each reads it once, so it is in every L1). */
async function cacheEverywhere(ids: number[]): Promise<void> {
  for (const id of ids) {
    expect((await fetch(`${(nodes[0] as Node).url}/v1/keys/item:${id}`, { method: 'PUT', body: `cached ${id}` })).status).toBe(204);
    for (const node of nodes) expect(await status(node, `item:${id}`)).toBe(200);
  }
}

describe('invalidation from PostgreSQL', () => {
  it('a row update drops its key on all three nodes; exactly one node applies the outbox', async () => {
    await cacheEverywhere([1, 2, 3]);
    const roles = (await Promise.all(nodes.map(pgStatus))).map((s) => s.role).sort();
    expect(roles).toEqual(['applier', 'standby', 'standby']);
    await admin.query("UPDATE items SET name = 'v1' WHERE id = 2");
    await until(async () => (await Promise.all(nodes.map((n) => status(n, 'item:2')))).every((s) => s === 404));
    expect(await Promise.all(nodes.map((n) => status(n, 'item:1')))).toEqual([200, 200, 200]);
    // The L1-only node applies every entry for itself.
    expect((await fetch(`${solo.url}/v1/keys/item:2`, { method: 'PUT', body: 'solo' })).status).toBe(204);
    await admin.query("UPDATE items SET name = 'v2' WHERE id = 2");
    await until(async () => (await status(solo, 'item:2')) === 404);
    expect((await pgStatus(solo)).role).toBe('follower');
    const applied = (await Promise.all(nodes.map(pgStatus))).map((s) => s.applied);
    expect(applied.filter((n) => n > 0).length).toBe(1);
  });

  it('no invalidation is lost while the listener’s connection is killed (pg_terminate_backend) as rows change', async () => {
    const ids = Array.from({ length: 30 }, (_, i) => i + 10);
    await cacheEverywhere(ids);
    const before = (await Promise.all(nodes.map(pgStatus))).reduce((n, s) => n + s.reconnects, 0);
    const kill = () => admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'strata-invalidation'");
    for (const [i, id] of ids.entries()) {
      await admin.query('UPDATE items SET name = $1 WHERE id = $2', [`v${i}`, id]);
      if (i % 7 === 0) await kill();
    }
    for (const node of nodes) await until(async () => (await Promise.all(ids.map((id) => status(node, `item:${id}`)))).every((s) => s === 404), 20_000, 100);
    const after = await Promise.all(nodes.map(pgStatus));
    expect(after.reduce((n, s) => n + s.reconnects, 0)).toBeGreaterThan(before);
    await until(async () => (await Promise.all(nodes.map(pgStatus))).every((s) => s.up && s.lag === 0), 10_000);
  }, 60_000);

  it('a bad payload is skipped and counted, and what follows it is applied', async () => {
    await cacheEverywhere([4]);
    await admin.query(`INSERT INTO strata_invalidations (payload) VALUES ('{"keys":[1,2]}')`);
    // Over the HTTP API's cap of keys per invalidation: refused whole, as POST /v1/invalidate would.
    await admin.query(`SELECT strata_invalidate(array_agg('item:' || g)) FROM generate_series(1, ${MAX_BATCH_KEYS + 1}) g`);
    await admin.query("SELECT strata_invalidate(ARRAY['item:4'])");
    await until(async () => (await Promise.all(nodes.map((n) => status(n, 'item:4')))).every((s) => s === 404));
    const text = await (await fetch(`${(nodes[0] as Node).url}/metrics`)).text();
    expect(text).toMatch(/strata_pg_listener_up 1/);
    const rejected = (
      await Promise.all(nodes.map(async (n) => (await (await fetch(`${n.url}/v1/stats`)).json()) as { postgres: { rejected: number } }))
    ).reduce((n, s) => n + s.postgres.rejected, 0);
    expect(rejected).toBeGreaterThanOrEqual(2);
  });

  // Ids are taken at INSERT, rows appear at COMMIT. The later transaction holds its xid from the start or
  // takes it after the earlier one: the listener must wait for the earlier one either way.
  it.each([
    { laterTookXidFirst: false, ids: [50, 51, 52] },
    { laterTookXidFirst: true, ids: [53, 54, 55] },
  ])(
    'an entry that commits after a later one was applied is applied too (later transaction took its xid first: $laterTookXidFirst)',
    async ({ laterTookXidFirst, ids }) => {
      const [early, late, next] = ids as [number, number, number];
      await cacheEverywhere(ids);
      for (const id of ids) expect((await fetch(`${solo.url}/v1/keys/item:${id}`, { method: 'PUT', body: 'solo' })).status).toBe(204);
      const gone = async (id: number) => (await Promise.all([...nodes, solo].map((n) => status(n, `item:${id}`)))).every((s) => s === 404);
      const a = new pg.Client({ connectionString: url });
      const b = new pg.Client({ connectionString: url });
      await Promise.all([a.connect(), b.connect()]);
      try {
        if (laterTookXidFirst) await b.query('BEGIN; SELECT pg_current_xact_id()');
        await a.query(`BEGIN; SELECT strata_invalidate(ARRAY['item:${early}'])`);
        await b.query(`SELECT strata_invalidate(ARRAY['item:${late}'])`);
        if (laterTookXidFirst) await b.query('COMMIT');
        await until(() => gone(late));
        // Another entry, applied by a later read, while the early one is still uncommitted.
        await admin.query(`SELECT strata_invalidate(ARRAY['item:${next}'])`);
        await until(() => gone(next));
        expect(await Promise.all([...nodes, solo].map((n) => status(n, `item:${early}`)))).toEqual([200, 200, 200, 200]);
        await a.query('COMMIT');
        await until(() => gone(early));
      } finally {
        await Promise.all([a.end(), b.end()]);
      }
    },
  );

  it('a node without an L2 deletes the rows it applied once they are older than the retention', async () => {
    const own = `${schema}_solo`;
    const ownUrl = `${PG}?options=${encodeURIComponent(`-c search_path=${own}`)}`;
    await admin.query(`CREATE SCHEMA ${own}`);
    const client = new pg.Client({ connectionString: ownUrl });
    await client.connect();
    let node: Node | undefined;
    try {
      await client.query(MIGRATION);
      await client.query(`INSERT INTO strata_invalidations (payload, created_at) VALUES ('{"keys":["item:1"]}', now() - interval '1 hour')`);
      await client.query("SELECT strata_invalidate(ARRAY['item:2'])");
      node = await startTestNode({ shards: 1, postgresUrl: ownUrl });
      const ages = async () => (await client.query("SELECT created_at < now() - interval '1 minute' AS old FROM strata_invalidations")).rows;
      await until(async () => (await ages()).length === 1);
      expect(await ages()).toEqual([{ old: false }]);
      expect((await pgStatus(node)).role).toBe('follower');
    } finally {
      await node?.close();
      await client.end();
      await admin.query(`DROP SCHEMA ${own} CASCADE`);
    }
  });
});

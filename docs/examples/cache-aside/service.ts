/**
 * Cache-aside over PostgreSQL with the typed client (README.md beside this file):
 * `GET /users/:id` reads a user through Strata, loading it from PostgreSQL on a
 * miss (one load cluster-wide, by the server's leases); `PUT /users/:id`
 * updates the row, then drops the cached copy.
 *
 *   npm start                                          # a Strata node on :8080
 *   npm run build && node dist/docs/examples/cache-aside/service.js
 *   curl http://127.0.0.1:3000/users/1
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { createClient, json } from 'strata/client';

/** A row of the users table, as it is cached (JSON: every field round-trips). */
export interface User {
  id: number;
  name: string;
  email: string;
}

export interface ServiceOptions {
  /** A Strata node, or a balancer in front of several: `http://127.0.0.1:8080`. */
  readonly strataUrl: string;
  /** Bearer token for the cache's writes, when the nodes have tokens. */
  readonly strataToken?: string;
  /** PostgreSQL: `postgres://postgres@127.0.0.1:5432/test`. */
  readonly pgUrl: string;
  /** HTTP port on 127.0.0.1; 0 picks a free one. */
  readonly port: number;
  /** The users table, created and seeded when missing (a plain SQL identifier). @default 'example_users' */
  readonly table?: string;
}

export interface Service {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Users read from PostgreSQL so far: one per cache miss that ran the loader. */
  readonly loads: number;
  /** HTTP requests being answered right now. */
  readonly inFlight: number;
  /** Stops the HTTP server and closes the PostgreSQL pool. */
  close(): Promise<void>;
}

/** The loader found no row: answered 404, and nothing is cached. */
class UserNotFound extends Error {}

/** A request body that is not `{ "name"?: string, "email"?: string }`. */
class BadRequest extends Error {}

const SEED: readonly User[] = [
  { id: 1, name: 'Ada Lovelace', email: 'ada@example.org' },
  { id: 2, name: 'Grace Hopper', email: 'grace@example.org' },
  { id: 3, name: 'Edsger Dijkstra', email: 'edsger@example.org' },
  { id: 4, name: 'Barbara Liskov', email: 'barbara@example.org' },
];

/** A user id in a path: a positive int4. */
const USER_PATH = /^\/users\/([1-9][0-9]{0,8})$/;
const MAX_BODY_BYTES = 16 * 1024;

/** Creates and seeds the table, then serves `GET` and `PUT /users/:id` on 127.0.0.1. */
export async function startService(options: ServiceOptions): Promise<Service> {
  const table = options.table ?? 'example_users';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(table)) throw new TypeError('table must be a plain SQL identifier: [a-z_][a-z0-9_]*, at most 63 characters');

  const db = new pg.Pool({ connectionString: options.pgUrl, max: 4 });
  await db.query(`CREATE TABLE IF NOT EXISTS ${table} (id int PRIMARY KEY, name text NOT NULL, email text NOT NULL)`);
  await db.query(`INSERT INTO ${table} (id, name, email) SELECT * FROM json_populate_recordset(NULL::${table}, $1) ON CONFLICT (id) DO NOTHING`, [
    JSON.stringify(SEED),
  ]);

  const client = createClient({ url: options.strataUrl, ...(options.strataToken === undefined ? {} : { token: options.strataToken }) });
  // The keys `users:<id>` hold User values as JSON (json<User>() would not compile for a User with a Date in it).
  const users = client.namespace<User>('users', { codec: json<User>() });

  let loads = 0;
  let inFlight = 0;

  async function loadUserFromPostgres(id: number): Promise<User> {
    loads++;
    const { rows } = await db.query<User>(`SELECT id, name, email FROM ${table} WHERE id = $1`, [id]);
    const user = rows[0];
    if (user === undefined) throw new UserNotFound(`no user ${id}`);
    return user;
  }

  /** GET: from Strata; on a miss one caller in the whole cluster loads it from PostgreSQL, the others wait for its fill. */
  function getUser(id: number): Promise<User> {
    return users.getOrSet(String(id), () => loadUserFromPostgres(id), { ttl: 60 });
  }

  /** PUT: PostgreSQL first, then drop the cached copy (which also voids a lease whose loader read the old row). */
  async function updateUser(id: number, change: Partial<Omit<User, 'id'>>): Promise<User> {
    const { rows } = await db.query<User>(
      `UPDATE ${table} SET name = COALESCE($2, name), email = COALESCE($3, email) WHERE id = $1 RETURNING id, name, email`,
      [id, change.name ?? null, change.email ?? null],
    );
    const user = rows[0];
    if (user === undefined) throw new UserNotFound(`no user ${id}`);
    await users.delete(String(id));
    return user;
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const match = USER_PATH.exec(new URL(req.url ?? '/', 'http://localhost').pathname);
    if (match === null) return reply(res, 404, { error: 'not found: try GET or PUT /users/<id>' });
    const id = Number(match[1]);
    try {
      if (req.method === 'GET') return reply(res, 200, await getUser(id));
      if (req.method === 'PUT') return reply(res, 200, await updateUser(id, parseChange(await readBody(req))));
      res.setHeader('allow', 'GET, PUT');
      return reply(res, 405, { error: 'method not allowed' });
    } catch (err) {
      if (err instanceof UserNotFound) return reply(res, 404, { error: err.message });
      if (err instanceof BadRequest) return reply(res, 400, { error: err.message });
      throw err;
    }
  }

  const server = createServer((req, res) => {
    inFlight++;
    handle(req, res)
      .catch((err: unknown) => {
        console.error(err);
        if (!res.headersSent) reply(res, 500, { error: 'internal error' });
        else res.destroy();
      })
      .finally(() => inFlight--);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, '127.0.0.1', resolve);
    });
  } catch (err) {
    await db.end();
    throw err;
  }

  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get loads() {
      return loads;
    },
    get inFlight() {
      return inFlight;
    },
    async close() {
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
      await db.end();
    },
  };
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > MAX_BODY_BYTES) throw new BadRequest(`the body is larger than ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `{ "name"?: string, "email"?: string }`, at least one of them. */
function parseChange(body: string): Partial<Omit<User, 'id'>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw new BadRequest('the body is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null) throw new BadRequest('the body is not a JSON object');
  const { name, email } = parsed as Record<string, unknown>;
  if (name !== undefined && typeof name !== 'string') throw new BadRequest('name must be a string');
  if (email !== undefined && typeof email !== 'string') throw new BadRequest('email must be a string');
  if (name === undefined && email === undefined) throw new BadRequest('give name, email or both');
  return { ...(name === undefined ? {} : { name }), ...(email === undefined ? {} : { email }) };
}

/** Run directly: STRATA_URL, STRATA_TOKEN, DATABASE_URL, PORT and USERS_TABLE from the environment. */
async function main(): Promise<void> {
  const env = process.env;
  const service = await startService({
    strataUrl: env.STRATA_URL || 'http://127.0.0.1:8080',
    pgUrl: env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test',
    port: Number(env.PORT || 3000),
    ...(env.STRATA_TOKEN ? { strataToken: env.STRATA_TOKEN } : {}),
    ...(env.USERS_TABLE ? { table: env.USERS_TABLE } : {}),
  });
  console.log(`cache-aside example listening on ${service.url} (try: curl ${service.url}/users/1)`);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      service.close().catch((err: unknown) => {
        console.error(err);
        process.exitCode = 1;
      });
    });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) await main();

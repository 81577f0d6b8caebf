/**
 * A Strata cluster on loopback without Docker (`npm run cluster:up` /
 * `cluster:down`, src/cluster/launcher.ts): a Redis Cluster of 6 nodes (3
 * masters, 3 replicas), N Strata nodes on one ring with the registry on, and
 * HAProxy in front when it is installed. Every one is a real process on
 * 127.0.0.1, started detached so that it outlives the command that started
 * it, with its own directory (working directory, data, log) under one state
 * directory. The state file there names every process; `down` stops those
 * and nothing else.
 *
 * Pids get reused: a recorded pid is signalled only while /proc/<pid>/cmdline
 * still reads as it did when the process was ready (after redis-server
 * rewrote its title). A process `up` started but has not recorded yet is
 * stopped through its ChildProcess handle, which never signals a pid Node
 * has already reaped. Linux only (/proc).
 *
 * The Redis Cluster's creation (the node flags, `redis-cli --cluster create`,
 * the health check) is exported for the tests' RedisCluster as well
 * (test/helpers/redis.ts): one copy of it.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { accessSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The state file's name in the state directory. */
export const STATE_FILE = 'state.json';
/** How long a stopped process gets between SIGTERM and SIGKILL, ms (a node drains within 10 s). */
export const STOP_GRACE_MS = 10_000;
/** How long a process may take to vanish after SIGKILL, ms. */
const KILL_WAIT_MS = 5000;
/** How long a Strata node may take to answer /readyz 200, ms. */
const NODE_READY_MS = 30_000;
/** How long the nodes may take, once ready, to see each other on their rings, ms (a few heartbeats). */
const RING_AGREED_MS = 15_000;
/** How long a redis-server may take to answer PING, and the Cluster to be healthy, ms. */
const REDIS_READY_MS = 10_000;
const REDIS_CLUSTER_OK_MS = 30_000;
/** cluster-node-timeout of the launcher's Redis nodes, ms: a killed master fails over within seconds. */
const REDIS_NODE_TIMEOUT_MS = 5000;
/** How long HAProxy may take to answer and see every node healthy, ms. */
const HAPROXY_READY_MS = 15_000;
/** Lines of a log shown when its process did not get ready. */
const LOG_TAIL_LINES = 20;

/** Why the launcher gave up; `reason` is what a caller matches on. */
export class LauncherError extends Error {
  constructor(
    /** running: a cluster from this state directory still runs; start: a step of `up` failed; state: the state file is unusable; usage: a bad option. */
    readonly reason: 'running' | 'start' | 'state' | 'usage',
    message: string,
  ) {
    super(message);
    this.name = 'LauncherError';
  }
}

/** One process the launcher started, as the state file records it. */
export interface ProcessRecord {
  /** What it is: `redis 127.0.0.1:7001`, `n1`, `haproxy`. */
  readonly name: string;
  readonly pid: number;
  /** /proc/<pid>/cmdline once it was ready: `down` signals the pid only while it still reads so. */
  readonly cmdline: readonly string[];
  /** Its own directory under the state directory: working directory, data and log. */
  readonly dir: string;
  /** Its stdout and stderr. */
  readonly log: string;
  readonly port: number;
}

export interface RedisNodeRecord extends ProcessRecord {
  /** The cluster bus port (port + 10000). */
  readonly busPort: number;
}

export interface StrataNodeRecord extends ProcessRecord {
  /** Its node id (n1, n2, …): on the ring and in x-strata-node. */
  readonly id: string;
  readonly url: string;
  /** The node's command line as spawned (node and its flags), to start it again. */
  readonly command: readonly string[];
}

export interface HaproxyRecord extends ProcessRecord {
  /** The frontend: key requests hashed by path to a node. */
  readonly url: string;
  /** HAProxy's stats page. */
  readonly statsUrl: string;
  readonly config: string;
}

/** What `up` started: the state file's content. */
export interface Topology {
  readonly version: 1;
  readonly dir: string;
  readonly stateFile: string;
  /** When `up` began, ISO 8601. */
  readonly startedAt: string;
  readonly redis: { readonly seeds: readonly string[]; readonly nodes: readonly RedisNodeRecord[] };
  readonly nodes: readonly StrataNodeRecord[];
  /** null when HAProxy is not installed (or not asked for). */
  readonly haproxy: HaproxyRecord | null;
}

export interface UpOptions {
  /** The state directory. @default STRATA_CLUSTER_DIR, else <os.tmpdir()>/strata-cluster */
  readonly dir?: string;
  /** Strata nodes, n1…nN. @default 3 */
  readonly nodes?: number;
  /** Each node's --fronts. @default 1 (the nodes share the machine's cores) */
  readonly fronts?: number;
  /** Each node's --shards. @default 1 */
  readonly shards?: number;
  /** HAProxy: 'auto' starts it when it is on the PATH (and says so when it is not), true fails without it, false leaves it out. @default 'auto' */
  readonly haproxy?: boolean | 'auto';
  /** More flags for every node, after the launcher's own. @default none */
  readonly nodeArgs?: readonly string[];
  /** Progress lines for the operator. @default silent */
  readonly say?: (line: string) => void;
  /** Aborts `up` (Ctrl-C): what it started is stopped. */
  readonly signal?: AbortSignal;
}

/** What happened to one recorded process in `down`. */
export interface StopOutcome {
  readonly name: string;
  readonly pid: number;
  /** stopped: exited after SIGTERM; killed: needed SIGKILL; gone: was not running; other: the pid runs another command now (left alone); stuck: still there after SIGKILL. */
  readonly outcome: 'stopped' | 'killed' | 'gone' | 'other' | 'stuck';
}

export interface DownReport {
  readonly dir: string;
  /** Whether there was a state file. */
  readonly found: boolean;
  readonly processes: readonly StopOutcome[];
  /** Lines for the operator: what was stopped, or that there was nothing to stop. */
  readonly lines: readonly string[];
}

/** The state directory: `dir`, else STRATA_CLUSTER_DIR, else <os.tmpdir()>/strata-cluster. */
export function stateDir(dir?: string): string {
  const env = process.env.STRATA_CLUSTER_DIR;
  return resolve(dir ?? (env !== undefined && env !== '' ? env : join(tmpdir(), 'strata-cluster')));
}

// ---------------------------------------------------------------------------------------------
// Ports and redis-cli (shared with test/helpers/redis.ts)

/** A free TCP port on 127.0.0.1 (the OS picks it; it is free when this returns). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePort(port));
    });
    server.on('error', reject);
  });
}

/** Whether `port` on 127.0.0.1 can be listened on now. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.once('error', () => resolveFree(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolveFree(true)));
  });
}

/** A free port p whose cluster bus port p + 10000 is free too (and exists). */
export async function freeClusterPort(): Promise<number> {
  for (;;) {
    const port = await freePort();
    if (port + 10000 <= 65535 && (await portIsFree(port + 10000))) return port;
  }
}

/** redis-cli against one server on 127.0.0.1; resolves with its trimmed output. */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 });
  return stdout.trim();
}

/** redis-cli arguments that authenticate with `password`, if any. */
function redisAuth(password: string | undefined): string[] {
  return password === undefined ? [] : ['--no-auth-warning', '-a', password];
}

// ---------------------------------------------------------------------------------------------
// The Redis Cluster's creation (shared with test/helpers/redis.ts)

/** The redis-server flags of a Redis Cluster node; each node needs its own --dir (the config file is written there). */
export function redisClusterNodeArgs(nodeTimeoutMs: number, configFile = 'nodes.conf'): string[] {
  return ['--cluster-enabled', 'yes', '--cluster-config-file', configFile, '--cluster-node-timeout', String(nodeTimeoutMs)];
}

/** Joins six (or more) empty cluster nodes on 127.0.0.1 into a cluster of masters with one replica each. */
export async function createRedisCluster(ports: readonly number[], options: { password?: string } = {}): Promise<void> {
  await run(
    'redis-cli',
    [...redisAuth(options.password), '--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'],
    { timeout: 30_000 },
  );
}

/**
 * Whether every node on `ports` (the live ones) reports cluster_state:ok
 * with all 16384 slots served, sees every one of them connected and
 * healthy, and, if a replica, is in sync with its master (a replica that
 * never synced refuses to fail over).
 */
export async function redisClusterHealthy(ports: readonly number[], options: { password?: string } = {}): Promise<boolean> {
  const cli = (port: number, ...args: string[]) => redisCli(port, ...redisAuth(options.password), ...args).catch(() => '');
  for (const port of ports) {
    const info = await cli(port, 'cluster', 'info');
    if (!info.includes('cluster_state:ok') || !info.includes('cluster_slots_ok:16384')) return false;
    // Every node must know every live node over a connected bus link: pub/sub messages travel on those links.
    const view = (await cli(port, 'cluster', 'nodes')).split('\n').filter((l) => l.trim() !== '');
    if (view.filter((l) => / connected/.test(l) && !/fail|handshake|noaddr/.test(l)).length < ports.length) return false;
    const replication = await cli(port, 'info', 'replication');
    if (replication.includes('role:slave') && !replication.includes('master_link_status:up')) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Processes

/** The repository root (holds package.json), from src/cluster/ or dist/src/cluster/. */
function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new LauncherError('start', `no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return dir;
}

/** /proc/<pid>/cmdline's arguments; [] when the pid is gone or a zombie (its cmdline is empty). */
function cmdlineOf(pid: number): string[] {
  try {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    // A process that rewrote its title (redis-server) pads it with NULs.
    const args = raw.replace(/\0+$/, '');
    return args === '' ? [] : args.split('\0');
  } catch {
    return [];
  }
}

/** Whether the recorded process still runs: `gone` (no such pid, or a zombie), `ours`, or `other` (the pid was reused). */
function identify(record: ProcessRecord): 'ours' | 'gone' | 'other' {
  const now = cmdlineOf(record.pid);
  if (now.length === 0) return 'gone';
  return now.length === record.cmdline.length && now.every((a, i) => a === record.cmdline[i]) ? 'ours' : 'other';
}

/** A process `up` spawned, with why it is gone once it is. */
class Spawned {
  exit: string | null = null;

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    readonly log: string,
  ) {
    child.once('error', (err) => {
      this.exit ??= `could not start (${err.message})`;
    });
    child.once('exit', (code, signal) => {
      this.exit ??= signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
    });
  }

  get pid(): number {
    return this.child.pid as number;
  }

  /** Throws when it is gone, with its log's last lines. */
  assertRunning(): void {
    if (this.exit !== null) throw new LauncherError('start', `${this.name} ${this.exit}${logTail(this.log)}`);
  }

  /** Its record, read once it is ready (the command line as it reads now). */
  recorded(port: number): ProcessRecord {
    this.assertRunning();
    return { name: this.name, pid: this.pid, cmdline: cmdlineOf(this.pid), dir: dirname(this.log), log: this.log, port };
  }
}

/** Starts a process in its own process group (Ctrl-C on the launcher does not reach it), its output appended to `log`. */
function spawnDetached(name: string, command: string, args: readonly string[], cwd: string, log: string, env: NodeJS.ProcessEnv = process.env): Spawned {
  const fd = openSync(log, 'a');
  try {
    const child = spawn(command, args, { cwd, env, detached: true, stdio: ['ignore', fd, fd] });
    child.unref();
    return new Spawned(name, child, log);
  } finally {
    closeSync(fd);
  }
}

/** The last lines of a log, as a block to append to a message (empty when there is none). */
function logTail(log: string): string {
  let text: string;
  try {
    text = readFileSync(log, 'utf8');
  } catch {
    return '';
  }
  const lines = text.trimEnd().split('\n').slice(-LOG_TAIL_LINES);
  return lines.length === 0 || lines[0] === '' ? `\n(${log} is empty)` : `\nlast lines of ${log}:\n${lines.map((l) => `  ${l}`).join('\n')}`;
}

/** Polls `check` every `everyMs` until it returns true (true), or `timeoutMs` passes or `signal` aborts (false). */
async function pollFor(check: () => boolean | Promise<boolean>, timeoutMs: number, signal?: AbortSignal, everyMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (signal?.aborted) return false;
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** As pollFor, but a start-up step: throws `failure()` when the time is up, `interrupted` when aborted. */
async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, failure: () => string, signal?: AbortSignal): Promise<void> {
  if (await pollFor(check, timeoutMs, signal)) return;
  throw new LauncherError('start', signal?.aborted ? 'interrupted' : failure());
}

/** The status of a GET on 127.0.0.1 (0 when nothing answers), on a connection of its own (no keep-alive to hold the launcher up). */
function httpGet(url: string, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolveGet) => {
    const req = request(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolveGet({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolveGet({ status: 0, body: '' }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolveGet({ status: 0, body: '' }));
    req.end();
  });
}

/** The full path of `command` on the PATH, or null. */
function onPath(command: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const path = join(dir, command);
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {}
  }
  return null;
}

/** Ports handed out in this run: a free port is not free twice. */
class PortPicker {
  readonly #taken = new Set<number>();

  async port(): Promise<number> {
    for (;;) {
      const port = await freePort();
      if (this.#taken.has(port)) continue;
      this.#taken.add(port);
      return port;
    }
  }

  /** A port and its cluster bus port (port + 10000), both free. */
  async clusterPort(): Promise<number> {
    for (;;) {
      const port = await freeClusterPort();
      if (this.#taken.has(port) || this.#taken.has(port + 10000)) continue;
      this.#taken.add(port);
      this.#taken.add(port + 10000);
      return port;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The state file

function statePath(dir: string): string {
  return join(dir, STATE_FILE);
}

/** The recorded topology, or null when there is no state file. */
export function readTopology(dir?: string): Topology | null {
  const path = statePath(stateDir(dir));
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new LauncherError('state', `cannot read ${path} (${(err as Error).message})`);
  }
  try {
    const topology = JSON.parse(text) as Topology;
    if (topology.version !== 1 || !Array.isArray(topology.nodes) || !Array.isArray(topology.redis?.nodes)) throw new Error('not a launcher state file');
    return topology;
  } catch (err) {
    throw new LauncherError('state', `${path} is not a state file the launcher wrote (${(err as Error).message}); look at it and remove it`);
  }
}

/** Written whole and renamed into place: a reader never sees half a file. */
function writeTopology(topology: Topology): void {
  const temporary = `${topology.stateFile}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(topology, null, 2)}\n`);
  renameSync(temporary, topology.stateFile);
}

/** Every recorded process, in the order `down` stops them: the balancer, the nodes, then Redis (the nodes leave the registry in it). */
function tiersOf(topology: Topology): ProcessRecord[][] {
  return [topology.haproxy === null ? [] : [topology.haproxy], [...topology.nodes], [...topology.redis.nodes]];
}

/** Removes what the launcher wrote in the state directory, and the directory if that leaves it empty. */
function removeData(dir: string, records: readonly ProcessRecord[]): void {
  for (const record of records) {
    // A state file names only directories under its own: anything else is left alone.
    const own = resolve(record.dir);
    if (own.startsWith(`${dir}${sep}`)) rmSync(own, { recursive: true, force: true });
  }
  rmSync(statePath(dir), { force: true });
  try {
    rmdirSync(dir);
  } catch {
    // Not empty: something else lives there.
  }
}

// ---------------------------------------------------------------------------------------------
// up

/** The environment of a node: no STRATA_* or REDIS_URL of the caller's (flags say everything), and no config file. */
function nodeEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) if (!name.startsWith('STRATA_') && name !== 'REDIS_URL') env[name] = value;
  env.STRATA_CONFIG = '';
  return env;
}

function positiveInteger(name: string, value: number, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max) throw new LauncherError('usage', `${name} must be an integer in [1, ${max}], not ${value}`);
  return value;
}

/** HAProxy's configuration for the launcher's nodes. */
export function haproxyConfig(port: number, statsPort: number, nodes: readonly { id: string; port: number }[]): string {
  const servers = nodes.map((n) => `  server ${n.id} 127.0.0.1:${n.port} check inter 1s`).join('\n');
  return `# Written by npm run cluster:up (src/cluster/local-topology.ts); npm run cluster:down removes it.
global
  log stdout format raw local0 info

defaults
  mode http
  log global
  option httplog
  option dontlognull
  timeout connect 1s
  timeout client 10s
  timeout server 10s
  # A connection refused (a node just killed) is retried once on another node.
  retries 1
  option redispatch
  # uWebSockets.js drops HTTP/1.0 and requests without Host without answering: the check is HTTP/1.1 with a Host.
  option httpchk GET /readyz HTTP/1.1
  http-check send hdr Host strata
  http-check expect status 200

frontend strata
  bind 127.0.0.1:${port}
  # Which node HAProxy chose; x-strata-node says which one served (the key's owner, one forward away).
  http-response set-header x-haproxy-server %[srv_name]
  use_backend strata_keys if { path_beg /v1/keys/ }
  default_backend strata_any

backend strata_keys
  # The path alone is hashed (without "whole", the query string is not), on a consistent-hash ring:
  # a key's requests keep reaching one node, and a node that goes down moves only its own keys.
  balance uri path-only
  hash-type consistent
${servers}

backend strata_any
  balance leastconn
${servers}

frontend stats
  bind 127.0.0.1:${statsPort}
  stats enable
  stats uri /haproxy
  stats refresh 5s
`;
}

/** Whether HAProxy's stats (CSV) show every server of every backend up with its last check passed. */
async function haproxyHealthy(statsUrl: string, servers: number): Promise<boolean> {
  const { status, body } = await httpGet(`${statsUrl};csv`);
  if (status !== 200) return false;
  const [header, ...rows] = body.trim().split('\n');
  const columns = (header ?? '').replace(/^# /, '').split(',');
  const [sv, st, check] = ['svname', 'status', 'check_status'].map((c) => columns.indexOf(c));
  const serverRows = rows.map((r) => r.split(',')).filter((r) => r[sv as number] !== 'FRONTEND' && r[sv as number] !== 'BACKEND' && r[0] !== 'stats');
  return serverRows.length === 2 * servers && serverRows.every((r) => r[st as number] === 'UP' && r[check as number] === 'L7OK');
}

/** One run of `up`: what it has started so far, so that a failure stops exactly that. */
class Launch {
  readonly #spawned: Spawned[] = [];
  readonly #made: string[] = [];
  readonly #ports = new PortPicker();

  constructor(
    readonly dir: string,
    readonly say: (line: string) => void,
    readonly signal: AbortSignal | undefined,
  ) {}

  /** A directory of its own for one process, empty. */
  #ownDir(name: string): string {
    const path = join(this.dir, name);
    rmSync(path, { recursive: true, force: true });
    mkdirSync(path, { recursive: true });
    this.#made.push(path);
    return path;
  }

  #spawn(name: string, command: string, args: readonly string[], home: string, log: string, env?: NodeJS.ProcessEnv): Spawned {
    const started = spawnDetached(name, command, args, home, log, env);
    this.#spawned.push(started);
    return started;
  }

  /** Six cluster nodes, joined (3 masters, 3 replicas) and healthy. */
  async redis(): Promise<Topology['redis']> {
    const ports: number[] = [];
    for (let i = 0; i < 6; i++) ports.push(await this.#ports.clusterPort());
    this.say(`starting a Redis Cluster on 127.0.0.1:${ports.join(', ')}`);
    const servers = ports.map((port) => {
      const home = this.#ownDir(`redis-${port}`);
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', home, '--save', '', '--appendonly', 'no', '--daemonize', 'no'];
      const server = this.#spawn(
        `redis 127.0.0.1:${port}`,
        'redis-server',
        [...args, ...redisClusterNodeArgs(REDIS_NODE_TIMEOUT_MS, `nodes-${port}.conf`)],
        home,
        join(home, 'redis.log'),
      );
      return { server, port };
    });
    await Promise.all(
      servers.map(({ server, port }) =>
        until(
          async () => {
            server.assertRunning();
            return (await redisCli(port, 'ping').catch(() => '')) === 'PONG';
          },
          REDIS_READY_MS,
          () => `${server.name} did not answer PING within ${REDIS_READY_MS} ms${logTail(server.log)}`,
          this.signal,
        ),
      ),
    );
    await createRedisCluster(ports).catch((err: Error & { stdout?: string; stderr?: string }) => {
      throw new LauncherError('start', `redis-cli --cluster create failed: ${err.message}\n${err.stdout ?? ''}${err.stderr ?? ''}`);
    });
    await until(
      () => redisClusterHealthy(ports),
      REDIS_CLUSTER_OK_MS,
      () => `the Redis Cluster on ports ${ports.join(', ')} was not healthy (cluster_state:ok, all linked) within ${REDIS_CLUSTER_OK_MS} ms`,
      this.signal,
    );
    return {
      seeds: ports.map((p) => `127.0.0.1:${p}`),
      nodes: servers.map(({ server, port }) => ({ ...server.recorded(port), busPort: port + 10000 })),
    };
  }

  /** n1..nN on one ring, each answering /readyz 200. */
  async nodes(count: number, seeds: readonly string[], flags: readonly string[]): Promise<StrataNodeRecord[]> {
    const cli = join(repositoryRoot(), 'dist', 'src', 'cli.js');
    if (!existsSync(cli)) throw new LauncherError('start', `${cli} is missing; run npm run build first`);
    const planned: { id: string; port: number }[] = [];
    for (let i = 1; i <= count; i++) planned.push({ id: `n${i}`, port: await this.#ports.port() });
    const members = planned.map((n) => `${n.id}=http://127.0.0.1:${n.port}`).join(',');
    const started = planned.map(({ id, port }) => {
      const command = [
        process.execPath,
        '--max-semi-space-size=2',
        cli,
        ...['--port', String(port), '--node-id', id, '--redis-cluster', seeds.join(','), '--members', members, '--registry', 'on', '--routing', 'owner'],
        ...flags,
      ];
      const home = this.#ownDir(id);
      const node = this.#spawn(id, command[0] as string, command.slice(1), home, join(home, 'node.log'), nodeEnv());
      return { node, id, port, url: `http://127.0.0.1:${port}`, command };
    });
    await Promise.all(started.map(({ node, url }) => waitForNode(node, url, this.signal)));
    // Ready is not yet agreed: a node learns of the others through the registry, within a heartbeat of their start.
    const ids = planned.map((n) => n.id);
    await Promise.all(
      started.map(({ node, url }) =>
        until(
          async () => {
            node.assertRunning();
            return seesWholeRing(url, ids);
          },
          RING_AGREED_MS,
          () => `${node.name} (${url}/v1/cluster) did not see all of ${ids.join(', ')} up on its ring within ${RING_AGREED_MS} ms${logTail(node.log)}`,
          this.signal,
        ),
      ),
    );
    return started.map(({ node, id, port, url, command }) => ({ ...node.recorded(port), id, url, command }));
  }

  /** HAProxy in front of the nodes, once it sees every one pass its health check. */
  async haproxy(path: string, nodes: readonly StrataNodeRecord[]): Promise<HaproxyRecord> {
    const port = await this.#ports.port();
    const statsPort = await this.#ports.port();
    const home = this.#ownDir('haproxy');
    const config = join(home, 'haproxy.cfg');
    writeFileSync(config, haproxyConfig(port, statsPort, nodes));
    this.say(`starting HAProxy on 127.0.0.1:${port}`);
    const started = this.#spawn('haproxy', path, ['-f', config, '-db'], home, join(home, 'haproxy.log'));
    const url = `http://127.0.0.1:${port}`;
    const statsUrl = `http://127.0.0.1:${statsPort}/haproxy`;
    await until(
      async () => {
        started.assertRunning();
        return (await httpGet(`${url}/readyz`)).status === 200 && (await haproxyHealthy(statsUrl, nodes.length));
      },
      HAPROXY_READY_MS,
      () => `HAProxy did not see every node pass its health check within ${HAPROXY_READY_MS} ms (${statsUrl})${logTail(started.log)}`,
      this.signal,
    );
    return { ...started.recorded(port), url, statsUrl, config };
  }

  /** After a failure: stops what this run started and removes its directories and the state file. */
  async undo(): Promise<void> {
    await stopSpawned(this.#spawned);
    for (const path of this.#made) rmSync(path, { recursive: true, force: true });
    rmSync(statePath(this.dir), { force: true });
    try {
      rmdirSync(this.dir);
    } catch {
      // Not empty: something else lives there.
    }
  }
}

/**
 * Starts the whole topology (file comment) and records it in the state
 * directory, tier by tier as each gets ready. Refuses when a cluster from
 * that directory still runs; cleans up after one that died. On any failure,
 * stops what it started and throws a LauncherError saying why.
 */
export async function clusterUp(options: UpOptions = {}): Promise<Topology> {
  const dir = stateDir(options.dir);
  const say = options.say ?? (() => {});
  const count = positiveInteger('nodes', options.nodes ?? 3, 64);
  const fronts = positiveInteger('fronts', options.fronts ?? 1, 64);
  const shards = positiveInteger('shards', options.shards ?? 1, 256);
  const haproxyPath = options.haproxy === false ? null : onPath('haproxy');
  if (options.haproxy === true && haproxyPath === null) throw new LauncherError('start', 'haproxy is not on the PATH; install it (apt-get install haproxy)');

  const previous = readTopology(dir);
  if (previous !== null) {
    const running = tiersOf(previous)
      .flat()
      .filter((r) => identify(r) === 'ours');
    if (running.length > 0)
      throw new LauncherError('running', `a cluster from ${dir} is still running (${running.map((r) => r.name).join(', ')}); run npm run cluster:down first`);
    say(`a previous cluster in ${dir} is no longer running; removing what it left`);
    removeData(dir, tiersOf(previous).flat());
  }
  mkdirSync(dir, { recursive: true });

  const launch = new Launch(dir, say, options.signal);
  let topology: Topology = {
    version: 1,
    dir,
    stateFile: statePath(dir),
    startedAt: new Date().toISOString(),
    redis: { seeds: [], nodes: [] },
    nodes: [],
    haproxy: null,
  };
  try {
    topology = { ...topology, redis: await launch.redis() };
    writeTopology(topology);
    say(`starting ${count} Strata node${count === 1 ? '' : 's'} (${fronts} front${fronts === 1 ? '' : 's'}, ${shards} shard${shards === 1 ? '' : 's'} each)`);
    const flags = ['--fronts', String(fronts), '--shards', String(shards), ...(options.nodeArgs ?? [])];
    topology = { ...topology, nodes: await launch.nodes(count, topology.redis.seeds, flags) };
    writeTopology(topology);
    if (haproxyPath !== null) {
      topology = { ...topology, haproxy: await launch.haproxy(haproxyPath, topology.nodes) };
      writeTopology(topology);
    } else if (options.haproxy !== false) {
      say('haproxy is not on the PATH: no load balancer in front of the nodes (apt-get install haproxy to have one)');
    }
    return topology;
  } catch (err) {
    say('start-up failed: stopping what was started');
    await launch.undo();
    throw err;
  }
}

/** Waits for a node's /readyz 200; throws with its log's last lines when it exits or does not get ready. */
async function waitForNode(started: Spawned, url: string, signal: AbortSignal | undefined): Promise<void> {
  await until(
    async () => {
      started.assertRunning();
      return (await httpGet(`${url}/readyz`)).status === 200;
    },
    NODE_READY_MS,
    () => `${started.name} (${url}) did not answer /readyz 200 within ${NODE_READY_MS} ms${logTail(started.log)}`,
    signal,
  );
}

/** Whether a node's /v1/cluster has exactly `ids` on its ring, every one of them up. */
async function seesWholeRing(url: string, ids: readonly string[]): Promise<boolean> {
  const { status, body } = await httpGet(`${url}/v1/cluster`);
  if (status !== 200) return false;
  const view = JSON.parse(body) as { ring?: { members?: { id: string }[] }; members?: { id: string; state: string }[] };
  const onRing = (view.ring?.members ?? []).map((m) => m.id).sort();
  return onRing.join(',') === [...ids].sort().join(',') && (view.members ?? []).every((m) => m.state === 'up');
}

/** Stops processes this run spawned, through their handles: SIGTERM, SIGKILL after STOP_GRACE_MS. */
async function stopSpawned(spawned: readonly Spawned[]): Promise<void> {
  const live = () => spawned.filter((s) => s.exit === null && s.child.pid !== undefined);
  for (const s of live()) s.child.kill('SIGTERM');
  if (await pollFor(() => live().length === 0, STOP_GRACE_MS)) return;
  for (const s of live()) s.child.kill('SIGKILL');
  await pollFor(() => live().length === 0, KILL_WAIT_MS);
}

// ---------------------------------------------------------------------------------------------
// down, restart

/** Stops one tier of recorded processes: SIGTERM, then SIGKILL for what is left after STOP_GRACE_MS. */
async function stopRecorded(records: readonly ProcessRecord[]): Promise<StopOutcome[]> {
  const outcomes = new Map<ProcessRecord, StopOutcome['outcome']>();
  const ours = records.filter((r) => {
    const now = identify(r);
    if (now !== 'ours') outcomes.set(r, now);
    return now === 'ours';
  });
  const running = () => ours.filter((r) => identify(r) === 'ours');
  for (const r of ours) sendSignal(r, 'SIGTERM');
  await pollFor(() => running().length === 0, STOP_GRACE_MS);
  const killed = running();
  for (const r of killed) sendSignal(r, 'SIGKILL');
  await pollFor(() => killed.every((r) => identify(r) !== 'ours'), KILL_WAIT_MS);
  for (const r of ours) outcomes.set(r, identify(r) === 'ours' ? 'stuck' : killed.includes(r) ? 'killed' : 'stopped');
  return records.map((r) => ({ name: r.name, pid: r.pid, outcome: outcomes.get(r) ?? 'gone' }));
}

/** Signals a recorded process just checked to be ours (ESRCH: it exited meanwhile). */
function sendSignal(record: ProcessRecord, name: NodeJS.Signals): void {
  try {
    process.kill(record.pid, name);
  } catch {}
}

const SAID: Record<StopOutcome['outcome'], string> = {
  stopped: 'stopped',
  killed: 'killed (SIGKILL: still running 10 s after SIGTERM)',
  gone: 'was not running',
  other: 'left alone: the pid now runs another command',
  stuck: 'STILL RUNNING after SIGKILL',
};

/**
 * Stops exactly the processes the state file names (balancer, nodes, then
 * Redis) and removes the launcher's data. Keeps the state file if a process
 * could not be stopped.
 */
export async function clusterDown(dir?: string): Promise<DownReport> {
  const home = stateDir(dir);
  const topology = readTopology(home);
  if (topology === null) return { dir: home, found: false, processes: [], lines: [`nothing to stop: no cluster state in ${home}`] };
  const processes: StopOutcome[] = [];
  for (const tier of tiersOf(topology)) processes.push(...(await stopRecorded(tier)));
  const lines = processes.map((p) => `${p.name} (pid ${p.pid}): ${SAID[p.outcome]}`);
  if (processes.every((p) => p.outcome === 'gone' || p.outcome === 'other')) lines.push('nothing was running');
  if (processes.some((p) => p.outcome === 'stuck')) {
    lines.push(`kept ${topology.stateFile}: a process could not be stopped`);
  } else {
    removeData(home, tiersOf(topology).flat());
    lines.push(`removed the cluster's data in ${home}`);
  }
  return { dir: home, found: true, processes, lines };
}

/** Starts a recorded Strata node again (after it died or was killed), on its port, and records its new pid. */
export async function restartNode(id: string, options: { dir?: string; signal?: AbortSignal } = {}): Promise<StrataNodeRecord> {
  const topology = readTopology(options.dir);
  if (topology === null) throw new LauncherError('state', `no cluster state in ${stateDir(options.dir)}; run npm run cluster:up first`);
  const record = topology.nodes.find((n) => n.id === id);
  if (record === undefined) throw new LauncherError('usage', `no node ${id} in ${topology.stateFile} (nodes: ${topology.nodes.map((n) => n.id).join(', ')})`);
  if (identify(record) === 'ours') throw new LauncherError('running', `${id} is running (pid ${record.pid})`);
  const started = spawnDetached(id, record.command[0] as string, record.command.slice(1), record.dir, record.log, nodeEnv());
  // Recorded at once: if this process dies while the node starts, `down` still stops it.
  const next: StrataNodeRecord = { ...record, pid: started.pid, cmdline: started.recorded(record.port).cmdline };
  writeTopology({ ...topology, nodes: topology.nodes.map((n) => (n.id === id ? next : n)) });
  try {
    await waitForNode(started, record.url, options.signal);
  } catch (err) {
    await stopSpawned([started]);
    throw err;
  }
  return next;
}

/** What `up` prints: every address, a curl pair to paste, how to stop. */
export function describeTopology(topology: Topology): string[] {
  const entry = topology.haproxy?.url ?? (topology.nodes[0] as StrataNodeRecord).url;
  const width = Math.max(7, ...topology.nodes.map((n) => n.id.length));
  const lines = [
    `Redis Cluster   ${topology.redis.seeds.join(',')}   (3 masters, 3 replicas)`,
    ...topology.nodes.map((n) => `${n.id.padEnd(width)}         ${n.url}   pid ${n.pid}   log ${n.log}`),
  ];
  if (topology.haproxy !== null) {
    const h = topology.haproxy;
    lines.push(`${'haproxy'.padEnd(width)}         ${h.url}   pid ${h.pid}   stats ${h.statsUrl}   log ${h.log}`);
  }
  lines.push(
    `state           ${topology.stateFile}`,
    '',
    `try it${topology.haproxy === null ? ' (through n1; no HAProxy)' : ' (through HAProxy)'}:`,
    `  curl -i -X PUT -H 'content-type: text/plain' --data-binary 'hello' ${entry}/v1/keys/greeting`,
    `  curl -i ${entry}/v1/keys/greeting        # x-strata-node: the key's owner`,
    '',
    'stop it: npm run cluster:down',
  );
  return lines;
}

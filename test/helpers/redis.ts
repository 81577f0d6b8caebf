import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRedisCluster, freeClusterPort, freePort, redisCli, redisClusterHealthy, redisClusterNodeArgs } from '../../src/cluster/local-topology.js';
import { until } from './node.js';

// Ports, redis-cli and the Redis Cluster's creation are the local launcher's (npm run cluster:up): one copy.
export { freeClusterPort, freePort, redisCli };

/** redis-cli arguments that authenticate with `password`, if any. */
function auth(password: string | undefined): string[] {
  return password === undefined ? [] : ['--no-auth-warning', '-a', password];
}

/** Every redis-server this process started and that still runs. */
const running = new Set<ChildProcess>();

/**
 * Kills every redis-server this process started that still runs. A test that
 * fails before its cleanup (a node that does not start, say) must not leave
 * servers behind for the rest of the suite: test/helpers/leftovers.ts calls
 * this after each test file.
 */
export function killLeftoverRedisServers(): number {
  const left = running.size;
  for (const child of running) {
    child.kill('SIGCONT');
    child.kill('SIGKILL');
  }
  running.clear();
  return left;
}

/** A real redis-server process owned by a test. */
export class RedisServer {
  #child: ChildProcess | null = null;
  readonly #dir: string;

  private constructor(
    readonly port: number,
    readonly extraArgs: readonly string[],
    /** The `default` user's password (requirepass), if the server has one. */
    readonly password?: string,
  ) {
    this.#dir = mkdtempSync(join(tmpdir(), `strata-redis-${port}-`));
  }

  /**
   * Starts redis-server on a free port (or `port`), with persistence off, and
   * waits for PING. Without a given port it tries a few: a port free when
   * chosen may be taken by another test before redis-server binds it. With
   * `cluster` it also needs port + 10000 (the cluster bus) free.
   */
  static async start(options: { port?: number; args?: readonly string[]; password?: string; cluster?: boolean } = {}): Promise<RedisServer> {
    const password = options.password;
    const args = [...(options.args ?? []), ...(password === undefined ? [] : ['--requirepass', password, '--masterauth', password])];
    for (let attempt = 1; ; attempt++) {
      const port = options.port ?? (options.cluster ? await freeClusterPort() : await freePort());
      const withPort = args.map((a) => a.replaceAll('$PORT', String(port)));
      const server = new RedisServer(port, withPort, password);
      try {
        await server.#spawn();
        return server;
      } catch (err) {
        if (options.port !== undefined || attempt >= 5) throw err;
      }
    }
  }

  /** redis-cli against this server (authenticated when it has a password). */
  cli(...args: string[]): Promise<string> {
    return redisCli(this.port, ...auth(this.password), ...args);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async #spawn(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.#dir, ...this.extraArgs];
    const child = spawn('redis-server', args, { stdio: 'ignore' });
    this.#child = child;
    running.add(child);
    let exited = false;
    child.once('exit', () => {
      exited = true;
      running.delete(child);
    });
    try {
      await until(async () => {
        if (exited) throw new Error(`redis-server on port ${this.port} exited at start`);
        return (await this.cli('ping').catch(() => '')) === 'PONG';
      }, 10_000);
    } catch (err) {
      // Never leave a server behind that did not come up as asked.
      await this.kill();
      rmSync(this.#dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** Freezes the process (SIGSTOP): connections stay open, nothing answers. */
  pause(): void {
    this.#child?.kill('SIGSTOP');
  }

  /** Thaws a paused process (SIGCONT). */
  resume(): void {
    this.#child?.kill('SIGCONT');
  }

  /** Kills the process (SIGKILL) and waits for it to exit. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGCONT');
    child.kill('SIGKILL');
    await exited;
    this.#child = null;
  }

  /** Starts it again on the same port (after kill). */
  async restart(): Promise<void> {
    await this.kill();
    await this.#spawn();
  }

  /** Kills it and removes its directory. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.#dir, { recursive: true, force: true });
  }
}

/** A real Redis Cluster: 3 masters and 3 replicas, each a redis-server process on a free port. */
export class RedisCluster {
  private constructor(readonly nodes: readonly RedisServer[]) {}

  /** Starts six nodes, joins them with redis-cli --cluster create, and waits for cluster_state:ok on all. */
  static async start(options: { nodeTimeoutMs?: number; password?: string } = {}): Promise<RedisCluster> {
    const nodeTimeoutMs = options.nodeTimeoutMs ?? 1000;
    const password = options.password;
    const nodes: RedisServer[] = [];
    try {
      for (let i = 0; i < 6; i++) {
        nodes.push(
          await RedisServer.start({
            cluster: true,
            args: redisClusterNodeArgs(nodeTimeoutMs, 'nodes-$PORT.conf'),
            ...(password === undefined ? {} : { password }),
          }),
        );
      }
      await createRedisCluster(
        nodes.map((n) => n.port),
        password === undefined ? {} : { password },
      );
      const cluster = new RedisCluster(nodes);
      await cluster.waitUntilOk();
      return cluster;
    } catch (err) {
      await Promise.all(nodes.map((n) => n.stop()));
      throw err;
    }
  }

  /** `host:port` of every node, as STRATA_REDIS_CLUSTER takes them. */
  get seeds(): string[] {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`);
  }

  /**
   * Resolves when every live node reports cluster_state:ok with all 16384
   * slots served and sees every live node connected and healthy, and every
   * live replica is in sync with its master (a replica that never synced
   * refuses to fail over).
   */
  async waitUntilOk(timeoutMs = 30_000): Promise<void> {
    const password = this.nodes[0]?.password;
    await until(
      () =>
        redisClusterHealthy(
          this.nodes.filter((n) => n.pid !== undefined).map((n) => n.port),
          password === undefined ? {} : { password },
        ),
      timeoutMs,
      100,
    );
  }

  /** The nodes that are masters right now. */
  async masters(): Promise<RedisServer[]> {
    const out: RedisServer[] = [];
    for (const node of this.nodes) {
      if (node.pid === undefined) continue;
      const role = await node.cli('role').catch(() => '');
      if (role.startsWith('master')) out.push(node);
    }
    return out;
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}

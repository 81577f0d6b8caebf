import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/node.js';
import { freeClusterPort, RedisServer } from '../helpers/redis.js';

// The stack for real hosts (docker-compose.yml, docs/deploy/). No Docker engine runs here, so it is checked as
// configuration: by docker-compose's own reading of it, by HAProxy's, for consistency between the files, and
// by running the Redis nodes' flags and the cluster's init script on loopback.

const run = promisify(execFile);

/** Debian packages of the tools this test runs (.ci/run installs them). */
const PACKAGES: Record<string, string> = { 'docker-compose': 'docker-compose', haproxy: 'haproxy' };

/** Runs one of the tools from the repository root; a missing tool or a failure is an error saying which. */
async function tool(command: string, args: readonly string[], env: Record<string, string> = {}): Promise<{ stdout: string; stderr: string }> {
  // The file's own defaults are under test: no variable from the caller's shell takes part.
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !/^(COMPOSE_|REDIS_ANNOUNCE_HOST$|REDIS_PUBLISH_IP$|STRATA_NET_PREFIX$)/.test(name)),
  );
  try {
    return await run(command, args, { cwd: ROOT, env: { ...base, ...env }, timeout: 30_000 });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`${command} is not installed: this test needs it on the PATH (Debian package ${PACKAGES[command]})`);
    throw new Error(`${command} ${args.join(' ')} failed (${e.code}):\n${e.stderr ?? ''}${e.stdout ?? ''}`);
  }
}

interface YamlEntry {
  /** The scalar after `key:`, its continuation lines folded in; '' when a block follows. */
  readonly value: string;
  /** The lines under the key. */
  readonly lines: readonly string[];
}

/**
 * The keys of a block mapping at `indent` spaces, as `docker-compose config` prints it (PyYAML block style,
 * sequences at their key's indent). Enough for this stack's services; not a YAML parser.
 */
function mapping(lines: readonly string[], indent: number): Map<string, YamlEntry> {
  const keyLine = new RegExp(`^ {${indent}}([^\\s'"#-][^:]*|'[^']*'|"[^"]*"):(?: (.*))?$`);
  const found: { key: string; head: string; lines: string[] }[] = [];
  for (const line of lines) {
    const m = keyLine.exec(line);
    if (m !== null) found.push({ key: scalar(m[1] as string, []), head: m[2] ?? '', lines: [] });
    else found.at(-1)?.lines.push(line);
  }
  return new Map(found.map(({ key, head, lines: under }) => [key, { value: head === '' ? '' : scalar(head, under), lines: under }]));
}

/** The items of a block sequence at `indent` spaces, each a scalar. */
function sequence(lines: readonly string[], indent: number): string[] {
  const prefix = `${' '.repeat(indent)}- `;
  const items: { first: string; rest: string[] }[] = [];
  for (const line of lines) {
    if (line.startsWith(prefix)) items.push({ first: line.slice(prefix.length), rest: [] });
    else if (line.startsWith(' '.repeat(indent + 2))) items.at(-1)?.rest.push(line);
  }
  return items.map(({ first, rest }) => scalar(first, rest));
}

/** YAML escapes that are not the escaped character itself. */
const ESCAPES: Record<string, string> = { n: '\n', t: '\t', '0': '\0' };

/**
 * A scalar from its first line and its continuation lines: plain and single-quoted ones fold line breaks into
 * spaces; PyYAML breaks a long double-quoted one with an escaped line break (`\` at the end of the line).
 */
function scalar(first: string, rest: readonly string[]): string {
  if (first.startsWith('"')) {
    let text = first;
    for (const line of rest) text = text.endsWith('\\') ? text.slice(0, -1) + line.trimStart() : `${text} ${line.trim()}`;
    return text.slice(1, -1).replace(/\\(.)/g, (_, c: string) => ESCAPES[c] ?? c);
  }
  const text = [first, ...rest.map((l) => l.trim())].join(' ');
  return text.startsWith("'") && text.endsWith("'") ? text.slice(1, -1).replaceAll("''", "'") : text;
}

/** Follows a path of keys (each one level, two spaces, deeper) from the top of a printed config. */
function entry(config: readonly string[], ...path: string[]): YamlEntry {
  let current: YamlEntry = { value: '', lines: config };
  path.forEach((key, depth) => {
    const next = mapping(current.lines, depth * 2).get(key);
    if (next === undefined) throw new Error(`docker-compose config has no ${path.slice(0, depth + 1).join('.')}`);
    current = next;
  });
  return current;
}

/** A service's environment as printed (docker-compose config always prints it as a mapping). */
function environment(config: readonly string[], service: string): Map<string, string> {
  return new Map([...mapping(entry(config, 'services', service, 'environment').lines, 6)].map(([k, v]) => [k, v.value]));
}

/** The words of a command given as one string, as docker-compose splits it (here: no escapes inside quotes). */
function words(command: string): string[] {
  return [...command.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3] ?? '');
}

/** `--flag value` pairs of a command line. */
function flags(command: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  command.forEach((word, i) => {
    if (word.startsWith('--')) out.set(word, command[i + 1] ?? '');
  });
  return out;
}

/** Per test: docker-compose is a Python program that takes seconds to start on a loaded machine, three at once here. */
const COMPOSE_TIMEOUT_MS = 60_000;

const REDIS = ['redis-1', 'redis-2', 'redis-3', 'redis-4', 'redis-5', 'redis-6'];
const STRATA = ['strata-1', 'strata-2', 'strata-3'];

interface Composed {
  /** `docker-compose config --services`. */
  readonly services: readonly string[];
  /** The lines of `docker-compose config`: the file as docker-compose reads it, anchors merged, variables at their defaults. */
  readonly config: readonly string[];
  /** The same with REDIS_ANNOUNCE_HOST and REDIS_PUBLISH_IP set. */
  readonly announced: readonly string[];
}

let composing: Promise<Composed> | null = null;

/** docker-compose's reading of the file, taken once; each test that needs it fails on its own if it cannot be had. */
function composed(): Promise<Composed> {
  composing ??= (async () => {
    const compose = ['-f', 'docker-compose.yml', 'config'];
    const [listed, printed, overridden] = await Promise.all([
      tool('docker-compose', [...compose, '--services']),
      tool('docker-compose', compose),
      tool('docker-compose', compose, { REDIS_ANNOUNCE_HOST: '203.0.113.7', REDIS_PUBLISH_IP: '203.0.113.7' }),
    ]);
    return {
      services: listed.stdout.split('\n').filter((s) => s !== ''),
      config: printed.stdout.split('\n'),
      announced: overridden.stdout.split('\n'),
    };
  })();
  return composing;
}

/** The nodes' address as Strata and the Prometheus and HAProxy configs name it: `<service>:<STRATA_PORT>`. */
function strataAddresses(config: readonly string[]): string[] {
  return STRATA.map((name) => `${name}:${environment(config, name).get('STRATA_PORT')}`);
}

describe('docker-compose.yml (read by docker-compose config)', { timeout: COMPOSE_TIMEOUT_MS }, () => {
  it('runs six Redis nodes and their init, three Strata nodes, HAProxy, PostgreSQL and Prometheus', async () => {
    const { services, config } = await composed();
    expect([...services].sort()).toEqual([...REDIS, 'redis-cluster-init', ...STRATA, 'haproxy', 'postgres', 'prometheus'].sort());
    // The helpers above read the printed file: they must find the same services.
    expect([...mapping(entry(config, 'services').lines, 2).keys()].sort()).toEqual([...services].sort());
  });

  it('gives each Redis node its own port and bus port, published as themselves and announced with them', async () => {
    const { config } = await composed();
    for (const [i, name] of REDIS.entries()) {
      const port = String(7001 + i);
      const bus = String(17001 + i);
      const command = flags(words(entry(config, 'services', name, 'command').value));
      expect(entry(config, 'services', name, 'image').value, name).toBe('redis:7');
      expect(command.get('--port'), name).toBe(port);
      expect(command.get('--cluster-enabled'), name).toBe('yes');
      expect(command.get('--cluster-announce-port'), name).toBe(port);
      expect(command.get('--cluster-announce-bus-port'), name).toBe(bus);
      // By default a node announces its service name: Docker's DNS resolves it for the Strata containers.
      expect(command.get('--cluster-announce-hostname'), name).toBe(name);
      expect(command.get('--cluster-preferred-endpoint-type'), name).toBe('hostname');
      expect(sequence(entry(config, 'services', name, 'ports').lines, 4).sort(), name).toEqual([
        `127.0.0.1:${bus}:${bus}/tcp`,
        `127.0.0.1:${port}:${port}/tcp`,
      ]);
      expect(sequence(entry(config, 'services', name, 'healthcheck', 'test').lines, 6).join(' '), name).toContain('ping');
    }
  });

  it('announces REDIS_ANNOUNCE_HOST with each node’s own port when it is set, published on REDIS_PUBLISH_IP', async () => {
    const { announced } = await composed();
    for (const [i, name] of REDIS.entries()) {
      const command = flags(words(entry(announced, 'services', name, 'command').value));
      expect(command.get('--cluster-announce-hostname'), name).toBe('203.0.113.7');
      expect(command.get('--cluster-announce-port'), name).toBe(String(7001 + i));
      expect(sequence(entry(announced, 'services', name, 'ports').lines, 4), name).toContain(`203.0.113.7:${7001 + i}:${7001 + i}/tcp`);
    }
  });

  it('creates the cluster once every node is healthy, from all six', async () => {
    const { config } = await composed();
    const dependsOn = mapping(entry(config, 'services', 'redis-cluster-init', 'depends_on').lines, 6);
    expect([...dependsOn.keys()].sort()).toEqual(REDIS);
    for (const [name, dependency] of dependsOn)
      expect(
        dependency.lines.map((l) => l.trim()),
        name,
      ).toContain('condition: service_healthy');
    expect(environment(config, 'redis-cluster-init').get('REDIS_NODES')?.split(' ')).toEqual(REDIS.map((name, i) => `${name}:${7001 + i}`));
    expect(entry(config, 'services', 'redis-cluster-init', 'restart').value).toBe('no');
  });

  it('gives each Strata node its own id and advertise URL, the same members, the registry and the cluster as its L2', async () => {
    const { config } = await composed();
    const envs = STRATA.map((name) => environment(config, name));
    for (const [i, env] of envs.entries()) {
      const name = STRATA[i] as string;
      for (const option of ['STRATA_NODE_ID', 'STRATA_ADVERTISE_URL', 'STRATA_MEMBERS', 'STRATA_REGISTRY', 'STRATA_REDIS_CLUSTER']) {
        expect(env.get(option), `${name} ${option}`).toMatch(/\S/);
      }
      expect(env.get('STRATA_NODE_ID'), name).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
      expect(env.get('STRATA_HOST'), name).toBe('0.0.0.0');
      expect(env.get('STRATA_ADVERTISE_URL'), name).toBe(`http://${name}:${env.get('STRATA_PORT')}`);
      expect(env.get('STRATA_REGISTRY'), name).toBe('on');
      expect(env.get('STRATA_ROUTING'), name).toBe('owner');
      expect(env.get('STRATA_REDIS_CLUSTER')?.split(','), name).toEqual(REDIS.map((redis, j) => `${redis}:${7001 + j}`));
      expect(env.get('STRATA_MEMBERS'), name).toBe(envs[0]?.get('STRATA_MEMBERS'));
      expect(entry(config, 'services', name, 'build', 'dockerfile').value, name).toBe('docs/deploy/Dockerfile');
      expect(entry(config, 'services', name, 'depends_on', 'redis-cluster-init', 'condition').value, name).toBe('service_completed_successfully');
      expect(entry(config, 'services', name, 'depends_on', 'postgres', 'condition').value, name).toBe('service_healthy');
    }
    const ids = envs.map((env) => env.get('STRATA_NODE_ID'));
    expect(ids).toEqual(STRATA);
    expect(new Set(ids).size).toBe(STRATA.length);
  });

  it('lists in STRATA_MEMBERS exactly the three Strata services, each at its own advertise URL', async () => {
    const { config } = await composed();
    const members = new Map((environment(config, 'strata-1').get('STRATA_MEMBERS') ?? '').split(',').map((item) => item.split('=', 2) as [string, string]));
    expect([...members.keys()]).toEqual(STRATA);
    for (const name of STRATA) expect(members.get(name), name).toBe(environment(config, name).get('STRATA_ADVERTISE_URL'));
    expect(new Set(members.values()).size).toBe(STRATA.length);
  });

  it('points the nodes at the PostgreSQL service with its own database, user and password', async () => {
    const { config } = await composed();
    const postgres = environment(config, 'postgres');
    const url = new URL(environment(config, 'strata-1').get('STRATA_POSTGRES_URL') ?? '');
    expect(entry(config, 'services', 'postgres', 'image').value).toBe('postgres:16');
    expect([url.hostname, url.username, url.password, url.pathname]).toEqual([
      'postgres',
      postgres.get('POSTGRES_USER'),
      postgres.get('POSTGRES_PASSWORD'),
      `/${postgres.get('POSTGRES_DB')}`,
    ]);
    expect(sequence(entry(config, 'services', 'postgres', 'healthcheck', 'test').lines, 6)).toContain('pg_isready');
  });
});

describe('the Redis nodes’ flags and redis-cluster-init, run on loopback', () => {
  const servers: RedisServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  it('start six nodes that the init script makes one cluster, announcing each node’s own port; a second run leaves it alone', async () => {
    const { config } = await composed();
    for (const name of REDIS) {
      const [binary, ...args] = words(entry(config, 'services', name, 'command').value);
      expect(binary, name).toBe('redis-server');
      // This machine's free ports and a name it resolves, instead of the stack's.
      const port = await freeClusterPort();
      const local = new Map([
        ['--port', String(port)],
        ['--cluster-announce-port', String(port)],
        ['--cluster-announce-bus-port', String(port + 10000)],
        ['--cluster-announce-hostname', 'localhost'],
      ]);
      servers.push(await RedisServer.start({ port, cluster: true, args: args.map((arg, i) => local.get(args[i - 1] ?? '') ?? arg) }));
    }
    // docker-compose config prints a literal $ as $$, as the file must write it; the container gets a $.
    const [shell, ...script] = sequence(entry(config, 'services', 'redis-cluster-init', 'command').lines, 4).map((arg) => arg.replaceAll('$$', '$'));
    const env = { ...process.env, REDIS_NODES: servers.map((s) => `127.0.0.1:${s.port}`).join(' ') };

    const created = await run(shell as string, script, { env, timeout: 60_000 });
    expect(created.stdout).toContain('[OK] All 16384 slots covered');
    expect(created.stderr).toContain('cluster ready');
    expect(await servers[0]?.cli('cluster', 'info')).toContain('cluster_state:ok');
    // Once the script is done, every node knows every other by its announced name and ports.
    const views = await Promise.all(servers.map((s) => s.cli('cluster', 'nodes')));
    for (const [i, view] of views.entries()) {
      for (const other of servers) expect(view, `node ${i + 1}`).toContain(` 127.0.0.1:${other.port}@${other.port + 10000},localhost `);
    }
    // Clients asking where slots live are sent to the announced name (cluster-preferred-endpoint-type hostname)
    // with the node's own port: in redis-cli's flat output of CLUSTER SLOTS, each endpoint is a name, then a port.
    const slots = (await servers[0]?.cli('cluster', 'slots'))?.split('\n') ?? [];
    const endpoints = slots.flatMap((line, i) => (line === 'localhost' ? [Number(slots[i + 1])] : []));
    expect(endpoints.length).toBeGreaterThanOrEqual(3);
    for (const port of endpoints) expect(servers.map((s) => s.port)).toContain(port);
    expect(slots).not.toContain('?');

    const again = await run(shell as string, script, { env, timeout: 60_000 });
    expect(again.stdout).toBe('');
    expect(again.stderr).toContain('the cluster exists; nothing to create');
    // The same six nodes, none replaced or added.
    const ids = (view: string) => view.split('\n').map((line) => line.split(' ')[0]);
    expect(ids((await servers[0]?.cli('cluster', 'nodes')) ?? '').sort()).toEqual(ids(views[0] ?? '').sort());
  }, 120_000); // docker-compose, then the script, which waits up to 60 s for the cluster (2–5 s here when idle).
});

describe('docs/deploy/haproxy.cfg', { timeout: COMPOSE_TIMEOUT_MS }, () => {
  const directives = readFileSync(join(ROOT, 'docs/deploy/haproxy.cfg'), 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((d) => d !== '');
  const sections: { kind: string; name: string; directives: string[] }[] = [];
  for (const d of directives) {
    const section = /^(global|defaults|frontend|backend|listen|resolvers|peers|userlist)\b\s*(\S*)/.exec(d);
    if (section !== null) sections.push({ kind: section[1] as string, name: section[2] as string, directives: [] });
    else sections.at(-1)?.directives.push(d);
  }
  /** The backend that hashes key paths. */
  const hashed = sections.find((s) => s.kind === 'backend' && s.directives.some((d) => /^balance uri\b/.test(d)));

  it('passes haproxy -c where the nodes’ names do not resolve', async () => {
    const { stdout, stderr } = await tool('haproxy', ['-c', '-f', 'docs/deploy/haproxy.cfg']);
    const out = stdout + stderr;
    expect(out).toContain('Configuration file is valid');
    // Warnings only for the names that resolve inside the stack alone (init-addr none).
    const warnings = out.split('\n').filter((l) => /\[(WARNING|ALERT)\]/.test(l));
    for (const w of warnings) expect(w).toMatch(/could not resolve address 'strata-[123]'/);
  });

  it('hashes key paths without their query string, consistently, and checks /readyz over HTTP/1.1 with a Host', () => {
    const balance = hashed?.directives.find((d) => d.startsWith('balance uri'));
    // Without "whole", HAProxy hashes the URI only up to the '?': /v1/keys/a?lease=5000 goes where /v1/keys/a goes.
    expect(balance).toBeDefined();
    expect(balance?.split(/\s+/)).not.toContain('whole');
    expect(hashed?.directives.some((d) => /^hash-type consistent\b/.test(d))).toBe(true);
    // Key requests reach it, and only they: other routes hold no key, and hashing their one path would send them all to one node.
    expect(directives.some((d) => new RegExp(`^use_backend ${hashed?.name} if \\{ path_beg /v1/keys/ \\}$`).test(d))).toBe(true);
    expect(directives).not.toContain(`default_backend ${hashed?.name}`);
    expect(directives).toContain('option httpchk GET /readyz HTTP/1.1');
    // uWebSockets.js never answers a request without Host, which is what HAProxy's default check sends.
    expect(directives.some((d) => /^http-check send .*\bhdr Host \S+/.test(d))).toBe(true);
    expect(directives).toContain('http-check expect status 200');
    expect(directives.find((d) => d.startsWith('default-server'))).toMatch(/\bcheck\b.*\binit-addr last,libc,none\b.*\bresolvers docker\b/);
    expect(directives).toContain('nameserver docker 127.0.0.11:53');
    expect(directives).toContain('timeout connect 1s');
  });

  it('sends every backend to the three Strata services at their port, the hashed one included', async () => {
    const { config } = await composed();
    const backends = sections.filter((s) => s.kind === 'backend');
    expect(backends.map((b) => b.name)).toContain(hashed?.name);
    for (const backend of backends) {
      const servers = backend.directives.filter((d) => d.startsWith('server ')).map((d) => d.split(/\s+/)[2]);
      expect(servers, backend.name).toEqual(strataAddresses(config));
    }
  });

  it('is what the haproxy service runs, in front on port 8080', async () => {
    const { config } = await composed();
    expect(entry(config, 'services', 'haproxy', 'image').value).toBe('haproxy:2.6');
    expect(sequence(entry(config, 'services', 'haproxy', 'volumes').lines, 4)).toContain(
      `${join(ROOT, 'docs/deploy/haproxy.cfg')}:/usr/local/etc/haproxy/haproxy.cfg:ro`,
    );
    expect(entry(config, 'services', 'haproxy', 'ports').lines.map((l) => l.trim())).toEqual(expect.arrayContaining(['- published: 8080', 'target: 8080']));
    expect(directives).toContain('bind :8080');
  });
});

describe('docs/deploy/prometheus.yml', { timeout: COMPOSE_TIMEOUT_MS }, () => {
  const text = readFileSync(join(ROOT, 'docs/deploy/prometheus.yml'), 'utf8');

  it('scrapes every Strata node’s /metrics every 5 s', async () => {
    const { config } = await composed();
    const jobs = text.split(/\n(?=\s*- job_name:)/).slice(1);
    const strata = jobs.find((job) => /job_name:\s*strata\s*\n/.test(job)) ?? '';
    const targets = [...strata.matchAll(/targets:\s*\[([^\]]*)\]/g)].flatMap((m) =>
      (m[1] as string).split(',').map((t) => t.trim().replace(/^["']|["']$/g, '')),
    );
    expect(targets).toEqual(strataAddresses(config));
    expect(strata).toMatch(/metrics_path:\s*\/metrics\b/);
    expect(strata).toMatch(/scrape_interval:\s*5s\b/);
    for (const name of STRATA) expect(strata).toContain(`node: ${name}`);
    expect(sequence(entry(config, 'services', 'prometheus', 'volumes').lines, 4)).toContain(
      `${join(ROOT, 'docs/deploy/prometheus.yml')}:/etc/prometheus/prometheus.yml:ro`,
    );
  });
});

describe('docs/deploy/Dockerfile', () => {
  const instructions = readFileSync(join(ROOT, 'docs/deploy/Dockerfile'), 'utf8')
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .filter((l) => /^[A-Z]+\s/.test(l));

  it('copies only files the repository has', () => {
    const sources = instructions.filter((l) => l.startsWith('COPY ') && !l.includes('--from=')).flatMap((l) => l.split(/\s+/).slice(1, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) expect(existsSync(join(ROOT, source)), source).toBe(true);
  });

  it('builds with every dependency, and runs the package’s binary with production ones as a non-root user', () => {
    expect(instructions.filter((l) => l.startsWith('FROM ')).map((l) => l.split(/\s+/)[1])).toEqual(['node:20-bookworm-slim', 'node:20-bookworm-slim']);
    // `prepare` builds with the compiler, a dev dependency: both installs must skip lifecycle scripts.
    const installs = instructions.filter((l) => l.includes('npm ci'));
    expect(installs).toHaveLength(2);
    for (const install of installs) expect(install).toContain('--ignore-scripts');
    expect(installs[1]).toContain('--omit=dev');
    const user = instructions.find((l) => l.startsWith('USER '))?.split(/\s+/)[1];
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
    expect(instructions).toContain('EXPOSE 8080');
    expect(instructions.find((l) => l.startsWith('HEALTHCHECK '))).toContain('/readyz');
    const bin = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { bin: { strata: string } }).bin.strata;
    expect(instructions.find((l) => l.startsWith('CMD '))).toBe(`CMD ["node", "--max-semi-space-size=2", "${bin}"]`);
  });
});

import { type ChildProcess, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { until } from '../helpers/node.js';
import { rawRequest } from '../helpers/raw.js';
import { freePort, RedisServer, redisCli } from '../helpers/redis.js';
import { spawnCli } from '../helpers/spawn-cli.js';

interface Started {
  child: ChildProcess;
  port: number;
  line: string;
  stdout: () => string;
  stderr: () => string;
  exit: Promise<number | null>;
}

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

/** The CLI with `args` and `env`, its output kept by stream. */
const run = (args: string[], env: Record<string, string> = {}) => spawnCli(children, args, env);

async function start(args: string[] = [], env: Record<string, string> = {}): Promise<Started> {
  const defaults = [
    ['--port', '0'],
    ['--shards', '2'],
  ].filter(([flag]) => !args.includes(flag as string));
  const r = run([...(defaults.flat() as string[]), ...args], env);
  const deadline = Date.now() + 15_000;
  const listening = () =>
    r
      .out()
      .split('\n')
      .find((l) => l.startsWith('strata listening'));
  while (listening() === undefined) {
    if (r.child.exitCode !== null || Date.now() > deadline) throw new Error(`node did not start: ${r.err()}`);
    await new Promise((res) => setTimeout(res, 20));
  }
  const line = listening() as string;
  const port = Number(/:(\d+) /.exec(line)?.[1]);
  return { child: r.child, port, line, stdout: r.out, stderr: r.err, exit: r.exit };
}

describe('strata CLI', () => {
  it('prints one line: where it listens, shards, L1 budget, and that no L2 is configured', async () => {
    const node = await start(['--l1-max-bytes', '64m']);
    expect(node.line).toMatch(/^strata listening on http:\/\/127\.0\.0\.1:\d+ with \d+ fronts? and 2 shards, L1 budget 64 MiB, no L2 configured/);
    expect((await fetch(`http://127.0.0.1:${node.port}/healthz`)).status).toBe(200);
    node.child.kill('SIGTERM');
    expect(await node.exit).toBe(0);
  });

  it('with REDIS_URL naming an ACL user and password: says where its L2 is (password hidden) and writes through', async () => {
    const redis = await RedisServer.start();
    try {
      await redisCli(redis.port, 'acl', 'setuser', 'strata', 'on', '>s3cret-pass', '~strata:*', '&strata:*', '+@all');
      await redisCli(redis.port, 'acl', 'setuser', 'default', 'off');
      const node = await start([], { REDIS_URL: `redis://strata:s3cret-pass@127.0.0.1:${redis.port}` });
      expect(node.line).toContain(`L2 Redis redis://strata:***@127.0.0.1:${redis.port}`);
      expect(node.line).not.toContain('s3cret');
      expect((await fetch(`http://127.0.0.1:${node.port}/v1/keys/k`, { method: 'PUT', body: 'v' })).status).toBe(204);
      expect((await fetch(`http://127.0.0.1:${node.port}/readyz`)).status).toBe(200);
      node.child.kill('SIGTERM');
      expect(await node.exit).toBe(0);
    } finally {
      await redis.stop();
    }
  });

  it('with a wrong Redis password: starts, warns with Redis’s reason, is not ready, and writes get 503 E_L2_UNAVAILABLE', async () => {
    const redis = await RedisServer.start();
    try {
      await redisCli(redis.port, 'config', 'set', 'requirepass', 'right-one');
      const node = await start([], { REDIS_URL: `redis://:wrong-one@127.0.0.1:${redis.port}` });
      await until(() => node.stderr().includes('warning'));
      expect(node.stderr()).toMatch(/L2 is not reachable yet \(WRONGPASS/);
      expect(node.stderr()).not.toContain('wrong-one');
      expect((await fetch(`http://127.0.0.1:${node.port}/readyz`)).status).toBe(503);
      const res = await fetch(`http://127.0.0.1:${node.port}/v1/keys/k`, { method: 'PUT', body: 'v' });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('E_L2_UNAVAILABLE');
      node.child.kill('SIGTERM');
      expect(await node.exit).toBe(0);
    } finally {
      await redis.stop();
    }
  });

  it('with a rediss:// REDIS_URL: talks TLS to Redis (the CA given by NODE_EXTRA_CA_CERTS)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-tls-'));
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      {
        stdio: 'ignore',
      },
    );
    const tlsPort = await freePort();
    // The plain port stays open for the fixture's own PING; Strata uses the TLS one.
    const redis = await RedisServer.start({
      args: ['--tls-port', String(tlsPort), '--tls-cert-file', cert, '--tls-key-file', key, '--tls-auth-clients', 'no'],
    });
    try {
      const node = await start([], { REDIS_URL: `rediss://127.0.0.1:${tlsPort}`, NODE_EXTRA_CA_CERTS: cert });
      expect(node.line).toContain(`L2 Redis rediss://127.0.0.1:${tlsPort}`);
      expect((await fetch(`http://127.0.0.1:${node.port}/v1/keys/secure`, { method: 'PUT', body: 'over tls' })).status).toBe(204);
      expect(await redisCli(redis.port, 'exists', 'strata:v1:k:secure')).toBe('1');
      expect((await fetch(`http://127.0.0.1:${node.port}/readyz`)).status).toBe(200);
      node.child.kill('SIGTERM');
      expect(await node.exit).toBe(0);
    } finally {
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--help lists the options and exits 0', async () => {
    const r = run(['--help']);
    expect(await r.exit).toBe(0);
    expect(r.out()).toContain('--l1-max-bytes');
    expect(r.out()).toContain('STRATA_MAX_VALUE_BYTES');
  });

  it.each([
    [['--port', 'http'], {}, '--port="http"'],
    [[], { STRATA_SHARDS: '0' }, 'STRATA_SHARDS="0"'],
    [['--bogus', '1'], {}, '--bogus'],
    [[], { REDIS_URL: 'http://localhost:6379' }, 'REDIS_URL="http://localhost:6379"'],
    [[], { REDIS_URL: 'redis://localhost:6379', STRATA_REDIS_CLUSTER: 'localhost:7000' }, 'not both'],
  ])('a bad value (%j %j) exits 2 naming the option and the value', async (args, env, text) => {
    const r = run(args, env);
    expect(await r.exit).toBe(2);
    expect(r.err()).toContain(text);
  });

  it('a bad token is never printed, nor a good one beside it', async () => {
    const r = run(['--port', '0'], { STRATA_TOKENS: 'good-token-123,bad' });
    expect(await r.exit).toBe(2);
    expect(r.err()).toContain('STRATA_TOKENS="***,***"');
    expect(r.err()).not.toContain('good-token-123');
  });

  it('a second node on a port a running node holds exits 3 (E_PORT_IN_USE) and the first keeps every request', async () => {
    // An explicit port: one the kernel picked (port 0) cannot be bound again while its connections are in TIME_WAIT.
    const first = await start(['--port', String(await freePort()), '--shards', '1']);
    expect((await fetch(`http://127.0.0.1:${first.port}/v1/keys/mine`, { method: 'PUT', body: 'first' })).status).toBe(204);
    const second = run(['--port', String(first.port), '--shards', '1']);
    expect(await second.exit).toBe(3);
    expect(second.err()).toContain(`[E_PORT_IN_USE]: 127.0.0.1:${first.port} is in use: another Strata node listens there`);
    expect(second.out()).not.toContain('listening');
    for (let i = 0; i < 20; i++) expect(await (await fetch(`http://127.0.0.1:${first.port}/v1/keys/mine`)).text()).toBe('first');
    first.child.kill('SIGTERM');
    expect(await first.exit).toBe(0);
    // Released with the node: the port can be used again.
    const again = await start(['--port', String(first.port), '--shards', '1']);
    expect(again.port).toBe(first.port);
  });

  it('exits 3 when another program holds the port', async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    try {
      const port = (holder.address() as { port: number }).port;
      const r = run(['--port', String(port), '--shards', '1']);
      expect(await r.exit).toBe(3);
      expect(r.err()).toContain(`127.0.0.1:${port} is in use: another process listens there`);
    } finally {
      holder.close();
    }
  });

  it('says at once what it waits for when Redis does not answer, then listens anyway', async () => {
    const dead = await freePort();
    const r = run(['--port', '0', '--shards', '1'], { REDIS_URL: `redis://127.0.0.1:${dead}` });
    await until(() => r.out().includes('\n'));
    expect(r.out().split('\n')[0]).toBe(`strata: connecting to the L2 (Redis redis://127.0.0.1:${dead}); serving in at most 5 s, with or without it`);
    expect(r.out()).not.toContain('listening on');
    await until(() => r.out().includes('strata listening on'), 15_000);
    r.child.kill('SIGTERM');
    expect(await r.exit).toBe(0);
  });

  it('an origin rule with a bad field exits 2, naming the rule and the field', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-origins-'));
    try {
      const file = join(dir, 'strata.json');
      writeFileSync(
        file,
        JSON.stringify({
          origins: [
            { prefix: 'user:', url: 'http://127.0.0.1:3000/users/{id}' },
            { prefix: 'item:', url: 'ftp://x/{id}' },
          ],
        }),
      );
      const r = run(['--port', '0'], { STRATA_CONFIG: file });
      expect(await r.exit).toBe(2);
      expect(r.err()).toContain('invalid origins[1].url="ftp://x/{id}"');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start on the uWebSockets.js JS fallback', async () => {
    const r = run(['--port', '0'], { UWS_USE_FALLBACK: '1' });
    expect(await r.exit).toBe(1);
    expect(r.err()).toContain('E_UWS_NATIVE_UNAVAILABLE');
  });

  it('on SIGTERM: /readyz turns 503, new connections are refused, an in-flight request finishes, exit 0', async () => {
    const node = await start();
    const open = async () => {
      const socket = connect(node.port, '127.0.0.1');
      await new Promise((r) => socket.once('connect', r));
      const conn = { socket, reply: '' };
      socket.on('data', (d) => {
        conn.reply += d.toString();
      });
      return conn;
    };
    const uploader = await open();
    const prober = await open();
    prober.socket.write('GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => prober.reply.includes('"ready"'));
    // A PUT whose body is half sent when the signal arrives: the node must wait for it.
    uploader.socket.write('PUT /v1/keys/drain HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello');
    // The node counts the upload as in flight (the stats request itself is the other one).
    await until(async () => ((await (await fetch(`http://127.0.0.1:${node.port}/v1/stats`)).json()) as { requestsInFlight: number }).requestsInFlight >= 2);
    node.child.kill('SIGTERM');
    await until(() => node.stdout().includes('draining'));
    // A new connection is refused (the listen socket is closed).
    await expect(rawRequest(node.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    prober.socket.write('GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n');
    await until(() => prober.reply.includes('"draining"')).catch((e: Error) => {
      throw new Error(`${e.message}; reply so far ${JSON.stringify(prober.reply)}`);
    });
    expect(prober.reply).toContain('HTTP/1.1 503');
    uploader.socket.write('world');
    await until(() => uploader.reply.includes('\r\n\r\n')).catch((e: Error) => {
      throw new Error(`${e.message}; reply so far ${JSON.stringify(uploader.reply)}`);
    });
    expect(uploader.reply).toMatch(/^HTTP\/1.1 204 /);
    expect(await node.exit).toBe(0);
    expect(node.stdout()).toContain('stopped');
  });
});

import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { LOG_EVENTS, type LogEvent } from '../../src/log.js';
import { ROOT, until } from '../helpers/node.js';
import { RedisServer } from '../helpers/redis.js';
import { spawnCli } from '../helpers/spawn-cli.js';

// The node's logs as an operator's shipper sees them (docs/logs.md): the real CLI with STRATA_LOG_FORMAT=json
// against a password-protected redis-server this test starts, stops and starts again.

/** One JSON log line, as parsed. */
type Line = Record<string, unknown> & { time: string; level: string; event: LogEvent; msg: string };

const PASSWORD = 'l0g-test-pass-9f3e';
const TOKEN = 'log-test-token-77ab';
const KEY = 'log-test-key-c4d1';
const VALUE = 'log-test-value-e8b2';
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** The CLI with `args` and `env`, its output kept by stream. */
const run = (args: string[], env: Record<string, string> = {}) => spawnCli(children, args, env);

/** Every complete stdout line, parsed; throws on one that is not a JSON log line. */
function parse(out: string): Line[] {
  const complete = out.slice(0, out.lastIndexOf('\n') + 1);
  return complete
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const line = JSON.parse(l) as Line;
      if (typeof line.time !== 'string' || Number.isNaN(Date.parse(line.time)) || !line.time.endsWith('Z')) throw new Error(`bad time: ${l}`);
      if (!['info', 'warn', 'error'].includes(line.level)) throw new Error(`bad level: ${l}`);
      if (!(line.event in LOG_EVENTS) || LOG_EVENTS[line.event].level !== line.level) throw new Error(`unknown event or wrong level: ${l}`);
      if (typeof line.msg !== 'string' || line.msg === '') throw new Error(`bad msg: ${l}`);
      return line;
    });
}

describe('JSON logs of the CLI', () => {
  let redis: RedisServer | null = null;
  afterAll(async () => {
    await redis?.stop();
  });

  it('start, config and listening; L2 down and up with Redis; draining and stopped; every line JSON; no password, token, key or value', async () => {
    redis = await RedisServer.start({ password: PASSWORD });
    const r = run(['--port', '0', '--shards', '2', '--fronts', '1'], {
      STRATA_LOG_FORMAT: 'json',
      REDIS_URL: `redis://default:${PASSWORD}@127.0.0.1:${redis.port}`,
      STRATA_TOKENS: TOKEN,
    });
    const lines = () => parse(r.out());
    const events = () => lines().map((l) => l.event);
    const find = (event: LogEvent) => lines().find((l) => l.event === event);
    await until(() => events().includes('node.listening') || r.child.exitCode !== null, 20_000);
    const listening = find('node.listening');
    expect(listening, r.out() + r.err()).toBeDefined();
    const url = listening?.url as string;

    // Start: once each, in this order, before anything else.
    expect(events().slice(0, 2)).toEqual(['node.start', 'node.config']);
    expect(find('node.start')).toMatchObject({ level: 'info', version: VERSION, pid: r.child.pid, nodeId: listening?.nodeId });
    expect(find('node.config')).toMatchObject({
      shards: 2,
      fronts: 1,
      l2: 'standalone',
      l2Addresses: [`redis://127.0.0.1:${redis.port}`],
      l2Credentials: true,
      tokens: 1,
      logFormat: 'json',
    });
    expect(listening).toMatchObject({ l2: 'up', shards: 2, fronts: 1 });
    expect(listening?.msg).toMatch(/^strata listening on http:\/\/127\.0\.0\.1:\d+ with 1 front and 2 shards/);

    // A key and a value go through the node and the L2.
    const auth = { authorization: `Bearer ${TOKEN}` };
    expect((await fetch(`${url}/v1/keys/${KEY}`, { method: 'PUT', body: VALUE, headers: auth })).status).toBe(204);
    expect(await (await fetch(`${url}/v1/keys/${KEY}`)).text()).toBe(VALUE);

    // Redis goes away: the L2 is down (once), and comes back with it.
    await redis.kill();
    await until(() => events().includes('l2.down'), 20_000, 50);
    const down = find('l2.down');
    expect(down).toMatchObject({ level: 'warn', atStart: false, shards: 2 });
    expect(typeof down?.reason).toBe('string');
    await redis.restart();
    await until(() => events().includes('l2.up'), 30_000, 50);
    expect(find('l2.up')).toMatchObject({ level: 'info', shards: 2, shardsReady: 2, busSubscribed: true, breakersOpen: 0 });
    // The bus lost its subscription in between: a gap, since invalidations sent meanwhile are lost.
    expect(
      lines()
        .filter((l) => l.event === 'bus.gap')
        .map((l) => l.reason),
    ).toContain('resubscribed');
    expect(events().indexOf('l2.down')).toBeLessThan(events().indexOf('l2.up'));

    r.child.kill('SIGTERM');
    expect(await r.exit).toBe(0);
    const all = events();
    expect(all.filter((e) => e === 'node.draining')).toHaveLength(1);
    expect(all.at(-1)).toBe('node.stopped');
    expect(all.indexOf('node.draining')).toBeLessThan(all.indexOf('node.stopped'));
    expect(find('node.draining')).toMatchObject({ signal: 'SIGTERM' });
    // Each start event once; the shutdown logged no L2 trouble of its own.
    for (const event of ['node.start', 'node.config', 'node.listening'] as const) expect(all.filter((e) => e === event)).toHaveLength(1);
    expect(all.slice(all.indexOf('node.draining'))).toEqual(['node.draining', 'node.stopped']);

    // Everything on stdout, every line a log line (parse throws otherwise), and nothing secret or private anywhere.
    expect(lines().length).toBe(
      r
        .out()
        .split('\n')
        .filter((l) => l !== '').length,
    );
    expect(r.err()).not.toMatch(/strata/);
    for (const hidden of [PASSWORD, TOKEN, KEY, VALUE]) {
      expect(r.out()).not.toContain(hidden);
      expect(r.err()).not.toContain(hidden);
    }
  }, 90_000);

  it('a bad STRATA_LOG_FORMAT is refused at start: exit 2 (E_CONFIG), naming the variable and the value', async () => {
    const r = run(['--port', '0'], { STRATA_LOG_FORMAT: 'yaml' });
    expect(await r.exit).toBe(2);
    expect(r.err()).toBe('strata: invalid STRATA_LOG_FORMAT="yaml": must be "text" or "json"\n');
    expect(r.out()).toBe('');
  });

  it('with json asked for, another bad option is refused as one JSON line on stdout with code E_CONFIG', async () => {
    const r = run(['--port', '0', '--log-format', 'json'], { STRATA_SHARDS: '0' });
    expect(await r.exit).toBe(2);
    expect(r.err()).toBe('');
    const [line, ...rest] = parse(r.out());
    expect(rest).toEqual([]);
    expect(line).toMatchObject({ level: 'error', event: 'node.start_failed', code: 'E_CONFIG', exitCode: 2, option: 'STRATA_SHARDS' });
    expect(line?.msg).toBe('invalid STRATA_SHARDS="0": must be an integer in [1, 256]');
  });
});

describe('JSON logs of workers and fronts replaced (a node in this process: its threads can be killed from here)', () => {
  it('a shard worker killed: shard.exit, then shard.replaced once the new worker serves; a front that crashes: front.exit, then front.replaced', async () => {
    // From the build, as startTestNode does (the shard workers run dist/ JavaScript).
    const { Logger } = (await import(`${ROOT}dist/src/log.js`)) as typeof import('../../src/log.js');
    const { resolveConfig } = (await import(`${ROOT}dist/src/config/load.js`)) as typeof import('../../src/config/load.js');
    const { startNode } = (await import(`${ROOT}dist/src/node.js`)) as typeof import('../../src/node.js');
    const out: string[] = [];
    const log = new Logger({ format: 'json', write: (_stream, line) => out.push(line) });
    const node = await startNode(resolveConfig(new Map(), {}, { port: 0, shards: 2, fronts: 2, l1MaxBytes: 64 * 1024 * 1024 }), { log });
    try {
      const lines = () => parse(out.join(''));
      const pool = node.internals.pool;
      const old = pool.workerThreadIds()[0] as number;
      await pool.workerThreadOf(0)?.terminate();
      const about = (event: LogEvent) => lines().filter((l) => l.event === event && (l.threadId === old || l.previousThreadId === old));
      await until(() => about('shard.replaced').length > 0, 20_000);
      const [exit, ...moreExits] = about('shard.exit');
      const [replaced, ...moreReplaced] = about('shard.replaced');
      expect(exit, out.join('')).toMatchObject({ level: 'warn', shard: 0, threadId: old });
      // terminate() ends the worker as a crash would: piscina sees it exit with an error.
      expect(exit?.reason).toBe('crash');
      expect(replaced).toMatchObject({ level: 'info', shard: 0, previousThreadId: old, threadId: pool.workerThreadIds()[0], reason: exit?.reason });
      expect([...moreExits, ...moreReplaced]).toEqual([]);
      expect(pool.isUp(0)).toBe(true);

      node.internals.fronts.crash(1);
      await until(() => lines().some((l) => l.event === 'front.replaced'), 20_000);
      expect(lines().find((l) => l.event === 'front.exit')).toMatchObject({ level: 'warn', front: 1 });
      expect(lines().find((l) => l.event === 'front.replaced')).toMatchObject({ level: 'info', front: 1 });
      const names = lines().map((l) => l.event);
      expect(names.indexOf('front.exit')).toBeLessThan(names.indexOf('front.replaced'));
      // The error's class and where it was thrown are logged, not its message (a front's error may quote a request).
      expect(lines().find((l) => l.event === 'front.error')).toMatchObject({
        level: 'error',
        front: 1,
        error: 'Error',
        at: expect.stringContaining('thread.js'),
      });
      expect(out.join('')).not.toContain('crashed on request');
    } finally {
      await node.close();
    }
  }, 60_000);
});

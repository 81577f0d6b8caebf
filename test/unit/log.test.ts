import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { earlyLogFormat, parseFlags, resolveConfig } from '../../src/config/load.js';
import { Counters } from '../../src/counters/counters.js';
import { SHARD_SLOT } from '../../src/counters/layout.js';
import { ConfigError } from '../../src/errors.js';
import { L2_WATCH_INTERVAL_MS, NodeL2Link } from '../../src/l2/node-link.js';
import { redactPasswords } from '../../src/l2/target.js';
import { addressOf, configSummary, errorFields, LOG_EVENTS, type LogFormat, Logger } from '../../src/log.js';
import { ROOT } from '../helpers/node.js';

/** A logger whose lines are kept, by stream, with a fixed clock. */
function capture(format: LogFormat): { log: Logger; stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const log = new Logger({
    format,
    write: (stream, line) => (stream === 'stdout' ? stdout : stderr).push(line),
    now: () => new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6)),
  });
  return { log, stdout, stderr };
}

const none = new Map<string, string>();

describe('log lines', () => {
  it('json: one object per event, on one line, on stdout, with time, level, event and msg first and the fields after', () => {
    const { log, stdout, stderr } = capture('json');
    log.event('front.exit', { front: 1, exitCode: 1, replaceInMs: 100 }, 'strata: front 1 exited with code 1; replacing it in 100 ms');
    log.event(
      'l2.down',
      { shards: 2, shardsReady: 0, breakersOpen: 1, busSubscribed: false, reason: 'connect ECONNREFUSED\nagain', atStart: false },
      'strata: a\nb',
    );
    log.event('node.stopped', {}, 'strata: stopped');
    expect(stderr).toEqual([]);
    expect(stdout).toHaveLength(3);
    for (const line of stdout) {
      expect(line.endsWith('\n')).toBe(true);
      expect(line.slice(0, -1)).not.toContain('\n');
    }
    const [exit, down, stopped] = stdout.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(Object.keys(exit ?? {}).slice(0, 4)).toEqual(['time', 'level', 'event', 'msg']);
    expect(exit).toEqual({
      time: '2024-01-02T03:04:05.006Z',
      level: 'warn',
      event: 'front.exit',
      msg: 'front 1 exited with code 1; replacing it in 100 ms',
      front: 1,
      exitCode: 1,
      replaceInMs: 100,
    });
    expect(down).toMatchObject({ level: 'warn', event: 'l2.down', msg: 'a\nb', reason: 'connect ECONNREFUSED\nagain', breakersOpen: 1 });
    expect(stopped).toEqual({ time: '2024-01-02T03:04:05.006Z', level: 'info', event: 'node.stopped', msg: 'stopped' });
  });

  it('json: a field cannot overwrite time, level, event or msg', () => {
    const { log, stdout } = capture('json');
    const sneaky = { front: 0, exitCode: 1, replaceInMs: 5, level: 'info', event: 'x', msg: 'y', time: 'z' };
    log.event('front.exit', sneaky, 'strata: front 0 exited');
    expect(JSON.parse(stdout[0] as string)).toMatchObject({ level: 'warn', event: 'front.exit', msg: 'front 0 exited', front: 0 });
  });

  it('text: the line as given, info on stdout, warnings and errors on stderr, one line even when a message has newlines', () => {
    const { log, stdout, stderr } = capture('text');
    log.event('node.draining', { signal: 'SIGTERM', drainTimeoutMs: 8000 }, 'strata: SIGTERM: draining');
    log.event('front.exit', { front: 1, exitCode: 1, replaceInMs: 100 }, 'strata: front 1 exited with code 1; replacing it in 100 ms');
    log.event('node.stop_failed', { error: 'Error' }, 'strata: shutdown failed: one\ntwo');
    expect(stdout).toEqual(['strata: SIGTERM: draining\n']);
    expect(stderr).toEqual(['strata: front 1 exited with code 1; replacing it in 100 ms\n', 'strata: shutdown failed: one\\ntwo\n']);
  });

  it('text: the routine start-up events are JSON-only (the listening line says it all)', () => {
    const { log, stdout, stderr } = capture('text');
    log.event('node.start', { version: '1.0.0', nodeId: 'a', pid: 1, nodeVersion: 'v20.0.0' }, 'strata: starting');
    log.event('bus.subscribed', {}, 'strata: subscribed');
    expect([...stdout, ...stderr]).toEqual([]);
    const json = capture('json');
    json.log.event('node.start', { version: '1.0.0', nodeId: 'a', pid: 1, nodeVersion: 'v20.0.0' }, 'strata: starting');
    expect(JSON.parse(json.stdout[0] as string)).toMatchObject({ event: 'node.start', version: '1.0.0', nodeId: 'a', pid: 1 });
  });

  it('an error is logged by class, code and frame, never by its message', () => {
    const err = Object.assign(new TypeError('the value "hunter2" is bad'), { code: 'ERR_X' });
    const fields = errorFields(err);
    expect(fields).toMatchObject({ error: 'TypeError', code: 'ERR_X' });
    expect(fields.at).toMatch(/log\.test\.ts:\d+:\d+/);
    expect(JSON.stringify(fields)).not.toContain('hunter2');
    expect(errorFields('a string')).toEqual({ error: 'string' });
  });
});

describe('the configuration summary', () => {
  const secret = 's3cret-pw';

  it('strips user and password from a Redis URL and a PostgreSQL URL, and shows tokens as a count', () => {
    const config = resolveConfig(
      none,
      {
        REDIS_URL: `redis://user:${secret}@cache.internal:6380/2`,
        STRATA_POSTGRES_URL: `postgres://u:${secret}@h/db`,
        STRATA_TOKENS: 'token-aaaa1,token-bbbb2',
      },
      {},
    );
    const summary = configSummary(config);
    expect(summary).toMatchObject({
      l2: 'standalone',
      l2Addresses: ['redis://cache.internal:6380/2'],
      l2Credentials: true,
      l2Tls: false,
      postgres: 'postgres://h/db',
      tokens: 2,
    });
    const { log, stdout } = capture('json');
    log.event('node.config', summary, 'strata: configuration');
    const line = stdout.join('');
    for (const hidden of [secret, 'user:', 'u:', 'token-aaaa1', 'token-bbbb2']) expect(line).not.toContain(hidden);
    expect(JSON.parse(line)).toMatchObject({ event: 'node.config', l2Addresses: ['redis://cache.internal:6380/2'], tokens: 2 });
  });

  it('strips credentials from rediss:// Cluster seeds and passwords in a query, and shows origins by name and prefix only', () => {
    const config = resolveConfig(
      none,
      {
        STRATA_REDIS_CLUSTER: `rediss://app:${secret}@10.0.0.1:7000,rediss://app:${secret}@10.0.0.2:7000`,
        STRATA_ORIGIN: `user:=http://api.internal/users/{id}?api_key=${secret}`,
      },
      {},
    );
    const summary = configSummary(config);
    expect(summary).toMatchObject({ l2: 'cluster', l2Addresses: ['rediss://10.0.0.1:7000', 'rediss://10.0.0.2:7000'], l2Tls: true, l2Credentials: true });
    expect(summary.origins).toEqual([{ name: 'user:', prefix: 'user:' }]);
    expect(JSON.stringify(summary)).not.toContain(secret);
    expect(addressOf(`redis://h:1/0?password=${secret}`)).toBe('redis://h:1/0');
    expect(addressOf(`app:${secret}@10.0.0.1:7000`)).toBe('10.0.0.1:7000');
    expect(addressOf('10.0.0.1:7000')).toBe('10.0.0.1:7000');
  });

  it('a password in a Redis URL query (ioredis takes options from it) is hidden wherever the URL is shown', () => {
    const url = `redis://10.0.0.1:6379?password=${secret}`;
    const config = resolveConfig(none, { REDIS_URL: url }, {});
    expect(redactPasswords(url)).toBe('redis://10.0.0.1:6379?***');
    expect(redactPasswords(`redis://a:1,rediss://:${secret}@b:2?password=${secret}&db=1`)).toBe('redis://a:1,rediss://:***@b:2?***');
    const link = new NodeL2Link({ url }, config);
    expect(link.describe()).not.toContain(secret);
    expect(JSON.stringify(configSummary(config))).not.toContain(secret);
    // A bad path is refused with the URL in the message: redacted too.
    const refused = (() => {
      try {
        resolveConfig(none, { REDIS_URL: `redis://10.0.0.1:6379/x?password=${secret}` }, {});
      } catch (err) {
        return err as ConfigError;
      }
      return null;
    })();
    expect(refused).toBeInstanceOf(ConfigError);
    expect(refused?.message).not.toContain(secret);
  });

  it('says when the L2 has no credentials, and when there is no L2 or PostgreSQL', () => {
    expect(configSummary(resolveConfig(none, { REDIS_URL: 'redis://127.0.0.1:6379' }, {}))).toMatchObject({
      l2Credentials: false,
      l2Addresses: ['redis://127.0.0.1:6379'],
    });
    expect(configSummary(resolveConfig(none, {}, {}))).toMatchObject({ l2: 'none', l2Addresses: [], postgres: null, tokens: 0, logFormat: 'text' });
  });
});

describe('the logFormat option', () => {
  it('is text by default, json from STRATA_LOG_FORMAT, --log-format or the file', () => {
    expect(resolveConfig(none, {}, {}).logFormat).toBe('text');
    expect(resolveConfig(none, { STRATA_LOG_FORMAT: 'json' }, {}).logFormat).toBe('json');
    expect(resolveConfig(parseFlags(['--log-format', 'json']), { STRATA_LOG_FORMAT: 'text' }, {}).logFormat).toBe('json');
    expect(resolveConfig(none, {}, { logFormat: 'json' }).logFormat).toBe('json');
  });

  it.each([
    [none, { STRATA_LOG_FORMAT: 'yaml' }, {}, 'STRATA_LOG_FORMAT'],
    [parseFlags(['--log-format=JSON']), {}, {}, '--log-format'],
    [none, {}, { logFormat: 1 }, 'logFormat'],
  ])('refuses anything but text or json with E_CONFIG, naming where it came from (%#)', (flags, env, file, option) => {
    let err: unknown;
    try {
      resolveConfig(flags, env, file);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(err).toMatchObject({ code: 'E_CONFIG', option, rule: 'must be "text" or "json"' });
  });

  it('a configuration error is reported in the format the flag or variable names, when that one is valid', () => {
    expect(earlyLogFormat([], { STRATA_LOG_FORMAT: 'json' })).toBe('json');
    expect(earlyLogFormat(['--log-format', 'json'], {})).toBe('json');
    expect(earlyLogFormat(['--log-format=text'], { STRATA_LOG_FORMAT: 'json' })).toBe('text');
    expect(earlyLogFormat([], { STRATA_LOG_FORMAT: 'yaml' })).toBe('text');
    expect(earlyLogFormat([], {})).toBe('text');
  });
});

describe('the L2 watch', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  /** A node's L2 link over fresh counters, its log kept, its samples driven by fake timers. */
  function watched(shards: number, upNow: boolean) {
    vi.useFakeTimers();
    const counters = new Counters(shards);
    const { log, stdout, stderr } = capture('json');
    const config = { redisUrl: 'redis://127.0.0.1:1', redisCluster: [], l2TimeoutMs: 100, l1MaxTtl: 60, l1Admission: 'lru' as const, shards };
    const link = new NodeL2Link({ url: config.redisUrl }, config, log);
    link.watch(counters, upNow);
    const sample = () => vi.advanceTimersByTime(L2_WATCH_INTERVAL_MS);
    const events = () => [...stdout, ...stderr].map((l) => JSON.parse(l) as Record<string, unknown>);
    return { counters, link, sample, events };
  }

  it('logs a breaker open and half-open once per outage however often it cycles, then closed; each shard on its own', () => {
    const { counters, link, sample, events } = watched(2, false);
    const breaker = (shard: number, code: number) => counters.setShard(shard, SHARD_SLOT.L2_BREAKER, code);
    sample();
    expect(events()).toEqual([]);
    for (const code of [2, 1, 2, 1, 2, 0]) {
      breaker(0, code);
      sample();
    }
    breaker(1, 1);
    sample();
    expect(events().map((e) => [e.event, e.shard, e.was])).toEqual([
      ['l2.breaker.open', 0, 'closed'],
      ['l2.breaker.half_open', 0, 'open'],
      ['l2.breaker.closed', 0, 'open'],
      ['l2.breaker.half_open', 1, 'closed'],
    ]);
    // A new outage is logged again.
    breaker(0, 2);
    sample();
    expect(events().at(-1)).toMatchObject({ event: 'l2.breaker.open', shard: 0, level: 'warn' });
    link.unwatch();
  });

  it('logs l2.down once when the L2 stops counting as up, with why, and nothing once unwatched', () => {
    const { counters, link, sample, events } = watched(2, true);
    counters.setShard(0, SHARD_SLOT.L2_READY, 1);
    sample();
    sample();
    expect(events()).toEqual([
      expect.objectContaining({
        event: 'l2.down',
        level: 'warn',
        atStart: false,
        shards: 2,
        shardsReady: 1,
        busSubscribed: false,
        reason: '1 of 2 shards not connected',
      }),
    ]);
    link.unwatch();
    counters.setShard(1, SHARD_SLOT.L2_BREAKER, 2);
    sample();
    expect(events()).toHaveLength(1);
  });
});

describe('docs/logs.md', () => {
  const doc = readFileSync(join(ROOT, 'docs/logs.md'), 'utf8');
  // Rows of the events table: | `event` | level | text | fields | when |
  const documented = new Map(
    [...doc.matchAll(/^\|\s*`([a-z0-9_]+(?:\.[a-z0-9_]+)+)`\s*\|\s*(\w+)\s*\|\s*(\w+)\s*\|/gm)].map((m) => [m[1] as string, { level: m[2], text: m[3] }]),
  );

  it('lists exactly the events of src/log.ts, with their levels and whether text prints them', () => {
    const inCode = new Map(Object.entries(LOG_EVENTS).map(([event, { level, text }]) => [event, { level, text: text ? 'yes' : 'no' }]));
    expect(documented).toEqual(inCode);
  });

  it('every declared event is logged somewhere (the type system checks the other way)', () => {
    const files = ['cli.ts', 'node.ts', 'front/supervisor.ts', 'shards/supervisor.ts', 'l2/node-link.ts', 'cluster/membership.ts'];
    const source = files.map((file) => readFileSync(join(ROOT, 'src', file), 'utf8')).join('\n');
    const logged = new Set([...source.matchAll(/\.event\(\s*'([^']+)'/g)].map((m) => m[1] as string));
    for (const event of Object.keys(LOG_EVENTS)) expect(logged.has(event), event).toBe(true);
  });
});

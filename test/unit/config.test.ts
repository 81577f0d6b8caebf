import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { helpText, loadConfig, parseFlags, resolveConfig } from '../../src/config/load.js';
import { defaultShards, OPTIONS } from '../../src/config/schema.js';
import { ConfigError } from '../../src/errors.js';

const none = new Map<string, string>();

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  it('defaults to an L1-only node on 127.0.0.1:8080 with max(1, cores - 1) shards', () => {
    const config = resolveConfig(none, {}, {});
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      shards: defaultShards(),
      defaultTtl: 300,
      maxTtl: 86400,
      maxValueBytes: 1048576,
      tokens: [],
    });
    expect(config.l1MaxBytes).toBe(256 * 1024 * 1024);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('takes flags over environment over file over defaults', () => {
    const file = { port: 1111, shards: 2, defaultTtl: 10 };
    const env = { STRATA_PORT: '2222', STRATA_SHARDS: '3' };
    const flags = parseFlags(['--port', '3333']);
    const config = resolveConfig(flags, env, file);
    expect(config.port).toBe(3333);
    expect(config.shards).toBe(3);
    expect(config.defaultTtl).toBe(10);
    expect(config.maxTtl).toBe(86400);
  });

  it('parses --name=value, byte suffixes and token lists', () => {
    const config = resolveConfig(parseFlags(['--l1-max-bytes=64m', '--max-value-bytes', '512k']), { STRATA_TOKENS: 'token-aaaa1, token-bbbb2' }, {});
    expect(config.l1MaxBytes).toBe(64 * 1024 * 1024);
    expect(config.maxValueBytes).toBe(512 * 1024);
    expect(config.tokens).toEqual(['token-aaaa1', 'token-bbbb2']);
    for (const host of ['0.0.0.0', '::1', 'localhost', 'cache-1.internal']) expect(resolveConfig(none, { STRATA_HOST: host }, {}).host).toBe(host);
  });

  it.each([
    [{ STRATA_PORT: '70000' }, 'STRATA_PORT'],
    [{ STRATA_PORT: 'eighty' }, 'STRATA_PORT'],
    [{ STRATA_SHARDS: '0' }, 'STRATA_SHARDS'],
    [{ STRATA_SHARDS: '2.5' }, 'STRATA_SHARDS'],
    [{ STRATA_DEFAULT_TTL: '0' }, 'STRATA_DEFAULT_TTL'],
    [{ STRATA_MAX_TTL: '-5' }, 'STRATA_MAX_TTL'],
    [{ STRATA_MAX_VALUE_BYTES: '0' }, 'STRATA_MAX_VALUE_BYTES'],
    [{ STRATA_L1_MAX_BYTES: '12q' }, 'STRATA_L1_MAX_BYTES'],
    [{ STRATA_HOST: 'a b' }, 'STRATA_HOST'],
    [{ STRATA_HOST: '256.1.1.1' }, 'STRATA_HOST'],
    [{ STRATA_HOST: '-bad-.example' }, 'STRATA_HOST'],
    [{ STRATA_REQUEST_TIMEOUT_MS: '1' }, 'STRATA_REQUEST_TIMEOUT_MS'],
    [{ STRATA_DRAIN_TIMEOUT_MS: '20000' }, 'STRATA_DRAIN_TIMEOUT_MS'],
  ])('rejects %o naming %s and the value', (env, name) => {
    const err = configError(() => resolveConfig(none, env, {}));
    expect(err.code).toBe('E_CONFIG');
    expect(err.message).toContain(name);
    expect(err.message).toContain(`${name}=${JSON.stringify(Object.values(env)[0])}`);
  });

  it('rejects bad tokens without ever printing one, good or bad, from any source', () => {
    const cases: [Record<string, string>, Map<string, string>, Record<string, unknown>, string][] = [
      [{ STRATA_TOKENS: 'good-token-123,bad' }, none, {}, 'STRATA_TOKENS="***,***": token 2 of 2'],
      [{ STRATA_TOKENS: 'has space inside' }, none, {}, 'STRATA_TOKENS="***"'],
      [{ STRATA_TOKENS: ' , ' }, none, {}, 'STRATA_TOKENS'],
      [{}, parseFlags(['--tokens', 'good-token-123,short']), {}, '--tokens="***,***"'],
      [{}, none, { tokens: ['good-token-123', 'bad'] }, 'tokens="***,***": token 2 of 2'],
      [{}, none, { tokens: 'good-token-123' }, 'tokens="***"'],
    ];
    for (const [env, flags, file, shown] of cases) {
      const err = configError(() => resolveConfig(flags, env, file));
      expect(err.code).toBe('E_CONFIG');
      expect(err.message).toContain(shown);
      expect(err.message).not.toMatch(/good-token|short|bad"|space/);
    }
    // A repeated flag, a mistyped flag or file option may carry a secret too.
    expect(configError(() => parseFlags(['--tokens', 'good-token-123', '--tokens', 'other-token-456'])).message).not.toMatch(/token-\d/);
    expect(configError(() => parseFlags(['--token=good-token-123'])).message).not.toContain('good-token');
    expect(configError(() => resolveConfig(none, {}, { token: 'good-token-123' })).message).not.toContain('good-token');
  });

  it('rejects cross-field contradictions', () => {
    expect(configError(() => resolveConfig(none, { STRATA_DEFAULT_TTL: '600', STRATA_MAX_TTL: '60' }, {})).option).toBe('defaultTtl');
    expect(configError(() => resolveConfig(none, { STRATA_L1_MAX_BYTES: '2m', STRATA_SHARDS: '4' }, {})).option).toBe('l1MaxBytes');
  });

  it('takes the L2 from REDIS_URL or STRATA_REDIS_CLUSTER (not both), with its deadline and L1 cap', () => {
    const defaults = resolveConfig(none, {}, {});
    expect(defaults).toMatchObject({ redisUrl: '', redisCluster: [], l2TimeoutMs: 500, l1MaxTtl: 60 });
    expect(resolveConfig(none, { REDIS_URL: 'rediss://app:s3cret@redis.example:6380/2' }, {}).redisUrl).toBe('rediss://app:s3cret@redis.example:6380/2');
    expect(resolveConfig(none, { STRATA_REDIS_CLUSTER: ' 10.0.0.1:7000, redis-b:7001 ,[::1]:7002' }, {}).redisCluster).toEqual([
      '10.0.0.1:7000',
      'redis-b:7001',
      '[::1]:7002',
    ]);
    expect(resolveConfig(parseFlags(['--l2-timeout-ms', '250', '--l1-max-ttl', '5']), {}, {})).toMatchObject({ l2TimeoutMs: 250, l1MaxTtl: 5 });
    const both = configError(() => resolveConfig(none, { REDIS_URL: 'redis://a:6379', STRATA_REDIS_CLUSTER: 'b:7000' }, {}));
    expect(both.option).toBe('redisCluster');
    expect(configError(() => resolveConfig(none, { STRATA_L2_TIMEOUT_MS: '2501' }, {})).option).toBe('l2TimeoutMs');
    expect(resolveConfig(none, { STRATA_L2_TIMEOUT_MS: '2500' }, {}).l2TimeoutMs).toBe(2500);
    expect(resolveConfig(none, { STRATA_L1_ADMISSION: 'lru' }, {}).l1Admission).toBe('lru');
    expect(configError(() => resolveConfig(none, { STRATA_L1_ADMISSION: 'lfu' }, {})).option).toBe('STRATA_L1_ADMISSION');
    for (const bad of ['b', 'b:0', 'b:99999', ':7000', '']) {
      expect(configError(() => resolveConfig(none, {}, { redisCluster: [bad] })).option).toBe('redisCluster');
    }
    expect(configError(() => resolveConfig(none, { STRATA_REDIS_CLUSTER: ' , ' }, {})).option).toBe('STRATA_REDIS_CLUSTER');
  });

  it('takes Cluster seeds as host:port or as URLs that share scheme and credentials, never repeating a password', () => {
    const seeds = 'redis://app:pw-1@10.0.0.1:7000,redis://app:pw-1@10.0.0.2:7000';
    expect(resolveConfig(none, { STRATA_REDIS_CLUSTER: seeds }, {}).redisCluster).toEqual(seeds.split(','));
    for (const bad of [
      'redis://app:pw-1@10.0.0.1:7000,redis://app:pw-2@10.0.0.2:7000',
      'redis://app:pw-1@10.0.0.1:7000,10.0.0.2:7000',
      'rediss://app:pw-1@10.0.0.1:7000,redis://app:pw-1@10.0.0.2:7000',
      'redis://app:pw-1@10.0.0.1:7000/3',
    ]) {
      const err = configError(() => resolveConfig(none, { STRATA_REDIS_CLUSTER: bad }, {}));
      expect(err.option).toBe('STRATA_REDIS_CLUSTER');
      expect(err.message).not.toMatch(/pw-[12]/);
    }
    const both = configError(() => resolveConfig(none, { REDIS_URL: 'redis://:pw-1@a:6379', STRATA_REDIS_CLUSTER: 'redis://:pw-2@b:7000' }, {}));
    expect(both.message).not.toMatch(/pw-[12]/);
  });

  it('rejects a bad REDIS_URL without repeating its password', () => {
    for (const bad of ['http://app:s3cret@host:6379', 'redis://app:s3cret@', 'redis://app:s3cret@host:6379/db', 'not a url']) {
      const err = configError(() => resolveConfig(none, { REDIS_URL: bad }, {}));
      expect(err.option).toBe('REDIS_URL');
      expect(err.message).not.toContain('s3cret');
    }
    expect(configError(() => resolveConfig(none, {}, { redisUrl: 'redis://u:s3cret@h:1/x' })).message).not.toContain('s3cret');
  });

  it('rejects unknown flags, flags without values, repeated flags and unknown file options', () => {
    expect(configError(() => parseFlags(['--prot', '1'])).message).toContain('--prot');
    expect(configError(() => parseFlags(['--port'])).option).toBe('--port');
    expect(configError(() => parseFlags(['--port', '1', '--port', '2'])).option).toBe('--port');
    expect(configError(() => resolveConfig(none, {}, { prot: 1 })).option).toBe('prot');
    expect(configError(() => resolveConfig(none, {}, { port: '8080' })).option).toBe('port');
  });

  it('loads cluster.config.ts from the working directory and the file STRATA_CONFIG names', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-config-'));
    writeFileSync(
      join(dir, 'cluster.config.ts'),
      "import type { StrataFileConfig } from './x.js';\nconst c: StrataFileConfig = { port: 4444, shards: 2 };\nexport default c;\n",
    );
    writeFileSync(join(dir, 'other.mjs'), 'export default { port: 5555 };\n');
    writeFileSync(join(dir, 'broken.ts'), 'export default 42;\n');
    expect((await loadConfig({ argv: [], env: {}, cwd: dir })).port).toBe(4444);
    expect((await loadConfig({ argv: [], env: { STRATA_CONFIG: 'other.mjs' }, cwd: dir })).port).toBe(5555);
    await expect(loadConfig({ argv: [], env: { STRATA_CONFIG: 'missing.ts' }, cwd: dir })).rejects.toMatchObject({ code: 'E_CONFIG', option: 'STRATA_CONFIG' });
    await expect(loadConfig({ argv: [], env: { STRATA_CONFIG: 'broken.ts' }, cwd: dir })).rejects.toMatchObject({ code: 'E_CONFIG' });
    expect((await loadConfig({ argv: ['--port', '6666'], env: { STRATA_PORT: '7777' }, cwd: dir })).port).toBe(6666);
  });

  it('takes the cluster: node id, members from the file or STRATA_MEMBERS, registry and routing, and refuses what cannot work', () => {
    const L2 = { REDIS_URL: 'redis://r:6379' };
    const env = { ...L2, STRATA_NODE_ID: 'n2', STRATA_MEMBERS: 'n1=http://10.0.0.1:8080, n2=http://10.0.0.2:8080/', STRATA_ROUTING: 'local' };
    const config = resolveConfig(none, env, {});
    expect(config.nodeId).toBe('n2');
    expect(config.members).toEqual([
      { id: 'n1', url: 'http://10.0.0.1:8080', weight: 1 },
      { id: 'n2', url: 'http://10.0.0.2:8080', weight: 1 },
    ]);
    expect(config.routing).toBe('local');
    expect(config.registry).toBe(false);
    const file = { nodeId: 'a', members: [{ id: 'a', url: 'http://a:1', weight: 3 }], registry: true, redisUrl: 'redis://r:6379' };
    expect(resolveConfig(none, {}, file)).toMatchObject({ members: [{ id: 'a', url: 'http://a:1', weight: 3 }], registry: true, routing: 'owner' });
    expect(resolveConfig(none, { STRATA_REGISTRY: 'on', REDIS_URL: 'redis://r:6379' }, {}).registry).toBe(true);

    expect(configError(() => resolveConfig(none, { STRATA_NODE_ID: 'a b' }, {})).message).toMatch(/STRATA_NODE_ID.*A–Z/);
    expect(configError(() => resolveConfig(none, { STRATA_MEMBERS: 'n1=http://a:1/path' }, {})).message).toMatch(/no path/);
    expect(configError(() => resolveConfig(none, { STRATA_MEMBERS: 'n1=http://a:1,n1=http://b:1' }, {})).message).toMatch(/twice/);
    expect(configError(() => resolveConfig(none, { STRATA_MEMBERS: 'n1' }, {})).message).toMatch(/id=url/);
    expect(configError(() => resolveConfig(none, {}, { members: [{ id: 'a', url: 'http://a:1', wieght: 2 }] })).message).toMatch(/wieght/);
    // A node that is not among the static members could never own a key: refused unless it joins through the registry.
    expect(configError(() => resolveConfig(none, { ...L2, STRATA_NODE_ID: 'n9', STRATA_MEMBERS: 'n1=http://a:1' }, {})).message).toMatch(
      /must be one of members/,
    );
    expect(configError(() => resolveConfig(none, { ...L2, STRATA_MEMBERS: 'n1=http://a:1' }, {})).message).toMatch(/not set/);
    // Without a shared L2 a write would stay on the node that took it while reads go to the owner.
    expect(configError(() => resolveConfig(none, { STRATA_NODE_ID: 'n1', STRATA_MEMBERS: 'n1=http://a:1' }, {})).message).toMatch(/need an L2/);
    expect(configError(() => resolveConfig(none, { STRATA_REGISTRY: 'on' }, {})).message).toMatch(/needs an L2/);
    expect(configError(() => resolveConfig(none, { STRATA_REGISTRY: 'maybe' }, {})).message).toMatch(/on or off/);
    expect(configError(() => resolveConfig(none, { STRATA_ROUTING: 'nearest' }, {})).message).toMatch(/owner.*local/);
    const conflicting = { ...L2, STRATA_NODE_ID: 'n1', STRATA_MEMBERS: 'n1=http://a:1', STRATA_ADVERTISE_URL: 'http://b:2' };
    expect(configError(() => resolveConfig(none, conflicting, {})).message).toMatch(/differs/);
  });

  it('--help lists every option with its flag, variable and default', () => {
    const text = helpText();
    for (const option of OPTIONS) {
      expect(text).toContain(option.flag);
      expect(text).toContain(option.env);
      expect(text).toContain(`default ${option.defaultText}`);
    }
  });
});

import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { transform } from 'sucrase';
import { ConfigError } from '../errors.js';
import { L1_ENTRY_OVERHEAD_BYTES } from '../l1/partition.js';
import { redactPasswords } from '../l2/target.js';
import { OPTIONS, type OptionSpec, type StrataConfig } from './schema.js';

/**
 * What the L1 charges for an entry beyond its value, at most: a 512-byte key
 * counted as UTF-16 (1024), the header block (256-character content type plus
 * etag and x-cache lines, under 320) and the fixed overhead.
 */
export const LARGEST_ENTRY_EXTRA_BYTES = 1024 + 320 + L1_ENTRY_OVERHEAD_BYTES;

/**
 * How long a shard may take to answer an op that waits (an origin load, a
 * lock or lease wait): well inside requestTimeoutMs, after which the pool
 * would take the shard for hung and replace its worker.
 */
export function answerWithinMs(requestTimeoutMs: number): number {
  return Math.max(requestTimeoutMs * 0.8, requestTimeoutMs - 1000);
}

export interface ConfigSources {
  /** CLI arguments after the script name. */
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Where `cluster.config.ts` is looked for. */
  readonly cwd: string;
}

/** The default config file name, looked for in the working directory. */
export const DEFAULT_CONFIG_FILE = 'cluster.config.ts';

/** Splits `--name value` / `--name=value` flags; throws ConfigError on anything unknown. */
export function parseFlags(argv: readonly string[]): Map<string, string> {
  const flags = new Map<string, string>();
  const known = new Set(OPTIONS.map((o) => o.flag));
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    // Only the name: the value of a mistyped flag may be a secret (--token=…).
    if (!known.has(name)) throw new ConfigError('argv', name, 'unknown flag; see strata --help');
    let value: string | undefined;
    if (eq !== -1) value = arg.slice(eq + 1);
    else value = argv[++i];
    if (value === undefined) throw new ConfigError(name, null, 'needs a value');
    if (flags.has(name)) {
      const redact = OPTIONS.find((o) => o.flag === name)?.redact;
      throw new ConfigError(name, redact === undefined ? value : redact(value), 'given twice');
    }
    flags.set(name, value);
  }
  return flags;
}

/**
 * The log format to report a configuration error in, when the configuration
 * could not be loaded: the flag's, else the variable's, if it names one
 * (`text` otherwise; a config file's logFormat is not read then).
 */
export function earlyLogFormat(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): StrataConfig['logFormat'] {
  const option = OPTIONS.find((o) => o.key === 'logFormat') as OptionSpec<'logFormat'>;
  let raw = env[option.env];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === option.flag) raw = argv[i + 1];
    else if (arg.startsWith(`${option.flag}=`)) raw = arg.slice(option.flag.length + 1);
  }
  try {
    return raw === undefined || raw === '' ? 'text' : option.parse(raw);
  } catch {
    return 'text';
  }
}

/** Loads a config file (.ts through a type-stripping transform, or .js/.mjs/.json) and returns its default export. */
export async function loadConfigFile(path: string): Promise<Record<string, unknown>> {
  let source: string;
  try {
    source = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('STRATA_CONFIG', path, `cannot read the file (${(err as Error).message})`);
  }
  let exported: unknown;
  try {
    if (path.endsWith('.json')) {
      exported = JSON.parse(source);
    } else {
      const js = path.endsWith('.ts') || path.endsWith('.mts') ? transform(source, { transforms: ['typescript'], filePath: path }).code : source;
      const mod = (await import(`data:text/javascript;base64,${Buffer.from(js).toString('base64')}`)) as { default?: unknown };
      exported = mod.default;
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError('STRATA_CONFIG', path, `cannot load the file (${(err as Error).message})`);
  }
  if (typeof exported !== 'object' || exported === null || Array.isArray(exported)) {
    throw new ConfigError('STRATA_CONFIG', path, 'must export default an object of options');
  }
  return exported as Record<string, unknown>;
}

/**
 * Builds the frozen config: CLI flags > STRATA_* env > config file > defaults,
 * each value checked once. Throws ConfigError naming the option and value.
 */
export async function loadConfig(sources: ConfigSources): Promise<StrataConfig> {
  const flags = parseFlags(sources.argv);
  const named = sources.env.STRATA_CONFIG;
  let file: Record<string, unknown> = {};
  if (named !== undefined && named !== '') {
    file = await loadConfigFile(resolve(sources.cwd, named));
  } else {
    const implicit = resolve(sources.cwd, DEFAULT_CONFIG_FILE);
    if (existsSync(implicit)) file = await loadConfigFile(implicit);
  }
  return resolveConfig(flags, sources.env, file);
}

/** The synchronous part of loadConfig, once the file is read. */
export function resolveConfig(
  flags: ReadonlyMap<string, string>,
  env: Readonly<Record<string, string | undefined>>,
  file: Readonly<Record<string, unknown>>,
): StrataConfig {
  const known = new Set<string>(OPTIONS.map((o) => o.key));
  for (const key of Object.keys(file)) {
    // Not the value: a mistyped option name may hold a secret.
    if (!known.has(key)) throw new ConfigError(key, '(not shown)', 'unknown option in the config file');
  }
  const out: Record<string, unknown> = {};
  for (const option of OPTIONS) {
    const flag = flags.get(option.flag);
    const fromEnv = env[option.env];
    if (flag !== undefined) out[option.key] = parseAs(option.flag, flag, option);
    else if (fromEnv !== undefined && fromEnv !== '') out[option.key] = parseAs(option.env, fromEnv, option);
    else if (file[option.key] !== undefined) out[option.key] = option.check(file[option.key]);
    else out[option.key] = option.default();
  }
  const config = out as unknown as StrataConfig;
  if (config.defaultTtl > config.maxTtl) {
    throw new ConfigError('defaultTtl', config.defaultTtl, `must not exceed maxTtl (${config.maxTtl})`);
  }
  if (config.redisUrl !== '' && config.redisCluster.length > 0) {
    throw new ConfigError(
      'redisCluster',
      config.redisCluster.map(redactPasswords).join(','),
      'set either redisUrl (REDIS_URL) or redisCluster (STRATA_REDIS_CLUSTER), not both',
    );
  }
  if (config.l2TimeoutMs * 2 > config.requestTimeoutMs) {
    throw new ConfigError(
      'l2TimeoutMs',
      config.l2TimeoutMs,
      `must be at most half of requestTimeoutMs (${config.requestTimeoutMs}), so an L2 failure is answered well before the shard is declared hung`,
    );
  }
  config.origins.forEach((rule, i) => {
    if (rule.timeoutMs * 2 > config.requestTimeoutMs) {
      throw new ConfigError(
        `origins[${i}].timeoutMs`,
        rule.timeoutMs,
        `rule "${rule.name}": must be at most half of requestTimeoutMs (${config.requestTimeoutMs}), so a failed load (or a take-over after it) is answered before the shard counts as hung`,
      );
    }
  });
  if (config.registry && config.redisUrl === '' && config.redisCluster.length === 0) {
    throw new ConfigError('registry', true, 'needs an L2 (REDIS_URL or STRATA_REDIS_CLUSTER): the registry lives there');
  }
  if (config.members.length > 0 && config.redisUrl === '' && config.redisCluster.length === 0) {
    // Forwarding sends reads to the owner, but without a shared L2 a write stays in the L1 of the node that took it.
    throw new ConfigError(
      'members',
      config.members.map((m) => m.id).join(','),
      'need an L2 (REDIS_URL or STRATA_REDIS_CLUSTER): the nodes share writes through it',
    );
  }
  if (config.members.length > 0) {
    const self = config.members.find((m) => m.id === config.nodeId);
    if (self === undefined && !config.registry) {
      throw new ConfigError(
        'nodeId',
        config.nodeId === '' ? '(not set)' : config.nodeId,
        `must be one of members (${config.members.map((m) => m.id).join(', ')}), or the registry on so the node can join by itself`,
      );
    }
    if (self !== undefined && config.advertiseUrl !== '' && config.advertiseUrl !== self.url) {
      throw new ConfigError('advertiseUrl', config.advertiseUrl, `differs from this node's members entry (${self.url})`);
    }
  }
  const perShard = Math.floor(config.l1MaxBytes / config.shards);
  if (perShard < config.maxValueBytes + LARGEST_ENTRY_EXTRA_BYTES) {
    throw new ConfigError(
      'l1MaxBytes',
      config.l1MaxBytes,
      `split over ${config.shards} shards leaves ${perShard} bytes each, too small for one value of maxValueBytes (${config.maxValueBytes})`,
    );
  }
  return Object.freeze(config);
}

/** Parses a flag or env value; a ConfigError names the flag or variable and the text the user typed (secrets hidden). */
function parseAs<T>(source: string, raw: string, option: OptionSpec): T {
  try {
    return option.parse(raw) as T;
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(source, option.redact === undefined ? raw : option.redact(raw), err.rule);
    throw err;
  }
}

/**
 * The README's configuration table, made from the same specs as --help
 * (test/unit/readme.test.ts checks that the README carries it verbatim).
 */
export function optionsTable(): string {
  const rows = OPTIONS.map((o) => `| ${o.key} | \`${o.flag}\` | \`${o.env}\` | ${o.defaultText === '(none)' ? 'none' : `\`${o.defaultText}\``} | ${o.doc} |`);
  return ['| option | flag | environment | default | meaning |', '| --- | --- | --- | --- | --- |', ...rows].join('\n');
}

/** `strata --help`: every option with its flag, variable and default. */
export function helpText(): string {
  const rows = OPTIONS.map((o) => `  ${`${o.flag} <v>`.padEnd(26)}${o.env.padEnd(28)}default ${o.defaultText}\n      ${o.doc}`);
  return [
    'usage: strata [options]',
    '',
    'Strata cache node. Precedence: flags > environment > config file > defaults.',
    `Config file: ./${DEFAULT_CONFIG_FILE} if present, or the file STRATA_CONFIG names (.ts, .js, .mjs, .json).`,
    '',
    'options:',
    ...rows,
    '  --help                    print this and exit',
    '',
  ].join('\n');
}

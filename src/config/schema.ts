import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { checkMembers, checkNodeId, checkPeerUrl, type MemberConfig, parseMembers } from '../cluster/members.js';
import { ConfigError } from '../errors.js';
import { parseClusterSeeds, redactPasswords } from '../l2/target.js';
import { checkOriginRules, type OriginRule, type OriginRuleInput, parseOriginRule } from '../origin/rules.js';

/** The node's configuration after defaults, file, environment and flags are merged and checked. */
export interface StrataConfig {
  /** Interface to listen on. @default "127.0.0.1" */
  readonly host: string;
  /** TCP port; 0 picks a free one. @default 8080 */
  readonly port: number;
  /** Shard worker threads, each owning one L1 partition. @default max(1, cores − 1) */
  readonly shards: number;
  /** HTTP front threads, all listening on the port (SO_REUSEPORT). @default max(1, round(0.6 × cores)) */
  readonly fronts: number;
  /** L1 budget of the whole node in bytes, split evenly across shards. @default 268435456 (256 MiB) */
  readonly l1MaxBytes: number;
  /** TTL in seconds for a PUT without `?ttl=`. @default 300 */
  readonly defaultTtl: number;
  /** Largest TTL in seconds a PUT may ask for. @default 86400 */
  readonly maxTtl: number;
  /** Largest value in bytes; larger PUTs get 413. @default 1048576 */
  readonly maxValueBytes: number;
  /** Bearer tokens that may write and call admin routes; empty = no auth. @default [] */
  readonly tokens: readonly string[];
  /** Deadline in ms for a shard to answer; past it the request gets 503 and the worker is replaced. @default 5000 */
  readonly requestTimeoutMs: number;
  /** On SIGTERM/SIGINT, how long in-flight requests may take before the node exits anyway. @default 8000 */
  readonly drainTimeoutMs: number;
  /**
   * A standalone Redis as the L2: `redis://[user:password@]host:port[/db]` or
   * `rediss://…` (TLS). Empty = no L2 unless redisCluster is set. Exclusive with redisCluster. @default ""
   */
  readonly redisUrl: string;
  /**
   * A Redis Cluster as the L2: seeds (any of its nodes), each `host:port`, or
   * each `redis://[user:password@]host:port` (`rediss://` for TLS) with the
   * same scheme and credentials. Exclusive with redisUrl. @default []
   */
  readonly redisCluster: readonly string[];
  /**
   * Deadline in ms of one L2 operation (read, write with its bus message,
   * delete). Past it the request gets 503 E_L2_UNAVAILABLE. At most half of
   * requestTimeoutMs. @default 500
   */
  readonly l2TimeoutMs: number;
  /**
   * Longest time in seconds an L1 keeps a value it has from (or wrote to) the
   * L2. Bounds how long a lost invalidation can leave another node's L1
   * stale. Ignored without an L2. @default 60
   */
  readonly l1MaxTtl: number;
  /**
   * Which values from the L2 an L1 takes in when it is full. `tinylfu`: only
   * a value asked for more often lately than the entry it would evict
   * (a frequency sketch, ~2 bytes per entry); `lru`: every value. Without an
   * L2 every write is kept regardless. @default "tinylfu"
   */
  readonly l1Admission: 'lru' | 'tinylfu';
  /**
   * Read-through origins: keys with a rule's prefix are loaded from its HTTP
   * origin on a miss (see src/origin/rules.ts for each field and its
   * default). The environment gives one rule as `<prefix>=<url>`. Each
   * rule's timeoutMs must be at most requestTimeoutMs / 2. @default []
   */
  readonly origins: readonly OriginRule[];
  /**
   * XFetch's β (docs/stampede.md): how eagerly a hot value from an origin is
   * refreshed before it expires; 0 turns early refresh off. @default 1
   */
  readonly earlyRefreshBeta: number;
  /**
   * PostgreSQL to take invalidations from (docs/postgres.md): `postgres://…`;
   * the node creates its outbox table and functions there at start. Empty =
   * none. @default ""
   */
  readonly postgresUrl: string;
  /**
   * NOTIFY channels that also wake the invalidation listener, besides
   * strata_invalidate (which strata_invalidate() notifies, and which it
   * always LISTENs on). @default []
   */
  readonly postgresChannels: readonly string[];
  /**
   * This node's id on the ring and in `x-strata-node`. Empty = `<host
   * name>-<port>`, which is stable only while both are: set it for a node
   * that is one of several. @default ""
   */
  readonly nodeId: string;
  /**
   * Where the other nodes reach this one (`http://host:port`), for owner
   * forwarding and the registry. Empty = its entry in members, else
   * `http://<host>:<port>` (the host name when listening on every interface). @default ""
   */
  readonly advertiseUrl: string;
  /** The nodes of the cluster, this one included (docs/cluster.md). Empty: only the registry's, or none. @default [] */
  readonly members: readonly MemberConfig[];
  /**
   * Whether the node heartbeats itself into the L2 and takes the other
   * members from there too, so that nodes join and leave without restarts.
   * Needs an L2. @default false
   */
  readonly registry: boolean;
  /**
   * `owner`: a GET, HEAD, PUT or DELETE for a key another node owns is
   * forwarded to it (one hop); `local`: every node serves every key itself. @default "owner"
   */
  readonly routing: 'owner' | 'local';
  /**
   * How the node logs its events (docs/logs.md): `text`, a line for a person
   * (warnings and errors on stderr); `json`, one JSON object per line, every
   * event on stdout. @default "text"
   */
  readonly logFormat: 'text' | 'json';
}

/** What a config file may set: any subset of the options (origin rules with only the fields they change). */
export type StrataFileConfig = Partial<Omit<StrataConfig, 'origins'>> & { readonly origins?: readonly OriginRuleInput[] };

/** One option: where it comes from, its default, and how a string becomes a checked value. */
export interface OptionSpec<K extends keyof StrataConfig = keyof StrataConfig> {
  readonly key: K;
  readonly env: string;
  readonly flag: string;
  readonly doc: string;
  /** Default as shown in --help and the README. */
  readonly defaultText: string;
  readonly default: () => StrataConfig[K];
  /** From a string (flag or env); throws ConfigError. */
  readonly parse: (raw: string) => StrataConfig[K];
  /** From a typed value (config file); throws ConfigError. */
  readonly check: (value: unknown) => StrataConfig[K];
  /** How a value the user gave is shown in an error: secrets never appear. @default as given */
  readonly redact?: (raw: string) => string;
}

const MiB = 1024 * 1024;

function integer(name: string, min: number, max: number): (value: unknown) => number {
  return (value) => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
      throw new ConfigError(name, value, `must be an integer in [${min}, ${max}]`);
    }
    return value;
  };
}

/** Decimal integer, optionally with a binary unit suffix (k, m, g = KiB, MiB, GiB). */
function parseInteger(name: string, raw: string, check: (v: unknown) => number, units: boolean): number {
  const match = /^\s*(\d+)\s*([kmg]i?b?)?\s*$/i.exec(raw);
  if (match === null || (match[2] !== undefined && !units)) {
    throw new ConfigError(name, raw, units ? 'must be an integer, optionally with k, m or g' : 'must be an integer');
  }
  const unit = (match[2] ?? '').charAt(0).toLowerCase();
  const scale = unit === 'k' ? 1024 : unit === 'm' ? MiB : unit === 'g' ? 1024 * MiB : 1;
  return check(Number(match[1]) * scale);
}

/** An integer option: its names, its range and default, and whether k/m/g suffixes are allowed. */
interface IntOptionSpec<K extends keyof StrataConfig> {
  readonly key: K;
  readonly env: string;
  readonly flag: string;
  readonly doc: string;
  readonly min: number;
  readonly max: number;
  readonly default: () => number;
  readonly defaultText: string;
  /** k, m, g = KiB, MiB, GiB. @default false */
  readonly units?: boolean;
}

function intOption<K extends keyof StrataConfig>(spec: IntOptionSpec<K>): OptionSpec<K> {
  const { key, min, max, units = false } = spec;
  const check = integer(key, min, max);
  return {
    key,
    env: spec.env,
    flag: spec.flag,
    doc: spec.doc,
    defaultText: spec.defaultText,
    default: spec.default as () => StrataConfig[K],
    parse: (raw) => parseInteger(key, raw, check, units) as StrataConfig[K],
    check: check as (v: unknown) => StrataConfig[K],
  };
}

// RFC 1123 host name; a dotted all-numeric name is a malformed IPv4 address, not a host name.
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

function checkHost(value: unknown): string {
  if (typeof value !== 'string' || (isIP(value) === 0 && (!HOST_NAME.test(value) || /^[\d.]+$/.test(value)))) {
    throw new ConfigError('host', value, 'must be an IPv4 or IPv6 address or a host name');
  }
  return value;
}

const TOKEN_RE = /^[A-Za-z0-9\-._~+/]+=*$/; // RFC 6750 b64token

/** Tokens as an error may show them: one `***` each, so a message tells how many but never what they are. */
export function hideTokens(raw: string): string {
  return raw
    .split(',')
    .map((t) => (t.trim() === '' ? '' : '***'))
    .join(',');
}

function checkTokens(value: unknown): readonly string[] {
  if (!Array.isArray(value)) throw new ConfigError('tokens', '***', 'must be a list of tokens');
  value.forEach((token: unknown, i) => {
    if (typeof token !== 'string' || token.length < 8 || !TOKEN_RE.test(token)) {
      // No token is ever printed, not even a bad one: it may be a good one with a typo.
      throw new ConfigError(
        'tokens',
        value.map(() => '***').join(','),
        `token ${i + 1} of ${value.length} must be at least 8 characters of the RFC 6750 token alphabet`,
      );
    }
  });
  return Object.freeze([...value] as string[]);
}

/** The URL value has, with one of `protocols` and a host; else a ConfigError that shows it without its password. */
function urlWith(option: string, value: unknown, protocols: readonly string[]): URL {
  let url: URL | null = null;
  try {
    url = typeof value === 'string' ? new URL(value) : null;
  } catch {
    url = null;
  }
  if (url === null || !protocols.includes(url.protocol) || url.hostname === '') {
    // The value may hold a password: name the rule, not the secret.
    const names = protocols.map((p) => `${p}//`).join(' or ');
    throw new ConfigError(option, typeof value === 'string' ? redactPasswords(value) : value, `must be a ${names} URL with a host`);
  }
  return url;
}

function checkRedisUrl(value: unknown): string {
  if (value === '') return '';
  const url = urlWith('redisUrl', value, ['redis:', 'rediss:']);
  if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d+$/.test(url.pathname)) {
    throw new ConfigError('redisUrl', redactPasswords(value as string), 'the path, if any, must be a database number (/0, /1, …)');
  }
  return value as string;
}

/** The non-empty, trimmed items of a comma-separated flag or variable. */
function commaList(raw: string): string[] {
  return raw
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t.length > 0);
}

function checkRedisCluster(value: unknown): readonly string[] {
  if (!Array.isArray(value) || value.some((seed) => typeof seed !== 'string')) {
    throw new ConfigError(
      'redisCluster',
      typeof value === 'string' ? redactPasswords(value) : '(not a list)',
      'must be a list of host:port or redis[s]://[user:password@]host:port',
    );
  }
  const seeds = value as string[];
  try {
    parseClusterSeeds(seeds);
  } catch (err) {
    // Seeds may carry a password: name the rule, not the secret.
    throw new ConfigError('redisCluster', seeds.map(redactPasswords).join(','), (err as Error).message);
  }
  return Object.freeze([...seeds]);
}

function checkBeta(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 100)
    throw new ConfigError('earlyRefreshBeta', value, 'must be a number in [0, 100]');
  return value;
}

function checkPostgresUrl(value: unknown): string {
  if (value === '') return '';
  urlWith('postgresUrl', value, ['postgres:', 'postgresql:']);
  return value as string;
}

function checkChannels(value: unknown): readonly string[] {
  if (!Array.isArray(value) || value.some((c) => typeof c !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(c))) {
    throw new ConfigError('postgresChannels', value, 'must be a list of channel names (letters, digits, _; at most 63)');
  }
  return Object.freeze([...value] as string[]);
}

function checkRouting(value: unknown): 'owner' | 'local' {
  if (value !== 'owner' && value !== 'local') throw new ConfigError('routing', value, 'must be "owner" or "local"');
  return value;
}

function checkLogFormat(value: unknown): 'text' | 'json' {
  if (value !== 'text' && value !== 'json') throw new ConfigError('logFormat', value, 'must be "text" or "json"');
  return value;
}

function checkOnOff(option: string): (value: unknown) => boolean {
  return (value) => {
    if (typeof value !== 'boolean') throw new ConfigError(option, value, 'must be true or false');
    return value;
  };
}

/** A switch from a flag or the environment: on/off, true/false, 1/0, yes/no. */
function parseOnOff(option: string, raw: string): boolean {
  const v = raw.trim().toLowerCase();
  if (v === 'on' || v === 'true' || v === '1' || v === 'yes') return true;
  if (v === 'off' || v === 'false' || v === '0' || v === 'no') return false;
  throw new ConfigError(option, raw, 'must be on or off');
}

function checkAdmission(value: unknown): 'lru' | 'tinylfu' {
  if (value !== 'lru' && value !== 'tinylfu') throw new ConfigError('l1Admission', value, 'must be "tinylfu" or "lru"');
  return value;
}

/** Default shard count on a host with `cores` cores: one thread per core but one. */
export function defaultShardsFor(cores: number): number {
  return Math.max(1, cores - 1);
}

/** Default shard count on this host. */
export function defaultShards(): number {
  return defaultShardsFor(availableParallelism());
}

/**
 * Default front count on a host with `cores` cores: 60 % of them. A front
 * answers L1 hits by itself (the hot-read index), so a GET hit costs a front
 * ~10 µs and a shard nothing; an L2 hit costs front and shard about 1 : 1.5,
 * a PUT 1 : 2.4 (native-bench/README.md, "Many cores"). A cache's load is
 * mostly hits: at 80 % L1 hits, 15 % L2 hits and 5 % PUTs the fronts do
 * about 62 % of the work, so 60 % of the cores as fronts; with the shards'
 * default (cores − 1) the threads oversubscribe the cores on purpose, since
 * the ones without work sleep. On 2 cores: 1 front.
 */
export function defaultFrontsFor(cores: number): number {
  return Math.max(1, Math.round(cores * 0.6));
}

/** Default front count on this host. */
export function defaultFronts(): number {
  return defaultFrontsFor(availableParallelism());
}

/** A URL option that may hold a password: empty by default, never printed with it. */
function urlOption<K extends 'redisUrl' | 'postgresUrl'>(key: K, env: string, flag: string, doc: string, check: (value: unknown) => string): OptionSpec<K> {
  return {
    key,
    env,
    flag,
    doc,
    defaultText: '(none)',
    default: () => '' as StrataConfig[K],
    parse: (raw) => check(raw.trim()) as StrataConfig[K],
    check: check as (value: unknown) => StrataConfig[K],
    redact: redactPasswords,
  };
}

/** Every option, in --help order. */
export const OPTIONS: readonly OptionSpec[] = [
  {
    key: 'host',
    env: 'STRATA_HOST',
    flag: '--host',
    doc: 'interface to listen on',
    defaultText: '127.0.0.1',
    default: () => '127.0.0.1',
    parse: checkHost,
    check: checkHost,
  },
  intOption({
    key: 'port',
    env: 'STRATA_PORT',
    flag: '--port',
    doc: 'TCP port, 0–65535 (0 = any free port)',
    min: 0,
    max: 65535,
    default: () => 8080,
    defaultText: '8080',
  }),
  intOption({
    key: 'shards',
    env: 'STRATA_SHARDS',
    flag: '--shards',
    doc: 'shard worker threads, 1–256',
    min: 1,
    max: 256,
    default: defaultShards,
    defaultText: 'max(1, cores − 1)',
  }),
  intOption({
    key: 'fronts',
    env: 'STRATA_FRONTS',
    flag: '--fronts',
    doc: 'HTTP front threads on the one port (SO_REUSEPORT), 1–64',
    min: 1,
    max: 64,
    default: defaultFronts,
    defaultText: 'max(1, round(0.6 × cores))',
  }),
  intOption({
    key: 'l1MaxBytes',
    env: 'STRATA_L1_MAX_BYTES',
    flag: '--l1-max-bytes',
    doc: 'L1 budget of the node (k/m/g suffixes), split evenly across shards; RSS stays within the bound in docs/memory.md',
    min: MiB,
    max: 2 ** 45,
    default: () => 256 * MiB,
    defaultText: '256m',
    units: true,
  }),
  intOption({
    key: 'defaultTtl',
    env: 'STRATA_DEFAULT_TTL',
    flag: '--default-ttl',
    doc: 'TTL in seconds when a PUT gives none',
    min: 1,
    max: 2 ** 31,
    default: () => 300,
    defaultText: '300',
  }),
  intOption({
    key: 'maxTtl',
    env: 'STRATA_MAX_TTL',
    flag: '--max-ttl',
    doc: 'largest TTL in seconds a PUT may ask for',
    min: 1,
    max: 2 ** 31,
    default: () => 86400,
    defaultText: '86400',
  }),
  intOption({
    key: 'maxValueBytes',
    env: 'STRATA_MAX_VALUE_BYTES',
    flag: '--max-value-bytes',
    doc: 'largest value (k/m/g suffixes, at most 512m); larger PUTs get 413 without being buffered',
    min: 1,
    max: 512 * MiB,
    default: () => MiB,
    defaultText: '1m',
    units: true,
  }),
  {
    key: 'tokens',
    env: 'STRATA_TOKENS',
    flag: '--tokens',
    doc: 'comma-separated bearer tokens (≥ 8 characters each) guarding writes and admin routes; never printed',
    defaultText: '(none)',
    default: () => Object.freeze([]) as readonly string[],
    parse: (raw) => {
      const tokens = commaList(raw);
      // Set but empty would silently turn auth off: refuse it.
      if (tokens.length === 0) throw new ConfigError('tokens', hideTokens(raw), 'lists no token; unset it to run without auth');
      return checkTokens(tokens);
    },
    check: checkTokens,
    redact: hideTokens,
  },
  intOption({
    key: 'requestTimeoutMs',
    env: 'STRATA_REQUEST_TIMEOUT_MS',
    flag: '--request-timeout-ms',
    doc: 'deadline for a shard to answer, 10–600000 ms; past it 503 E_SHARD_TIMEOUT and the worker is replaced',
    min: 10,
    max: 600_000,
    default: () => 5000,
    defaultText: '5000',
  }),
  intOption({
    key: 'drainTimeoutMs',
    env: 'STRATA_DRAIN_TIMEOUT_MS',
    flag: '--drain-timeout-ms',
    doc: 'on SIGTERM or SIGINT, how long in-flight requests may take, 0–9000 ms (so exit stays within 10 s)',
    min: 0,
    max: 9000,
    default: () => 8000,
    defaultText: '8000',
  }),
  urlOption('redisUrl', 'REDIS_URL', '--redis-url', 'standalone Redis as L2: redis://[user:password@]host:port[/db] or rediss:// (TLS)', checkRedisUrl),
  {
    key: 'redisCluster',
    env: 'STRATA_REDIS_CLUSTER',
    flag: '--redis-cluster',
    doc: 'Redis Cluster as L2: comma-separated host:port seeds, or redis[s]://[user:password@]host:port ones',
    defaultText: '(none)',
    default: () => Object.freeze([]) as readonly string[],
    parse: (raw) => {
      const seeds = commaList(raw);
      if (seeds.length === 0) throw new ConfigError('redisCluster', redactPasswords(raw), 'lists no seed; unset it to run without a cluster');
      return checkRedisCluster(seeds);
    },
    check: checkRedisCluster,
    redact: redactPasswords,
  },
  intOption({
    key: 'l2TimeoutMs',
    env: 'STRATA_L2_TIMEOUT_MS',
    flag: '--l2-timeout-ms',
    doc: 'deadline of one L2 operation, ms, at most requestTimeoutMs / 2; past it 503 E_L2_UNAVAILABLE',
    min: 1,
    max: 60_000,
    default: () => 500,
    defaultText: '500',
  }),
  {
    key: 'l1Admission',
    env: 'STRATA_L1_ADMISSION',
    flag: '--l1-admission',
    doc: 'which L2 values a full L1 takes in: tinylfu (asked for more than the entry it evicts) or lru (all)',
    defaultText: 'tinylfu',
    default: () => 'tinylfu' as const,
    parse: (raw) => checkAdmission(raw.trim()),
    check: checkAdmission,
  },
  {
    key: 'origins',
    env: 'STRATA_ORIGIN',
    flag: '--origin',
    doc: 'a read-through origin: <prefix>=<url template>, e.g. user:=http://127.0.0.1:3000/users/{id} (more rules, and their options, in the config file)',
    defaultText: '(none)',
    default: () => Object.freeze([]) as readonly OriginRule[],
    parse: (raw) => parseOriginRule(raw.trim()),
    check: checkOriginRules,
  },
  {
    key: 'earlyRefreshBeta',
    env: 'STRATA_EARLY_REFRESH_BETA',
    flag: '--early-refresh-beta',
    doc: 'XFetch β: how early a hot origin value is refreshed before it expires, 0–100 (0 = never early)',
    defaultText: '1',
    default: () => 1,
    parse: (raw) => {
      const n = /^\s*\d+(\.\d+)?\s*$/.test(raw) ? Number(raw) : Number.NaN;
      return checkBeta(n);
    },
    check: checkBeta,
  },
  urlOption(
    'postgresUrl',
    'STRATA_POSTGRES_URL',
    '--postgres-url',
    'PostgreSQL to take invalidations from (an outbox the node creates; docs/postgres.md): postgres://[user:password@]host:port/db',
    checkPostgresUrl,
  ),
  {
    key: 'postgresChannels',
    env: 'STRATA_POSTGRES_CHANNELS',
    flag: '--postgres-channels',
    doc: 'comma-separated NOTIFY channels that also wake the invalidation listener, besides strata_invalidate (which it always LISTENs on)',
    defaultText: '(none)',
    default: () => Object.freeze([]) as readonly string[],
    parse: (raw) => checkChannels(commaList(raw)),
    check: checkChannels,
  },
  {
    key: 'nodeId',
    env: 'STRATA_NODE_ID',
    flag: '--node-id',
    doc: "this node's id on the ring and in x-strata-node: 1–64 of A–Z a–z 0–9 . _ - (empty = <host name>-<port>)",
    defaultText: '(none)',
    default: () => '',
    parse: (raw) => checkNodeId('nodeId', raw.trim()),
    check: (value) => checkNodeId('nodeId', value),
  },
  {
    key: 'advertiseUrl',
    env: 'STRATA_ADVERTISE_URL',
    flag: '--advertise-url',
    doc: 'where the other nodes reach this one, http://host:port (empty = its members entry, else its host and port)',
    defaultText: '(none)',
    default: () => '',
    parse: (raw) => checkPeerUrl('advertiseUrl', raw.trim()),
    check: (value) => checkPeerUrl('advertiseUrl', value),
  },
  {
    key: 'members',
    env: 'STRATA_MEMBERS',
    flag: '--members',
    doc: "the cluster's nodes, this one included: comma-separated id=http://host:port (weights in the config file)",
    defaultText: '(none)',
    default: () => Object.freeze([]) as readonly MemberConfig[],
    parse: parseMembers,
    check: checkMembers,
  },
  {
    key: 'registry',
    env: 'STRATA_REGISTRY',
    flag: '--registry',
    doc: 'on: heartbeat this node into the L2 and take members from there too (join and leave without restarts); needs an L2',
    defaultText: 'off',
    default: () => false,
    parse: (raw) => parseOnOff('registry', raw),
    check: checkOnOff('registry'),
  },
  {
    key: 'routing',
    env: 'STRATA_ROUTING',
    flag: '--routing',
    doc: 'owner: forward a key request (GET, HEAD, PUT, DELETE) to the node that owns the key (one hop); local: serve every key here',
    defaultText: 'owner',
    default: () => 'owner' as const,
    parse: (raw) => checkRouting(raw.trim()),
    check: checkRouting,
  },
  intOption({
    key: 'l1MaxTtl',
    env: 'STRATA_L1_MAX_TTL',
    flag: '--l1-max-ttl',
    doc: 'seconds an L1 keeps a value it has from the L2: bounds staleness if a bus message is lost',
    min: 1,
    max: 2 ** 31,
    default: () => 60,
    defaultText: '60',
  }),
  {
    key: 'logFormat',
    env: 'STRATA_LOG_FORMAT',
    flag: '--log-format',
    doc: 'text: one line per event for a person (warnings and errors on stderr); json: one JSON object per line, all on stdout (docs/logs.md)',
    defaultText: 'text',
    default: () => 'text' as const,
    parse: (raw) => checkLogFormat(raw.trim()),
    check: checkLogFormat,
  },
];

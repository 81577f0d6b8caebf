/**
 * The node's log: one line per event that matters, written by the main
 * thread only (fronts and shard workers report to it), in one of two formats
 * (docs/logs.md):
 *
 * - `text`: the line a person reads (`strata: front 1 exited …`); info on
 *   stdout, warnings and errors on stderr.
 *   Routine start-up events (`node.start`, `node.config`, `bus.subscribed`)
 *   are JSON-only: in text the `strata listening …` line says it all.
 * - `json`: one JSON object per line, every event (errors too) on stdout, so
 *   a log shipper reads one stream: `{"time","level","event","msg",…fields}`.
 *
 * The invariant: no event carries a cache key, a value, a request body, a
 * token or a password. Fields are typed per event (LogEvents) and built from
 * counts, ids and addresses stripped of credentials; an arbitrary error is
 * logged by its class, code and top stack frame (errorFields), never by its
 * message, which may quote the data it failed on.
 */
import type { StrataConfig } from './config/schema.js';

/** How lines are written: for a person, or for a machine. */
export type LogFormat = StrataConfig['logFormat'];
export type LogLevel = 'info' | 'warn' | 'error';
/** A circuit breaker's state as the logs name it (the SHARD_SLOT.L2_BREAKER gauge: 0, 1, 2). */
export type BreakerName = 'closed' | 'half_open' | 'open';
/** Why a shard lost its worker: it threw (or was terminated), it ended, or it sat on a batch past requestTimeoutMs. */
export type ShardLoss = 'crash' | 'exit' | 'timeout';

/** What a log may say of an error: its class, its code, the frame it was thrown at; never its message. */
export interface ErrorFields {
  readonly error: string;
  readonly code?: string;
  readonly at?: string;
}

/** What a config summary says: sizes, modes, addresses without credentials, counts of secrets. */
export interface ConfigSummary {
  readonly host: string;
  readonly port: number;
  readonly fronts: number;
  readonly shards: number;
  readonly l1MaxBytes: number;
  readonly maxValueBytes: number;
  readonly defaultTtl: number;
  readonly maxTtl: number;
  readonly requestTimeoutMs: number;
  readonly drainTimeoutMs: number;
  readonly l2: 'none' | 'standalone' | 'cluster';
  /** The Redis URL or the Cluster's seeds, each without user, password or query. */
  readonly l2Addresses: readonly string[];
  readonly l2Tls: boolean;
  /** Whether the L2's address carries credentials (never which). */
  readonly l2Credentials: boolean;
  readonly l2TimeoutMs: number;
  readonly l1MaxTtl: number;
  readonly l1Admission: StrataConfig['l1Admission'];
  /** How many bearer tokens guard writes (0: no auth). */
  readonly tokens: number;
  readonly origins: readonly { readonly name: string; readonly prefix: string }[];
  /** PostgreSQL's URL without user, password or query; null without it. */
  readonly postgres: string | null;
  readonly postgresChannels: readonly string[];
  readonly members: number;
  readonly registry: boolean;
  readonly routing: StrataConfig['routing'];
  readonly logFormat: LogFormat;
}

/** The L2's health as l2.up and l2.down report it. */
export interface L2Health {
  readonly shards: number;
  readonly shardsReady: number;
  readonly breakersOpen: number;
  readonly busSubscribed: boolean;
}

type NoFields = Record<string, never>;

/** Every event and its fields (docs/logs.md lists each with when it is emitted). */
export interface LogEvents {
  'node.start': { readonly version: string; readonly nodeId: string; readonly pid: number; readonly nodeVersion: string };
  'node.config': ConfigSummary;
  'node.listening': {
    readonly url: string;
    readonly nodeId: string;
    readonly fronts: number;
    readonly shards: number;
    readonly l2: 'none' | 'up' | 'down';
  };
  'node.draining': { readonly signal: string; readonly drainTimeoutMs: number };
  'node.stopped': NoFields;
  'node.drain_timeout': { readonly waitedMs: number };
  'node.stop_failed': ErrorFields;
  'node.start_failed': { readonly code: string | null; readonly exitCode: number; readonly option?: string };
  'l2.connecting': { readonly l2: 'standalone' | 'cluster'; readonly l2Addresses: readonly string[]; readonly waitMs: number };
  'l2.up': L2Health;
  'l2.down': L2Health & { readonly reason: string; readonly atStart: boolean };
  'l2.breaker.open': { readonly shard: number; readonly was: BreakerName };
  'l2.breaker.half_open': { readonly shard: number; readonly was: BreakerName };
  'l2.breaker.closed': { readonly shard: number; readonly was: BreakerName };
  'bus.subscribed': NoFields;
  'bus.gap':
    | { readonly reason: 'resubscribed'; readonly gaps: number }
    | { readonly reason: 'skipped'; readonly gaps: number; readonly stream: string; readonly expected: number; readonly got: number };
  'shard.exit': { readonly shard: number; readonly threadId: number; readonly reason: ShardLoss } & Partial<ErrorFields>;
  'shard.replaced': { readonly shard: number; readonly threadId: number; readonly previousThreadId: number; readonly reason: ShardLoss };
  'front.error': { readonly front: number } & ErrorFields;
  'front.exit': { readonly front: number; readonly exitCode: number; readonly replaceInMs: number };
  'front.replaced': { readonly front: number; readonly exitCode: number };
  'front.replace_failed': { readonly front: number; readonly code: string | null };
  'front.hung': { readonly step: 'drain' | 'stop'; readonly waitedMs: number };
  'member.join': { readonly id: string; readonly url: string };
  'member.leave': { readonly id: string; readonly reason: 'left' | 'expired' };
  'postgres.notice': NoFields;
}

export type LogEvent = keyof LogEvents;

/** Each event's level, and whether the text format prints it. */
export const LOG_EVENTS: { readonly [E in LogEvent]: { readonly level: LogLevel; readonly text: boolean } } = {
  'node.start': { level: 'info', text: false },
  'node.config': { level: 'info', text: false },
  'node.listening': { level: 'info', text: true },
  'node.draining': { level: 'info', text: true },
  'node.stopped': { level: 'info', text: true },
  'node.drain_timeout': { level: 'error', text: true },
  'node.stop_failed': { level: 'error', text: true },
  'node.start_failed': { level: 'error', text: true },
  'l2.connecting': { level: 'info', text: true },
  'l2.up': { level: 'info', text: true },
  'l2.down': { level: 'warn', text: true },
  'l2.breaker.open': { level: 'warn', text: true },
  'l2.breaker.half_open': { level: 'info', text: true },
  'l2.breaker.closed': { level: 'info', text: true },
  'bus.subscribed': { level: 'info', text: false },
  'bus.gap': { level: 'warn', text: true },
  'shard.exit': { level: 'warn', text: true },
  'shard.replaced': { level: 'info', text: true },
  'front.error': { level: 'error', text: true },
  'front.exit': { level: 'warn', text: true },
  'front.replaced': { level: 'info', text: true },
  'front.replace_failed': { level: 'error', text: true },
  'front.hung': { level: 'warn', text: true },
  'member.join': { level: 'info', text: true },
  'member.leave': { level: 'warn', text: true },
  'postgres.notice': { level: 'warn', text: true },
};

/** Where a line goes: one of the process's two output streams. */
export type LogSink = (stream: 'stdout' | 'stderr', line: string) => void;

export interface LoggerOptions {
  /** @default "text" */
  readonly format?: LogFormat;
  /** Writes one line (with its newline). @default the process's stdout and stderr */
  readonly write?: LogSink;
  /** The clock of `time`. @default () => new Date() */
  readonly now?: () => Date;
}

/** The names a JSON line always has first; fields of the same name are dropped. */
const RESERVED = new Set(['time', 'level', 'event', 'msg']);
/** The text line's prefix, which a JSON msg leaves out (the line says who wrote it). */
const TEXT_PREFIX = /^strata: /;

/** Writes events, one line each, in the configured format. */
export class Logger {
  readonly format: LogFormat;
  readonly #write: LogSink;
  readonly #now: () => Date;

  constructor(options: LoggerOptions = {}) {
    this.format = options.format ?? 'text';
    this.#write = options.write ?? ((stream, line) => process[stream].write(line));
    this.#now = options.now ?? (() => new Date());
  }

  /** Logs one occurrence of `event`; `msg` is the text line (one sentence, `strata: …`). */
  event<E extends LogEvent>(event: E, fields: LogEvents[E], msg: string): void {
    const { level, text } = LOG_EVENTS[event];
    if (this.format === 'json') {
      const record: Record<string, unknown> = { time: this.#now().toISOString(), level, event, msg: msg.replace(TEXT_PREFIX, '') };
      for (const [name, value] of Object.entries(fields)) if (!RESERVED.has(name) && value !== undefined) record[name] = value;
      // JSON.stringify escapes newlines (and lone surrogates): one event is one line.
      this.#write('stdout', `${JSON.stringify(record)}\n`);
    } else if (text) {
      this.#write(level === 'info' ? 'stdout' : 'stderr', `${msg.replace(/\r?\n|\r/g, '\\n')}\n`);
    }
  }
}

/** A logger that writes nothing: the default of a node started in-process (tests). */
export const SILENT_LOG = new Logger({ write: () => {} });

/** An error as a log may show it (see the file comment): class, code, and the frame it was thrown at. */
export function errorFields(err: unknown): ErrorFields {
  if (!(err instanceof Error)) return { error: typeof err };
  const code = (err as { code?: unknown }).code;
  const frame = err.stack
    ?.split('\n')
    .find((line) => /^\s+at /.test(line))
    ?.trim()
    .slice(3);
  return { error: err.name, ...(typeof code === 'string' ? { code } : {}), ...(frame === undefined ? {} : { at: frame }) };
}

/** errorFields as a few words for a text line: `TypeError ERR_X at f (file.js:1:2)`. */
export function describeError(err: unknown): string {
  const { error, code, at } = errorFields(err);
  return `${error}${code === undefined ? '' : ` ${code}`}${at === undefined ? '' : ` at ${at}`}`;
}

/**
 * An address without credentials: a URL's scheme, host, port and path (its
 * user, password, query and fragment dropped: a query may carry a
 * password); a `host:port` as it is, cut after an `@` if it has one.
 */
export function addressOf(text: string): string {
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text)) return text.slice(text.lastIndexOf('@') + 1);
  try {
    const url = new URL(text);
    return `${url.protocol}//${url.host}${url.pathname === '/' ? '' : url.pathname}`;
  } catch {
    return '(not shown)';
  }
}

/** Whether an address carries credentials: a user or password, a password in its query, or anything before an `@`. */
function hasCredentials(text: string): boolean {
  if (!/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text)) return text.includes('@');
  try {
    const url = new URL(text);
    return url.username !== '' || url.password !== '' || url.searchParams.has('password');
  } catch {
    return true;
  }
}

/** The `node.config` event's fields: what the node runs with, never a secret (see ConfigSummary). */
export function configSummary(config: StrataConfig): ConfigSummary {
  const l2Sources = config.redisUrl !== '' ? [config.redisUrl] : config.redisCluster;
  return {
    host: config.host,
    port: config.port,
    fronts: config.fronts,
    shards: config.shards,
    l1MaxBytes: config.l1MaxBytes,
    maxValueBytes: config.maxValueBytes,
    defaultTtl: config.defaultTtl,
    maxTtl: config.maxTtl,
    requestTimeoutMs: config.requestTimeoutMs,
    drainTimeoutMs: config.drainTimeoutMs,
    l2: config.redisUrl !== '' ? 'standalone' : config.redisCluster.length > 0 ? 'cluster' : 'none',
    l2Addresses: l2Sources.map(addressOf),
    l2Tls: l2Sources.some((s) => s.startsWith('rediss://')),
    l2Credentials: l2Sources.some(hasCredentials),
    l2TimeoutMs: config.l2TimeoutMs,
    l1MaxTtl: config.l1MaxTtl,
    l1Admission: config.l1Admission,
    tokens: config.tokens.length,
    origins: config.origins.map((rule) => ({ name: rule.name, prefix: rule.prefix })),
    postgres: config.postgresUrl === '' ? null : addressOf(config.postgresUrl),
    postgresChannels: config.postgresChannels,
    members: config.members.length,
    registry: config.registry,
    routing: config.routing,
    logFormat: config.logFormat,
  };
}

/**
 * Every error Strata reports, by stable code. Callers match on `code`, never on
 * a message. docs/errors.md lists the same codes; test/unit/errors.test.ts keeps
 * the two in step.
 */
export const ERROR_CODES = {
  E_INVALID_KEY: {
    status: 400,
    summary:
      'the key is empty, over 512 bytes, has control characters or a lone surrogate, is badly percent-encoded or not UTF-8, or has a raw U+FFFD in the URL',
  },
  E_INVALID_TTL: { status: 400, summary: 'ttl is not an integer number of seconds in [1, maxTtl]' },
  E_INVALID_TAGS: { status: 400, summary: 'a tag is empty, over 128 bytes, has control characters or commas, or has a lone surrogate' },
  E_INVALID_CONTENT_TYPE: { status: 400, summary: 'Content-Type is not a media type (type/subtype; parameters), is over 256 characters, or not ASCII' },
  E_INVALID_HEADER: {
    status: 400,
    summary: 'Host, Authorization, Content-Type or strata-lease is repeated, or Host is not host[:port]; the connection is closed',
  },
  E_INVALID_QUERY: { status: 400, summary: 'an unknown or repeated query parameter, bad percent-encoding, or a raw U+FFFD (bytes that were not UTF-8)' },
  E_INVALID_JSON: { status: 400, summary: 'the request body is not valid JSON' },
  E_INVALID_BODY: { status: 400, summary: 'the JSON body does not have the documented shape' },
  E_TOO_MANY_KEYS: { status: 400, summary: 'more than 1000 keys (or tags) in one mget or invalidate' },
  E_BAD_FRAMING: { status: 400, summary: 'ambiguous or invalid message framing (RFC 9112 §6.3); the connection is closed' },
  E_INVALID_LEASE: {
    status: 400,
    summary: 'lease= or wait= is not a whole number of ms in range, wait= lacks lease=, or a strata-lease token is malformed or on a key with an origin',
  },
  E_UNAUTHORIZED: { status: 401, summary: 'a write or admin route was called without a valid bearer token (WWW-Authenticate: Bearer)' },
  E_KEY_NOT_FOUND: { status: 404, summary: 'the key is not cached' },
  E_ROUTE_NOT_FOUND: { status: 404, summary: 'no such route' },
  E_METHOD_NOT_ALLOWED: { status: 405, summary: 'the route exists but not for this method; see the Allow header' },
  E_VALUE_TOO_LARGE: { status: 413, summary: 'the value is larger than maxValueBytes; the connection is closed (the body is not read)' },
  E_BODY_TOO_LARGE: { status: 413, summary: 'an mget or invalidate body is larger than 1 MiB; the connection is closed' },
  E_LEASE_LOST: {
    status: 409,
    summary: 'the lease was voided (a DELETE, invalidation or plain PUT of the key since, or the lease expired and another caller took it); nothing was stored',
  },
  E_INTERNAL: { status: 500, summary: 'a bug: the node could not complete the request' },
  E_DASHBOARD_NOT_BUILT: { status: 500, summary: 'the /dashboard page is not in dist/ (`npm run build` bundles it); everything else is served' },
  E_ORIGIN_ERROR: {
    status: 502,
    summary: "the key's origin failed (5xx, an unexpected status, or unreachable) and no stale copy could be served; originStatus has its status",
  },
  E_SHARD_UNAVAILABLE: { status: 503, summary: "the key's shard worker died or is restarting; retry" },
  E_SHARD_TIMEOUT: { status: 503, summary: "the key's shard did not answer within requestTimeoutMs; the worker is replaced" },
  E_SHUTTING_DOWN: { status: 503, summary: 'the node is draining and takes no new work' },
  E_L2_UNAVAILABLE: { status: 503, summary: 'the L2 (Redis) did not answer within its deadline or is unreachable' },
  E_ORIGIN_BUSY: { status: 503, summary: "the key's origin already has maxConcurrent loads in flight on this node; Retry-After says when to retry" },
  E_ORIGIN_TIMEOUT: { status: 504, summary: "the key's origin did not answer within its timeoutMs (or a load by another node did not finish in time)" },
  E_CONFIG: { status: 0, summary: 'startup: an option has a bad value (exit code 2)' },
  E_PORT_IN_USE: { status: 0, summary: 'startup: another process (another Strata node, or any program) holds host:port (exit code 3)' },
  E_UWS_NATIVE_UNAVAILABLE: { status: 0, summary: "startup: uWebSockets.js's native binary did not load; Strata refuses the slow JS fallback" },
} as const satisfies Record<string, { status: number; summary: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * 503 codes that say "this node cannot serve now" rather than anything about
 * the key: another node may answer. The client retries on another node; a
 * node that forwarded the request serves the key itself.
 */
export const TRY_ELSEWHERE_CODES: readonly ErrorCode[] = ['E_SHUTTING_DOWN', 'E_SHARD_UNAVAILABLE'];

/** Base class: a failure with a stable `code` and its HTTP `status` (0 for startup errors). */
export class StrataError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.status = ERROR_CODES[code].status;
  }
}

/** A configuration option has a value outside its rules. */
export class ConfigError extends StrataError {
  readonly option: string;
  readonly value: unknown;
  readonly rule: string;
  constructor(option: string, value: unknown, rule: string) {
    super('E_CONFIG', `invalid ${option}=${JSON.stringify(value)}: ${rule}`);
    this.option = option;
    this.value = value;
    this.rule = rule;
  }
}

/** uWebSockets.js would run its JS fallback instead of the native server. */
export class UwsNativeUnavailableError extends StrataError {
  constructor(detail: string, cause?: unknown) {
    super('E_UWS_NATIVE_UNAVAILABLE', `uWebSockets.js native binary unavailable: ${detail}`, { cause });
  }
}

/** Another process listens on the node's host:port (exit code 3). */
export class PortInUseError extends StrataError {
  readonly host: string;
  readonly port: number;
  constructor(host: string, port: number, who: string, cause?: unknown) {
    super('E_PORT_IN_USE', `${host}:${port} is in use: ${who}; stop it or choose another --port`, { cause });
    this.host = host;
    this.port = port;
  }
}

/** Exit codes of the `strata` process. */
export const EXIT = {
  /** A clean stop (SIGTERM/SIGINT drained in time). */
  OK: 0,
  /** Startup failed (other than below), the drain took too long, or shutdown failed. */
  FAILURE: 1,
  /** A configuration option has a bad value (E_CONFIG). */
  CONFIG: 2,
  /** host:port is held by another process (E_PORT_IN_USE). */
  PORT_IN_USE: 3,
} as const;

/** What went wrong talking to the L2, for metrics (`strata_l2_errors_total{kind}`). */
export type L2ErrorKind = 'timeout' | 'connection' | 'cluster' | 'reply' | 'breaker';

/** The L2 (Redis) could not serve a command; `kind` says why, `cause` is the client's error. */
export class L2UnavailableError extends StrataError {
  readonly kind: L2ErrorKind;
  constructor(kind: L2ErrorKind, message: string, cause?: unknown) {
    super('E_L2_UNAVAILABLE', `L2 ${kind}: ${message}`, { cause });
    this.kind = kind;
  }
}

/** A request input broke a rule; `code` says which. Carries no stack-worthy state. */
export class RequestError extends StrataError {}

import { ConfigError } from '../errors.js';

/**
 * An origin rule: keys that start with `prefix` are loaded from an HTTP
 * origin on a miss (read-through), and optionally written to it first
 * (write-through). Every field has a default (ORIGIN_DEFAULTS); a config file
 * gives rules as `origins: [{ prefix, url, … }]`, the environment one rule as
 * `STRATA_ORIGIN=<prefix>=<url>`.
 */
export interface OriginRule {
  /** Names the rule in metrics (`origin` label) and errors. @default the prefix */
  readonly name: string;
  /** Keys starting with this are this origin's; the longest matching prefix wins. Not empty. */
  readonly prefix: string;
  /**
   * http(s) URL template: `{id}` is the key without the prefix, `{key}` the
   * whole key, both percent-encoded. `http://127.0.0.1:3000/users/{id}`.
   */
  readonly url: string;
  /** Seconds a loaded value is fresh when the origin's Cache-Control says nothing. @default 60 */
  readonly ttl: number;
  /** Seconds an origin 404 is remembered (answered 404 without asking again). @default 10 */
  readonly negativeTtl: number;
  /** Seconds past freshness a value is served stale while one reader refreshes it, unless Cache-Control says. @default 0 */
  readonly staleWhileRevalidate: number;
  /** Seconds past freshness a value is served when a refresh fails, unless Cache-Control says. @default 0 */
  readonly staleIfError: number;
  /** A load slower than this answers the stale copy if there is one, and goes on to update the cache; 0 = off. @default 0 */
  readonly softTimeoutMs: number;
  /** Hard deadline of one origin request; past it 504 E_ORIGIN_TIMEOUT (or the stale copy). @default 2000 */
  readonly timeoutMs: number;
  /**
   * How long a load's lock lives, ms: if the loading node dies, another takes
   * over after this. Shorter than timeoutMs, a slow load loses its lock to
   * another node, whose value then stays (the slow one's fill is refused).
   * @default timeoutMs + 250
   */
  readonly lockTtlMs: number;
  /** Origin requests in flight from this node at most; above it 503 E_ORIGIN_BUSY with Retry-After. @default 64 */
  readonly maxConcurrent: number;
  /** A PUT goes to the origin first with this method, and is cached only after its 2xx; null = cache only. @default null */
  readonly writeThrough: 'PUT' | 'POST' | 'PATCH' | null;
  /** Extra request headers for the origin (an API key, say); never printed. @default {} */
  readonly headers: Readonly<Record<string, string>>;
}

/** A rule as a config file gives it: prefix and url, and any of the other fields. */
export type OriginRuleInput = Partial<Omit<OriginRule, 'writeThrough'>> & {
  readonly prefix: string;
  readonly url: string;
  readonly writeThrough?: OriginRule['writeThrough'] | boolean;
};

export const ORIGIN_DEFAULTS: Omit<OriginRule, 'name' | 'prefix' | 'url' | 'lockTtlMs'> = Object.freeze({
  ttl: 60,
  negativeTtl: 10,
  staleWhileRevalidate: 0,
  staleIfError: 0,
  softTimeoutMs: 0,
  timeoutMs: 2000,
  maxConcurrent: 64,
  writeThrough: null,
  headers: Object.freeze({}),
});

const FIELDS = new Set(['name', 'prefix', 'url', 'lockTtlMs', ...Object.keys(ORIGIN_DEFAULTS)]);
/** How much longer than its load a lock lives by default: time to fill after a load that took all its time. */
export const LOCK_MARGIN_MS = 250;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Headers the node sets itself, or that would break the request's framing. */
const RESERVED_HEADERS = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'if-none-match',
  'if-modified-since',
]);
const METHODS = new Set(['PUT', 'POST', 'PATCH']);

/**
 * Checks a list of rules from the config file (or the one from the
 * environment). A ConfigError names the rule (`origins[1].timeoutMs`) and
 * never shows a header value.
 */
export function checkOriginRules(value: unknown): readonly OriginRule[] {
  if (!Array.isArray(value)) throw new ConfigError('origins', '(not a list)', 'must be a list of origin rules');
  const rules = value.map((raw, i) => checkRule(raw, `origins[${i}]`));
  const prefixes = new Set<string>();
  const names = new Set<string>();
  rules.forEach((rule, i) => {
    if (prefixes.has(rule.prefix)) throw new ConfigError(`origins[${i}].prefix`, rule.prefix, 'another rule has the same prefix');
    if (names.has(rule.name)) throw new ConfigError(`origins[${i}].name`, rule.name, 'another rule has the same name');
    prefixes.add(rule.prefix);
    names.add(rule.name);
  });
  return Object.freeze(rules);
}

/** `<prefix>=<url>` (STRATA_ORIGIN, --origin): one rule with the defaults. */
export function parseOriginRule(raw: string): readonly OriginRule[] {
  const eq = raw.indexOf('=');
  if (eq <= 0) throw new ConfigError('origins', raw, 'must be <prefix>=<url template>, e.g. user:=http://127.0.0.1:3000/users/{id}');
  return checkOriginRules([{ prefix: raw.slice(0, eq), url: raw.slice(eq + 1).trim() }]);
}

function checkRule(raw: unknown, at: string): OriginRule {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(at, '(not an object)', 'must be an object with prefix and url');
  const r = raw as Record<string, unknown>;
  for (const key of Object.keys(r)) if (!FIELDS.has(key)) throw new ConfigError(`${at}.${key}`, '(not shown)', 'unknown field of an origin rule');
  const prefix = r.prefix;
  if (typeof prefix !== 'string' || prefix === '' || Buffer.byteLength(prefix) > 256 || /[\u0000-\u001f\u007f]/.test(prefix)) {
    throw new ConfigError(`${at}.prefix`, prefix, 'must be a non-empty key prefix without control characters');
  }
  const url = r.url;
  if (typeof url !== 'string' || !validTemplate(url)) {
    // Credentials in the URL are refused, and never repeated.
    const shown = typeof url === 'string' ? url.replace(/\/\/[^/@]*@/, '//***@') : url;
    throw new ConfigError(
      `${at}.url`,
      shown,
      'must be an http:// or https:// URL template with a host and no credentials (use headers), using {id} (the key without the prefix) or {key}',
    );
  }
  const name = r.name ?? prefix;
  if (typeof name !== 'string' || !/^[A-Za-z0-9_:.-]{1,64}$/.test(name)) {
    throw new ConfigError(`${at}.name`, name, 'must be 1–64 characters of letters, digits and _:.- (it is a metrics label)');
  }
  const int = (field: string, min: number, max: number): number => {
    const v = r[field] ?? ORIGIN_DEFAULTS[field as keyof typeof ORIGIN_DEFAULTS];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
      throw new ConfigError(`${at}.${field}`, v, `must be an integer in [${min}, ${max}]`);
    return v;
  };
  const ttl = int('ttl', 1, 2 ** 31);
  const negativeTtl = int('negativeTtl', 0, 2 ** 31);
  const staleWhileRevalidate = int('staleWhileRevalidate', 0, 2 ** 31);
  const staleIfError = int('staleIfError', 0, 2 ** 31);
  const timeoutMs = int('timeoutMs', 1, 300_000);
  const softTimeoutMs = int('softTimeoutMs', 0, 300_000);
  if (softTimeoutMs >= timeoutMs) throw new ConfigError(`${at}.softTimeoutMs`, softTimeoutMs, `must be below timeoutMs (${timeoutMs}), or 0 for none`);
  const maxConcurrent = int('maxConcurrent', 1, 100_000);
  const lockTtlMs = r.lockTtlMs === undefined ? timeoutMs + LOCK_MARGIN_MS : int('lockTtlMs', 100, 600_000);
  const method = r.writeThrough ?? null;
  let writeThrough: OriginRule['writeThrough'] = null;
  if (method === true) writeThrough = 'PUT';
  else if (typeof method === 'string' && METHODS.has(method.toUpperCase())) writeThrough = method.toUpperCase() as OriginRule['writeThrough'];
  else if (method !== null && method !== false) throw new ConfigError(`${at}.writeThrough`, method, 'must be false, true (PUT), "PUT", "POST" or "PATCH"');
  const headers = r.headers ?? {};
  if (typeof headers !== 'object' || headers === null || Array.isArray(headers))
    throw new ConfigError(`${at}.headers`, '(not shown)', 'must be an object of header names to values');
  const checked: Record<string, string> = {};
  for (const [header, v] of Object.entries(headers as Record<string, unknown>)) {
    const lower = header.toLowerCase();
    if (!TOKEN.test(header) || RESERVED_HEADERS.has(lower))
      throw new ConfigError(`${at}.headers`, header, 'a header name must be a token, and not one the node sets itself');
    // The value may be a secret: the message names the header, never its value.
    if (typeof v !== 'string' || !/^[\t\x20-\x7e]*$/.test(v)) throw new ConfigError(`${at}.headers.${header}`, '(not shown)', 'must be printable ASCII');
    checked[lower] = v;
  }
  return Object.freeze({
    name,
    prefix,
    url,
    ttl,
    negativeTtl,
    staleWhileRevalidate,
    staleIfError,
    softTimeoutMs,
    timeoutMs,
    lockTtlMs,
    maxConcurrent,
    writeThrough,
    headers: Object.freeze(checked),
  });
}

function validTemplate(template: string): boolean {
  if (!template.includes('{id}') && !template.includes('{key}')) return false;
  try {
    const url = new URL(template.replaceAll('{id}', 'x').replaceAll('{key}', 'x'));
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' && url.username === '' && url.password === '';
  } catch {
    return false;
  }
}

/** The rule for key: the one with the longest matching prefix, or null. `rules` as checkOriginRules returned them. */
export function ruleFor(key: string, rules: readonly OriginRule[]): OriginRule | null {
  let best: OriginRule | null = null;
  for (const rule of rules) {
    if (key.startsWith(rule.prefix) && (best === null || rule.prefix.length > best.prefix.length)) best = rule;
  }
  return best;
}

/** The origin URL of key under rule. */
export function originUrl(rule: OriginRule, key: string): URL {
  const id = encodeURIComponent(key.slice(rule.prefix.length));
  return new URL(rule.url.replaceAll('{id}', id).replaceAll('{key}', encodeURIComponent(key)));
}

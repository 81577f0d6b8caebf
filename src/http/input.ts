import { createHmac, timingSafeEqual } from 'node:crypto';
import { type InputProblem, isProblem, MAX_CONTENT_TYPE_LENGTH, MAX_TAGS, tagProblem } from '../api/input.js';
import { decodeSegment, rawUrlTextProblem } from '../api/key.js';

// RFC 9110 §8.3.1: type "/" subtype *( OWS ";" OWS [ name "=" ( token / quoted-string ) ] ), in ASCII.
const TOKEN = "[!#$%&'*+\\-.^_`|~0-9A-Za-z]+";
const QUOTED = '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\t \\x20-\\x7e])*"';
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:[ \\t]*;[ \\t]*(?:${TOKEN}=(?:${TOKEN}|${QUOTED}))?)*$`);

/** What a PUT's query string may say. */
export interface PutQuery {
  readonly ttlS: number;
  /** Seconds after ttl during which the value may still be served stale (leases' waiters get it). */
  readonly swrS: number;
  readonly tags: readonly string[] | null;
}

/** What a GET's query string may say: a lease request. */
export interface GetQuery {
  /** `lease=MS`: on a miss, hand this caller the lease for MS ms; 0 = no lease. */
  readonly leaseMs: number;
  /** `wait=MS`: a caller without the lease waits this long for the fill. */
  readonly waitMs: number;
}

/** Longest lease a client may ask for, ms. */
export const MAX_LEASE_MS = 60_000;
/** How long a lease waiter waits when the request does not say (`wait=`), ms. */
export const DEFAULT_LEASE_WAIT_MS = 1000;

/** The parameters of a query string, decoded; a repeated, badly encoded or unknown parameter is a problem. */
function queryParams(query: string, allowed: readonly string[]): Map<string, string> | InputProblem {
  const params = new Map<string, string>();
  if (query === '') return params;
  const raw = rawUrlTextProblem(query);
  if (raw !== null) return { code: 'E_INVALID_QUERY', message: raw };
  for (const pair of query.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const name = eq === -1 ? pair : pair.slice(0, eq);
    if (!allowed.includes(name))
      return { code: 'E_INVALID_QUERY', message: `unknown query parameter ${JSON.stringify(name)} (allowed: ${allowed.join(', ')})` };
    if (params.has(name)) return { code: 'E_INVALID_QUERY', message: `query parameter ${name} is given twice` };
    const value = decodeSegment((eq === -1 ? '' : pair.slice(eq + 1)).replaceAll('+', ' '));
    if (value === undefined) return { code: 'E_INVALID_QUERY', message: `query parameter ${name} has bad percent-encoding` };
    params.set(name, value);
  }
  return params;
}

/** A whole number in [min, max] from a parameter, or NaN. */
function wholeNumber(value: string, min: number, max: number): number {
  const n = /^\d{1,12}$/.test(value) ? Number(value) : Number.NaN;
  return n >= min && n <= max ? n : Number.NaN;
}

/** Parses `ttl=S&swr=S&tags=a,b`; any other or repeated parameter is an error. */
export function parsePutQuery(query: string, defaultTtlS: number, maxTtlS: number): PutQuery | InputProblem {
  const params = queryParams(query, ['ttl', 'swr', 'tags']);
  if (isProblem(params)) return params;
  let ttlS = defaultTtlS;
  let swrS = 0;
  let tags: string[] | null = null;
  const ttl = params.get('ttl');
  if (ttl !== undefined) {
    ttlS = wholeNumber(ttl, 1, maxTtlS);
    if (Number.isNaN(ttlS)) return { code: 'E_INVALID_TTL', message: `ttl must be an integer number of seconds in [1, ${maxTtlS}]` };
  }
  const swr = params.get('swr');
  if (swr !== undefined) {
    swrS = wholeNumber(swr, 0, maxTtlS);
    if (Number.isNaN(swrS)) return { code: 'E_INVALID_TTL', message: `swr must be an integer number of seconds in [0, ${maxTtlS}]` };
  }
  const tagList = params.get('tags');
  if (tagList !== undefined) {
    const list = tagList.split(',');
    if (list.length > MAX_TAGS) return { code: 'E_INVALID_TAGS', message: `at most ${MAX_TAGS} tags` };
    for (const tag of list) {
      const problem = tagProblem(tag);
      if (problem !== null) return { code: 'E_INVALID_TAGS', message: problem };
    }
    tags = [...new Set(list)];
  }
  return { ttlS, swrS, tags };
}

/** Parses a GET's `lease=MS&wait=MS`; `wait` goes with `lease` and is at most maxWaitMs. */
export function parseGetQuery(query: string, maxWaitMs: number): GetQuery | InputProblem {
  const params = queryParams(query, ['lease', 'wait']);
  if (isProblem(params)) return params;
  const lease = params.get('lease');
  const wait = params.get('wait');
  if (lease === undefined) {
    if (wait !== undefined) return { code: 'E_INVALID_LEASE', message: 'wait= goes with lease=' };
    return { leaseMs: 0, waitMs: 0 };
  }
  const leaseMs = wholeNumber(lease, 1, MAX_LEASE_MS);
  if (Number.isNaN(leaseMs)) return { code: 'E_INVALID_LEASE', message: `lease must be a whole number of ms in [1, ${MAX_LEASE_MS}]` };
  const waitMs = wait === undefined ? Math.min(DEFAULT_LEASE_WAIT_MS, maxWaitMs) : wholeNumber(wait, 0, maxWaitMs);
  if (Number.isNaN(waitMs)) return { code: 'E_INVALID_LEASE', message: `wait must be a whole number of ms in [0, ${maxWaitMs}]` };
  return { leaseMs, waitMs };
}

/**
 * The stored content type: the request's, or application/octet-stream. It must
 * be a media type in ASCII (it is sent back verbatim as a header). uWS strips
 * bytes ≥ 0x80 from the ends of a header value before Strata sees it, so
 * `text/é` arrives as `text/`: the grammar refuses that (an empty subtype),
 * though not `text/plainé`, which arrives as a valid `text/plain`
 * (docs/errors.md).
 */
export function contentTypeOf(header: string): string | InputProblem {
  if (header === '') return 'application/octet-stream';
  if (header.length > MAX_CONTENT_TYPE_LENGTH || !MEDIA_TYPE.test(header)) {
    return {
      code: 'E_INVALID_CONTENT_TYPE',
      message: `Content-Type must be a media type (type/subtype, then ;name=value parameters) of at most ${MAX_CONTENT_TYPE_LENGTH} ASCII characters`,
    };
  }
  return header;
}

/** Checks `Authorization: Bearer <token>` against the configured tokens in constant time per token. */
export class TokenGuard {
  readonly #tokens: Buffer[];
  /** Each token's dashboard session value (sessionValue), in the same order. */
  readonly #sessions: Buffer[];
  constructor(tokens: readonly string[]) {
    this.#tokens = tokens.map((t) => Buffer.from(t));
    this.#sessions = tokens.map((t) => Buffer.from(sessionValue(t)));
  }
  get enabled(): boolean {
    return this.#tokens.length > 0;
  }
  /** True when no tokens are configured or the header carries one of them. */
  allows(authorization: string): boolean {
    if (this.#tokens.length === 0) return true;
    const match = /^Bearer +(\S+) *$/i.exec(authorization);
    return match !== null && this.allowsToken(match[1] as string);
  }
  /** True when no tokens are configured or `token` is one of them. */
  allowsToken(token: string): boolean {
    return this.#tokens.length === 0 || oneOf(this.#tokens, Buffer.from(token));
  }
  /** True when no tokens are configured or `value` is the session value of one of them (the dashboard's cookie). */
  allowsSession(value: string): boolean {
    return this.#tokens.length === 0 || oneOf(this.#sessions, Buffer.from(value));
  }
}

/** Whether `given` equals one of `known`, in constant time per candidate. */
function oneOf(known: readonly Buffer[], given: Buffer): boolean {
  let ok = false;
  for (const candidate of known) {
    if (candidate.length === given.length && timingSafeEqual(candidate, given)) ok = true;
  }
  return ok;
}

/**
 * What the dashboard's cookie carries for a token: HMAC-SHA256 of a fixed
 * label keyed by the token, base64url. Browsers send a cookie to every port
 * of its host, so the cookie must not be the token itself: this value opens
 * the dashboard and /v1/stats of the nodes that have that token, and cannot
 * be turned back into the token that writes.
 */
export function sessionValue(token: string): string {
  return createHmac('sha256', token).update('strata dashboard session v1').digest('base64url');
}

/** Parses an mget/invalidate body: a JSON object whose named arrays hold strings. */
export function parseJsonBody(body: Uint8Array): Record<string, unknown> | InputProblem {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    return { code: 'E_INVALID_JSON', message: 'the body is not UTF-8' };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { code: 'E_INVALID_JSON', message: `the body is not valid JSON (${(err as Error).message})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { code: 'E_INVALID_BODY', message: 'the body must be a JSON object' };
  }
  return value as Record<string, unknown>;
}

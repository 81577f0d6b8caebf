import { NODE_HEADER, type OwnerAnswer } from '../cluster/forward.js';
import type { FrontCounters } from '../counters/counters.js';
import type { Route } from '../counters/layout.js';
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import type { HotIndexReader } from '../l1/hot-index.js';
import type { BatchResult } from '../shards/protocol.js';
import type { HttpResponse } from './uws.js';

/** The one place that writes HTTP responses. Every request is an Exchange. */

const STATUS_LINE: Record<number, string> = {
  200: '200 OK',
  204: '204 No Content',
  303: '303 See Other',
  400: '400 Bad Request',
  401: '401 Unauthorized',
  404: '404 Not Found',
  405: '405 Method Not Allowed',
  409: '409 Conflict',
  413: '413 Content Too Large',
  500: '500 Internal Server Error',
  502: '502 Bad Gateway',
  503: '503 Service Unavailable',
  504: '504 Gateway Timeout',
};

/** A response header as name and value. */
export type Header = readonly [string, string];

const JSON_TYPE = 'application/json';
/** This node's id, which every answer carries as `x-strata-node` (set once per thread by setNodeId). */
let nodeId: Uint8Array = Buffer.from('');

/** Names the node in every answer this thread writes from now on. */
export function setNodeId(id: string): void {
  nodeId = Buffer.from(id, 'latin1');
}
// performance.timeOrigin is a getter that calls into Node each time.
const TIME_ORIGIN = performance.timeOrigin;
// Small ages as bytes: uWS takes them without converting a JS string each time.
const AGES = Array.from({ length: 3600 }, (_, i) => Buffer.from(String(i)));

/** The `age` header value (RFC 9111 §5.1: whole seconds since stored). */
function ageOf(nowMs: number, createdMs: number): Uint8Array | string {
  const ageS = Math.max(0, Math.floor((nowMs - createdMs) / 1000));
  return ageS < AGES.length ? (AGES[ageS] as Uint8Array) : String(ageS);
}
const NOT_FOUND_BODY = errorBody('E_KEY_NOT_FOUND', 'the key is not cached');

/**
 * Ends a HEAD response: the Content-Length of the body a GET would carry, and
 * no body. Written as a header because this uWS build's endWithoutBody(length)
 * counts as no response inside a handler and breaks the next pipelined
 * request on the connection (and endWithoutBody(undefined, …) reports 2^63).
 */
function endHead(res: HttpResponse, length: number, close: boolean): void {
  // This build does not close the connection after endWithoutBody(n, true) inside a handler; end('', true)
  // does, at the cost of `Content-Length: 0` on an error answer whose connection closes anyway.
  if (close) res.end('', true);
  else res.writeHeader('content-length', String(length)).endWithoutBody();
}

/** A JSON error body in the documented shape; `extra` adds fields beside code and message (originStatus). */
export function errorBody(code: ErrorCode, message: string, extra?: Readonly<Record<string, number | string>>): string {
  return JSON.stringify({ error: { code, message, ...extra } });
}

/**
 * One request/response. Tracks abort (a client that went away must never be
 * written to) and counts the answer exactly once.
 */
export class Exchange {
  aborted = false;
  done = false;
  /** A HEAD request: every answer carries headers and Content-Length but no body (RFC 9110 §9.3.2). */
  head = false;
  /** performance.now() when the handler began. */
  readonly startMs: number;

  constructor(
    readonly res: HttpResponse,
    readonly route: Route,
    readonly counters: FrontCounters,
  ) {
    this.startMs = performance.now();
    counters.begin();
    res.onAborted(() => {
      this.aborted = true;
      if (!this.done) {
        this.done = true;
        counters.end();
      }
    });
  }

  /** Marks the exchange answered; false when it was already answered or aborted. */
  #finish(status: number): boolean {
    if (this.done) return false;
    this.done = true;
    this.counters.end();
    this.counters.countRequest(this.route, status, (performance.now() - this.startMs) * 1e6);
    return !this.aborted;
  }

  /**
   * JSON error with its status. `close` ends the connection (unread body, bad
   * framing); `header` adds one header (Allow on 405, WWW-Authenticate on 401).
   */
  error(code: ErrorCode, message: string, close = false, header?: Header): void {
    this.errorWith(code, message, { close, headers: header === undefined ? [] : [header] });
  }

  /** JSON error with headers (Retry-After, strata-lease, x-cache) and fields beside code and message. */
  errorWith(
    code: ErrorCode,
    message: string,
    options: { close?: boolean; headers?: readonly Header[]; extra?: Readonly<Record<string, number | string>> },
  ): void {
    const status = ERROR_CODES[code].status;
    if (!this.#finish(status)) return;
    const res = this.res;
    const body = errorBody(code, message, options.extra);
    const close = options.close ?? false;
    res.cork(() => {
      res
        .writeStatus(STATUS_LINE[status] as string)
        .writeHeader('content-type', JSON_TYPE)
        .writeHeader(NODE_HEADER, nodeId);
      for (const [name, value] of options.headers ?? []) res.writeHeader(name, value);
      if (this.head) endHead(res, Buffer.byteLength(body), close);
      else res.end(body, close);
    });
  }

  /** 404 for a cache miss (HEAD: no body). */
  miss(head: boolean): void {
    if (!this.#finish(404)) return;
    corked = this;
    corkedHead = head;
    this.res.cork(writeMiss);
  }

  /** 200 with a JSON body. */
  json(body: string, status = 200): void {
    this.send(status, JSON_TYPE, body);
  }

  /** A whole body with its type, and `headers` besides (the dashboard's security headers, a redirect's Location). */
  send(status: number, contentType: string, body: string, headers: readonly Header[] = []): void {
    if (!this.#finish(status)) return;
    const res = this.res;
    res.cork(() => {
      res
        .writeStatus(STATUS_LINE[status] as string)
        .writeHeader('content-type', contentType)
        .writeHeader('cache-control', 'no-store')
        .writeHeader(NODE_HEADER, nodeId);
      for (const [name, value] of headers) res.writeHeader(name, value);
      if (this.head) endHead(res, Buffer.byteLength(body), false);
      else res.end(body);
    });
  }

  /** 204. */
  noContent(): void {
    if (!this.#finish(204)) return;
    corked = this;
    this.res.cork(writeNoContent);
  }

  /** The answer of the key's owner node, as it gave it (its own x-strata-node included). */
  relay(answer: OwnerAnswer): void {
    if (!this.#finish(answer.status)) return;
    const res = this.res;
    res.cork(() => {
      res.writeStatus(STATUS_LINE[answer.status] ?? String(answer.status));
      for (const [name, value] of answer.headers) res.writeHeader(name, value);
      if (answer.status === 204) res.endWithoutBody();
      else if (this.head) endHead(res, answer.contentLength, false);
      else res.end(answer.body);
    });
  }

  /** 200 with the value of op `index` in a shard's batch result (and its lease, if it carries one). */
  hit(result: BatchResult, index: number, head: boolean): void {
    if (!this.#finish(200)) return;
    corked = this;
    corkedResult = result;
    corkedIndex = index;
    corkedHead = head;
    this.res.cork(writeHit);
  }
}

/**
 * Answers a GET from the shard's hot-read index (counted as the shard's L1
 * get and hit), inside the uWS handler (no
 * abort tracking or cork needed). Returns false when the index has no valid
 * copy; the caller then asks the shard. HEAD always goes to the shard: this
 * uWS build mishandles endWithoutBody(length) (see endHead).
 */
export function serveHot(res: HttpResponse, reader: HotIndexReader | null, key: string, hash: number, shard: number, front: FrontCounters): boolean {
  if (reader === null) return false;
  const startMs = performance.now();
  const nowMs = TIME_ORIGIN + startMs;
  if (!reader.lookup(key, hash, nowMs)) return false;
  front.hotHit(shard);
  const bytes = reader.bytes;
  try {
    // Straight from shared memory: uWS copies what it sends before returning, and the
    // record cannot be overwritten until done() (hot-index.ts). The published block is
    // `content-type: …\r\netag: …\r\nx-cache: L1\r\nage`, written as a header *name*
    // with the age as its value: every per-entry header in one call.
    res
      .writeHeader(NODE_HEADER, nodeId)
      .writeHeader(bytes.subarray(reader.headAt, reader.headAt + reader.headLength), ageOf(nowMs, reader.createdMs))
      .end(bytes.subarray(reader.valueAt, reader.valueAt + reader.valueLength));
  } finally {
    reader.done();
  }
  front.countRequest('get', 200, (performance.now() - startMs) * 1e6);
  return true;
}

// Hot-path writers take their arguments from these slots so that cork() needs no closure per response.
let corked: Exchange | null = null;
let corkedResult: BatchResult | null = null;
let corkedIndex = 0;
let corkedHead = false;

function writeHit(): void {
  const res = (corked as Exchange).res;
  const result = corkedResult as BatchResult;
  const i = corkedIndex;
  // One call writes content-type, etag and x-cache: the block is CRLF-joined (protocol.ts).
  res
    .writeHeader(NODE_HEADER, nodeId)
    .writeHeader('content-type', result.head(i))
    .writeHeader('age', ageOf(Date.now(), result.createdMs(i)));
  // A lease handed out with a stale value.
  const lease = result.detail(i);
  if (lease !== '') res.writeHeader('strata-lease', lease);
  if (corkedHead) endHead(res, result.valueLength(i), false);
  else res.end(result.value(i));
  corkedResult = null;
}

function writeMiss(): void {
  const res = (corked as Exchange).res;
  res.writeStatus('404 Not Found').writeHeader('content-type', JSON_TYPE).writeHeader(NODE_HEADER, nodeId);
  if (corkedHead) endHead(res, NOT_FOUND_BODY.length, false);
  else res.end(NOT_FOUND_BODY);
}

function writeNoContent(): void {
  (corked as Exchange).res.writeStatus('204 No Content').writeHeader(NODE_HEADER, nodeId).endWithoutBody();
}

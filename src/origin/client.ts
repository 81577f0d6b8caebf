import { Pool } from 'undici';
import { MAX_CONTENT_TYPE_LENGTH } from '../api/input.js';
import type { Validators } from '../l2/envelope.js';
import { type Freshness, freshnessOf } from './cache-control.js';
import { type OriginRule, originUrl } from './rules.js';

/** What one origin request came back with. */
export type OriginAnswer =
  | {
      readonly kind: 'value';
      readonly value: Uint8Array;
      readonly contentType: string;
      readonly validators: Validators | null;
      readonly freshness: Freshness;
    }
  /** 304 to a conditional request: the cached value is still good, for this long. */
  | { readonly kind: 'not-modified'; readonly validators: Validators | null; readonly freshness: Freshness }
  /** 404 or 410: the origin has no such value. */
  | { readonly kind: 'not-found'; readonly freshness: Freshness }
  /** 5xx, an unexpected status, a value too large, or no connection; status 0 when there was no answer. */
  | { readonly kind: 'error'; readonly status: number; readonly message: string }
  | { readonly kind: 'timeout' };

/** What a write-through came back with. */
export type WriteAnswer = { readonly ok: true } | { readonly ok: false; readonly status: number; readonly message: string };

const USER_AGENT = 'strata';
/**
 * An origin's Content-Type is kept when it is type/subtype followed by any
 * printable parameters: looser on purpose than a PUT's (http/input.ts), which
 * is refused with 400; an origin cannot be refused, only not believed, and
 * anything that passes is still safe to send back as a header line.
 */
const PRINTABLE_MEDIA_TYPE = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+\/[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?:[ \t]*;[\t\x20-\x7e]*)?$/;

/**
 * HTTP to the origins, from one shard worker: a keep-alive pool (undici) per
 * origin (scheme, host and port), each request with a hard deadline. It
 * knows HTTP (status codes, validators, Cache-Control) and nothing of
 * caching: what to do with an answer is the caller's.
 */
export class OriginClient {
  readonly #pools = new Map<string, Pool>();
  readonly #maxValueBytes: number;

  constructor(maxValueBytes: number) {
    this.#maxValueBytes = maxValueBytes;
  }

  #pool(url: URL, rule: OriginRule): Pool {
    let pool = this.#pools.get(url.origin);
    if (pool === undefined) {
      pool = new Pool(url.origin, { connections: rule.maxConcurrent, keepAliveTimeout: 10_000, pipelining: 1 });
      this.#pools.set(url.origin, pool);
    }
    return pool;
  }

  /** GET key's value from its origin; conditional (If-None-Match / If-Modified-Since) when validators are given. */
  async load(rule: OriginRule, key: string, validators: Validators | null, timeoutMs: number): Promise<OriginAnswer> {
    const url = originUrl(rule, key);
    const headers: Record<string, string> = { 'user-agent': USER_AGENT, ...rule.headers };
    if (validators?.etag) headers['if-none-match'] = validators.etag;
    if (validators?.lastModified) headers['if-modified-since'] = validators.lastModified;
    return this.#withDeadline(timeoutMs, async (signal) => {
      const res = await this.#pool(url, rule).request({ path: `${url.pathname}${url.search}`, method: 'GET', headers, signal });
      const header = (name: string): string => {
        const v = res.headers[name];
        return Array.isArray(v) ? (v[0] ?? '') : (v ?? '');
      };
      const freshness = freshnessOf(header('cache-control'), header('age'), rule);
      const status = res.statusCode;
      if (status === 304) {
        await res.body.dump();
        return { kind: 'not-modified', validators: validatorsOf(header('etag'), header('last-modified')) ?? validators, freshness };
      }
      if (status === 404 || status === 410) {
        await res.body.dump();
        return { kind: 'not-found', freshness: { ...freshness, freshMs: rule.negativeTtl * 1000, swrMs: 0, sieMs: 0 } };
      }
      if (status !== 200 && status !== 203 && status !== 204) {
        await res.body.dump();
        return { kind: 'error', status, message: `the origin answered ${status}` };
      }
      const length = Number(header('content-length') || 0);
      if (length > this.#maxValueBytes) {
        await res.body.dump();
        return { kind: 'error', status, message: `the origin's value is ${length} bytes; maxValueBytes is ${this.#maxValueBytes}` };
      }
      const value = await readLimited(res.body, this.#maxValueBytes);
      if (value === null) return { kind: 'error', status, message: `the origin's value is larger than maxValueBytes (${this.#maxValueBytes})` };
      const contentType = header('content-type');
      return {
        kind: 'value',
        value,
        contentType: contentType.length <= MAX_CONTENT_TYPE_LENGTH && PRINTABLE_MEDIA_TYPE.test(contentType) ? contentType : 'application/octet-stream',
        validators: validatorsOf(header('etag'), header('last-modified')),
        freshness,
      };
    });
  }

  /** Sends a PUT's value to the origin first (write-through), with the rule's method. */
  async write(rule: OriginRule, key: string, body: Uint8Array, contentType: string, timeoutMs: number): Promise<WriteAnswer> {
    const url = originUrl(rule, key);
    const answer = await this.#withDeadline(timeoutMs, async (signal) => {
      const res = await this.#pool(url, rule).request({
        path: `${url.pathname}${url.search}`,
        method: rule.writeThrough ?? 'PUT',
        headers: { 'user-agent': USER_AGENT, ...rule.headers, 'content-type': contentType },
        body,
        signal,
      });
      await res.body.dump();
      return res.statusCode >= 200 && res.statusCode < 300
        ? ({ kind: 'written' } as const)
        : ({ kind: 'error', status: res.statusCode, message: `the origin answered ${res.statusCode}` } as const);
    });
    if (answer.kind === 'written') return { ok: true };
    if (answer.kind === 'timeout') return { ok: false, status: 0, message: `the origin did not answer within ${timeoutMs} ms` };
    return { ok: false, status: answer.status, message: answer.message };
  }

  /** Runs a request with a hard deadline: past it the request is aborted and the answer is `timeout`. */
  async #withDeadline<T>(
    timeoutMs: number,
    request: (signal: AbortSignal) => Promise<T>,
  ): Promise<T | { kind: 'timeout' } | { kind: 'error'; status: 0; message: string }> {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), Math.max(1, timeoutMs));
    try {
      return await request(controller.signal);
    } catch (err) {
      if (controller.signal.aborted) return { kind: 'timeout' };
      return { kind: 'error', status: 0, message: `the origin is unreachable (${(err as Error).message})` };
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((pool) => pool.destroy()));
    this.#pools.clear();
  }
}

function validatorsOf(etag: string, lastModified: string): Validators | null {
  // Stored as one byte of length each (envelope.ts): longer validators are not used.
  const e = etag.length <= 255 ? etag : '';
  const m = lastModified.length <= 255 ? lastModified : '';
  return e === '' && m === '' ? null : { etag: e, lastModified: m };
}

/** The whole body, or null as soon as it passes maxBytes (the rest is discarded). */
async function readLimited(body: AsyncIterable<Uint8Array> & { destroy(): void }, maxBytes: number): Promise<Uint8Array | null> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > maxBytes) {
      body.destroy();
      return null;
    }
    parts.push(chunk);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

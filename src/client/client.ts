/**
 * The typed client (docs/client.md): a cache of T per namespace over one
 * Strata node or a cluster of them. With several nodes it routes each key to
 * its owner on the same ring the nodes use (src/cluster/ring.ts, shared code,
 * not a copy), so no request needs a forward hop; when a node cannot be
 * reached it tries the next one on the ring.
 */
import { Ring } from '../cluster/ring.js';
import { TRY_ELSEWHERE_CODES } from '../errors.js';
import type { Codec } from './codecs.js';
import { errorOf, StrataError } from './errors.js';
import { type Answer, defaultTransport, type Transport, TransportError } from './transport.js';

/** A node the client may send to. */
export interface ClientNode {
  readonly id: string;
  /** `http://host:port` */
  readonly url: string;
  readonly weight?: number;
}

export interface ClientOptions {
  /** One node (or a balancer in front of several). Give this or `nodes`. */
  readonly url?: string;
  /** The cluster's nodes: each key goes to its owner. `refresh()` re-reads them from /v1/cluster. */
  readonly nodes?: readonly ClientNode[];
  /** Bearer token, for writes and admin routes when the nodes have tokens. */
  readonly token?: string;
  /** Deadline of one call, ms, retries included. @default 5000 */
  readonly timeoutMs?: number;
  /** Further attempts on another node after one that got no answer (or a 503 saying the node cannot serve now). @default 1 */
  readonly retries?: number;
}

/** Options of a namespace: its codec, and the TTL and tags its writes get unless a call says otherwise. */
export interface NamespaceOptions<T> {
  readonly codec: Codec<T>;
  /** Seconds. @default the node's defaultTtl */
  readonly ttl?: number;
  readonly tags?: readonly string[];
}

export interface SetOptions {
  readonly ttl?: number;
  readonly tags?: readonly string[];
  /** Seconds past its TTL a value may be served stale, while the one caller the server hands a lease refreshes it (getOrSet does not take that lease). */
  readonly swr?: number;
}

export interface GetOrSetOptions extends SetOptions {
  /** How long the loader may take before another caller may load instead, ms. @default 5000 */
  readonly leaseMs?: number;
  /** How long a caller waits for another's fill, ms. @default 2000 */
  readonly waitMs?: number;
}

/** Codes after which another node may answer: the one asked cannot serve right now. */
const TRY_ELSEWHERE = new Set<string>(TRY_ELSEWHERE_CODES);

/** A client of a Strata node or cluster. */
export class StrataClient {
  readonly #token: string | undefined;
  readonly #timeoutMs: number;
  readonly #retries: number;
  #nodes: readonly ClientNode[];
  #ring: Ring | null;
  /** When the members were last re-read after a node could not be reached (Date.now()). */
  #refreshedMs = 0;
  /** How requests go out, made on first use (undici on Node.js, fetch elsewhere). */
  #transport: Promise<Transport & { close?(): Promise<void> }> | null = null;

  constructor(options: ClientOptions) {
    if ((options.url === undefined) === (options.nodes === undefined || options.nodes.length === 0)) {
      throw new TypeError('createClient needs either url or a non-empty nodes list');
    }
    this.#token = options.token;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#retries = options.retries ?? 1;
    this.#nodes = options.url !== undefined ? [{ id: 'node', url: trimUrl(options.url) }] : (options.nodes ?? []).map((n) => ({ ...n, url: trimUrl(n.url) }));
    this.#ring = this.#nodes.length > 1 ? ringOf(this.#nodes) : null;
  }

  /** A typed view of the keys `<name>:…`. */
  namespace<T>(name: string, options: NamespaceOptions<T>): Namespace<T> {
    return new Namespace(this, name, options);
  }

  /** Re-reads the members from a node's /v1/cluster (their ids, URLs and weights) and routes by them from now on. */
  async refresh(): Promise<void> {
    const res = await this.request('GET', '/v1/cluster', null, {});
    if (!res.ok) throw errorOf(res);
    const view = res.json() as { members?: { id: string; url: string; weight: number }[] };
    const members = view.members ?? [];
    if (members.length === 0) throw new StrataError('E_CLIENT_PROTOCOL', res.status, '/v1/cluster listed no members');
    this.#nodes = members.map((m) => ({ id: m.id, url: trimUrl(m.url), weight: m.weight }));
    this.#ring = this.#nodes.length > 1 ? ringOf(this.#nodes) : null;
  }

  /** Re-reads the members in the background after a node could not be reached, unless that was done less than a second ago. */
  #refreshSoon(): void {
    if (this.#ring === null || Date.now() - this.#refreshedMs < 1000) return;
    this.#refreshedMs = Date.now();
    this.refresh().catch(() => {});
  }

  /** The node to try first for a key: its owner (the others follow in list order). */
  #first(nodes: readonly ClientNode[], key: string | null): number {
    const ring = this.#ring;
    if (ring === null || key === null) return 0;
    const owner = ring.owner(key);
    return Math.max(
      0,
      nodes.findIndex((n) => n.id === owner),
    );
  }

  /**
   * One HTTP call, to the key's owner first; on no answer (or a node that
   * says it cannot serve now) the next node, up to `retries` more. Never
   * retries an answer about the request itself.
   */
  async request(method: string, path: string, body: Uint8Array | string | null, headers: Record<string, string>, key: string | null = null): Promise<Answer> {
    const deadline = Date.now() + this.#timeoutMs;
    const nodes = this.#nodes;
    const first = this.#first(nodes, key);
    const all: Record<string, string> = { ...headers };
    if (this.#token !== undefined) all.authorization = `Bearer ${this.#token}`;
    this.#transport ??= defaultTransport();
    const send = await this.#transport;
    let last: StrataError | null = null;
    for (let attempt = 0; attempt <= this.#retries; attempt++) {
      const node = nodes[(first + attempt) % nodes.length] as ClientNode;
      const left = deadline - Date.now();
      if (left <= 0) break;
      try {
        const res = await send(method, `${node.url}${path}`, all, body, left);
        if (res.status === 503 && attempt < this.#retries) {
          const err = errorOf(res);
          if (TRY_ELSEWHERE.has(err.code)) {
            last = err;
            continue;
          }
        }
        return res;
      } catch (err) {
        if (!(err instanceof TransportError)) throw err;
        last = new StrataError(
          err.timedOut ? 'E_CLIENT_TIMEOUT' : 'E_CLIENT_UNREACHABLE',
          0,
          `${method} ${node.url}${path}: ${err.timedOut ? `no answer within ${this.#timeoutMs} ms` : err.message}`,
          { cause: err },
        );
        if (err.timedOut) break;
        // A node that cannot be reached may have left the cluster: re-read the members (at most once a second).
        this.#refreshSoon();
      }
    }
    throw last ?? new StrataError('E_CLIENT_TIMEOUT', 0, `${method} ${path}: no answer within ${this.#timeoutMs} ms`);
  }

  /** Closes the client's connections (Node.js); later calls open new ones. */
  async close(): Promise<void> {
    const transport = this.#transport;
    this.#transport = null;
    await (await transport)?.close?.();
  }
}

/** Creates a client: `createClient({ url })` for one node or a balancer, `createClient({ nodes })` to route by the ring. */
export function createClient(options: ClientOptions): StrataClient {
  return new StrataClient(options);
}

/** The keys `<name>:…` as values of T. */
export class Namespace<T> {
  readonly #client: StrataClient;
  readonly #prefix: string;
  readonly #options: NamespaceOptions<T>;
  /** getOrSet calls in flight in this process, by key: the others join them (in front of the server's lease). */
  readonly #loading = new Map<string, Promise<T>>();

  constructor(client: StrataClient, name: string, options: NamespaceOptions<T>) {
    if (name === '' || name.includes(':')) throw new TypeError('a namespace name is not empty and has no ":"');
    this.#client = client;
    this.#prefix = `${name}:`;
    this.#options = options;
  }

  /** The value, or undefined when the key is not cached. */
  async get(key: string): Promise<T | undefined> {
    const full = this.#prefix + key;
    const res = await this.#client.request('GET', keyPath(full), null, {}, full);
    if (res.status === 404) return undefined;
    if (!res.ok) throw errorOf(res);
    return this.#decode(full, res.bytes);
  }

  /** Stores a value (the namespace's TTL and tags unless given). */
  async set(key: string, value: T, options: SetOptions = {}): Promise<void> {
    const full = this.#prefix + key;
    await this.#put(full, this.#encode(full, value), options, null);
  }

  /** Removes a key (from the L2 and every node's L1); no error when it was absent. */
  async delete(key: string): Promise<void> {
    const full = this.#prefix + key;
    const res = await this.#client.request('DELETE', keyPath(full), null, {}, full);
    if (!res.ok) throw errorOf(res);
  }

  /** Several keys at once (the cache only): a Map of each key to its value or undefined. */
  async mget(keys: readonly string[]): Promise<Map<string, T | undefined>> {
    const out = new Map<string, T | undefined>();
    if (keys.length === 0) return out;
    const full = keys.map((k) => this.#prefix + k);
    const res = await this.#client.request('POST', '/v1/mget', JSON.stringify({ keys: full }), { 'content-type': 'application/json' }, full[0] as string);
    if (!res.ok) throw errorOf(res);
    const { values } = res.json() as { values: Record<string, string | null> };
    keys.forEach((key, i) => {
      const b64 = values[full[i] as string];
      out.set(key, b64 == null ? undefined : this.#decode(full[i] as string, fromBase64(b64)));
    });
    return out;
  }

  /** Drops keys of this namespace and every entry carrying one of the tags; how many were removed. */
  async invalidate(what: { readonly keys?: readonly string[]; readonly tags?: readonly string[] }): Promise<number> {
    const body = JSON.stringify({ keys: (what.keys ?? []).map((k) => this.#prefix + k), tags: what.tags ?? [] });
    const res = await this.#client.request('POST', '/v1/invalidate', body, { 'content-type': 'application/json' });
    if (!res.ok) throw errorOf(res);
    return (res.json() as { invalidated: number }).invalidated;
  }

  /**
   * Cache-aside with the server's leases (docs/leases.md): a hit is returned;
   * on a miss exactly one caller in the cluster gets the lease and runs
   * `loader`, and the others wait for its fill (or get a stale value). A fill
   * whose lease was voided meanwhile (a write or invalidation of the key) is
   * not stored, and its caller still gets what it loaded. Calls for the same
   * key in this process share one.
   */
  getOrSet(key: string, loader: () => Promise<T>, options: GetOrSetOptions = {}): Promise<T> {
    const full = this.#prefix + key;
    const running = this.#loading.get(full);
    if (running !== undefined) return running;
    const call = this.#getOrSet(full, loader, options).finally(() => this.#loading.delete(full));
    this.#loading.set(full, call);
    return call;
  }

  /** Memoizes an async function through getOrSet: `keyOf` names the key of its arguments. */
  wrap<A extends unknown[]>(fn: (...args: A) => Promise<T>, keyOf: (...args: A) => string, options: GetOrSetOptions = {}): (...args: A) => Promise<T> {
    return (...args: A) => this.getOrSet(keyOf(...args), () => fn(...args), options);
  }

  async #getOrSet(full: string, loader: () => Promise<T>, options: GetOrSetOptions): Promise<T> {
    const leaseMs = options.leaseMs ?? 5000;
    const waitMs = options.waitMs ?? 2000;
    for (let attempt = 0; ; attempt++) {
      const res = await this.#client.request('GET', `${keyPath(full)}?lease=${leaseMs}&wait=${waitMs}`, null, {}, full);
      if (res.ok) return this.#decode(full, res.bytes);
      const lease = res.header('strata-lease');
      if (res.status !== 404) throw errorOf(res);
      if (lease !== null) {
        let value: T;
        try {
          value = await loader();
        } catch (err) {
          // Give the lease back at once, so that a waiter loads instead of waiting for it to expire.
          await this.#client.request('DELETE', keyPath(full), null, { 'strata-lease': lease }, full).catch(() => {});
          throw err;
        }
        await this.#put(full, this.#encode(full, value), options, lease);
        return value;
      }
      // The wait for another caller's fill ended: ask again (the lease may be ours now), then load without the cache.
      if (attempt >= 2) return loader();
      const retryS = Number(res.header('retry-after') ?? 1);
      await new Promise((r) => setTimeout(r, Math.min(1000, 1000 * (Number.isFinite(retryS) ? retryS : 1))));
    }
  }

  async #put(full: string, bytes: Uint8Array, options: SetOptions, lease: string | null): Promise<void> {
    const query = new URLSearchParams();
    const ttl = options.ttl ?? this.#options.ttl;
    const tags = options.tags ?? this.#options.tags;
    if (ttl !== undefined) query.set('ttl', String(ttl));
    if (options.swr !== undefined) query.set('swr', String(options.swr));
    if (tags !== undefined && tags.length > 0) query.set('tags', tags.join(','));
    const q = query.toString();
    const headers: Record<string, string> = { 'content-type': this.#options.codec.contentType };
    if (lease !== null) headers['strata-lease'] = lease;
    const res = await this.#client.request('PUT', `${keyPath(full)}${q === '' ? '' : `?${q}`}`, bytes, headers, full);
    // A voided lease: the value was loaded before a change of the key, so it is not stored; not an error for the caller.
    if (res.status === 409 && lease !== null) return;
    if (!res.ok) throw errorOf(res);
  }

  #encode(full: string, value: T): Uint8Array {
    try {
      return this.#options.codec.encode(value);
    } catch (err) {
      throw new StrataError('E_CLIENT_CODEC', 0, `cannot encode the value of ${full}: ${(err as Error).message}`, { cause: err });
    }
  }

  #decode(full: string, bytes: Uint8Array): T {
    try {
      return this.#options.codec.decode(bytes);
    } catch (err) {
      throw new StrataError('E_CLIENT_CODEC', 0, `cannot decode the value of ${full}: ${(err as Error).message}`, { cause: err });
    }
  }
}

/** Base64 to bytes without Buffer (the client runs wherever fetch does). */
function fromBase64(b64: string): Uint8Array {
  const binary = atob(b64);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

function keyPath(key: string): string {
  return `/v1/keys/${encodeURIComponent(key)}`;
}

function trimUrl(url: string): string {
  return url.endsWith('/') ? url.slice(0, -1) : url;
}

function ringOf(nodes: readonly ClientNode[]): Ring {
  return new Ring(nodes.map((n) => ({ id: n.id, weight: n.weight ?? 1 })));
}

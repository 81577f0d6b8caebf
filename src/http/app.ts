import { invalidationOf, isProblem, MAX_BATCH_KEYS, stringList } from '../api/input.js';
import { keyFromSegment, keyProblem } from '../api/key.js';
import type { Forwarder, OwnerRequest, Peer } from '../cluster/forward.js';
import { answerWithinMs } from '../config/load.js';
import type { StrataConfig } from '../config/schema.js';
import { tokenEpoch } from '../coordination/lease-token.js';
import type { FrontCounters } from '../counters/counters.js';
import type { Route } from '../counters/layout.js';
import { loadDashboard, SESSION_COOKIE, sessionCookie, signInPage } from '../dashboard/asset.js';
import type { ErrorCode } from '../errors.js';
import { hashKey } from '../hash.js';
import { type InvalidationFailure, invalidate, l2ErrorMessage } from '../invalidation/invalidate.js';
import { ruleFor } from '../origin/rules.js';
import type { BatchResult, OpWaiter, ShardClient } from '../shards/client.js';
import { type GetArgs, LEVELS, OP, type PutArgs, STATUS } from '../shards/protocol.js';
import { shardOfHash, shardOf as shardOfKey } from '../shards/route.js';
import { readBody } from './body.js';
import { framingProblem, type HeaderScan, headerProblem, scanHeaders } from './headers.js';
import { contentTypeOf, type GetQuery, parseGetQuery, parseJsonBody, parsePutQuery, sessionValue, TokenGuard } from './input.js';
import { Exchange, serveHot } from './respond.js';
import type { HttpRequest, HttpResponse, loadNativeUws, TemplatedApp } from './uws.js';

/** Largest mget/invalidate body. */
export const MAX_JSON_BODY_BYTES = 1024 * 1024;

/** What a front asks the supervisor for: the answers that need the whole node's view. */
export type Question = 'ready' | 'metrics' | 'stats' | 'cluster';

/** A whole HTTP answer the supervisor renders for a front. */
export interface SupervisorAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
}

/** What the routes of one front need. */
export interface AppContext {
  readonly config: StrataConfig;
  /** This front's client of the shards (ports, batches, hot-read indexes). */
  readonly shards: ShardClient;
  /** This front's counters (requests by route, hot-index hits). */
  readonly counters: FrontCounters;
  /** True once shutdown began: new work is refused. */
  readonly draining: () => boolean;
  /** Answers that need the whole node (readiness, metrics, stats, cluster), from the supervisor. */
  readonly ask: (question: Question) => Promise<SupervisorAnswer>;
  /** Sends key requests to their owner node; null when the node serves every key itself (routing local). */
  readonly forwarder: Forwarder | null;
}

const KEY_METHODS = 'GET, HEAD, PUT, DELETE';
/** A GET without a lease request. */
const NO_LEASE: GetQuery = { leaseMs: 0, waitMs: 0 };
/** A GET's op arguments: null for a plain read. */
function leaseArgs(get: GetQuery): GetArgs | null {
  return get.leaseMs === 0 ? null : { kind: 'get', leaseMs: get.leaseMs, waitMs: get.waitMs, cacheOnly: false };
}
/** mget reads the cache only: it never loads from an origin (a miss is null). */
const CACHE_ONLY = { kind: 'get', leaseMs: 0, waitMs: 0, cacheOnly: true } as const;
const WWW_AUTHENTICATE = ['www-authenticate', 'Bearer realm="strata"'] as const;

/** The headers a forwarded PUT or DELETE carries: its type (a PUT), its credentials (the owner checks them too) and its lease. */
function writeHeaders(h: HeaderScan, contentType: string | null, lease: string | null): string[] {
  const out = contentType === null ? [] : ['content-type', contentType];
  if (h.authorizations > 0) out.push('authorization', h.authorization);
  if (lease !== null) out.push('strata-lease', lease);
  return out;
}
const INVALID_WRITE_LEASE = 'strata-lease must be a token this node handed out, for a key without an origin';

/** A lease wait no longer than the forwarding node has left (x-strata-deadline-ms), less a margin for the answer's way back. */
function withinDeadline(get: GetQuery, raw: string): GetQuery {
  const leftMs = Number(raw);
  if (raw === '' || !Number.isFinite(leftMs)) return get;
  return { ...get, waitMs: Math.max(0, Math.min(get.waitMs, leftMs - FORWARD_MARGIN_MS)) };
}
/** What a forwarded lease wait leaves for the owner's answer to travel back, ms. */
const FORWARD_MARGIN_MS = 50;

/** A GET/HEAD/PUT/DELETE on one key, waiting for its shard. */
class KeyExchange extends Exchange implements OpWaiter {
  onResult(result: BatchResult, i: number): void {
    switch (result.status(i)) {
      case STATUS.HIT:
        this.hit(result, i, this.head);
        return;
      case STATUS.MISS:
        this.miss(this.head);
        return;
      case STATUS.STORED:
      case STATUS.DONE:
        this.noContent();
        return;
      case STATUS.NEGATIVE:
        this.errorWith('E_KEY_NOT_FOUND', "the key's origin has no value for it (remembered for its negativeTtl)", {
          headers: [['x-cache', LEVELS[result.arg(i)] ?? 'L1']],
        });
        return;
      case STATUS.LEASED:
        this.errorWith(
          'E_KEY_NOT_FOUND',
          'the key is not cached, and this request holds its lease: load the value, then PUT it with this strata-lease header',
          {
            headers: [['strata-lease', result.detail(i)]],
          },
        );
        return;
      case STATUS.WAIT_TIMEOUT:
        this.errorWith('E_KEY_NOT_FOUND', 'the key is not cached and the fill by its lease holder did not come within wait=; retry', {
          headers: [['retry-after', String(result.arg(i))]],
        });
        return;
      case STATUS.ORIGIN_ERROR:
        this.errorWith('E_ORIGIN_ERROR', result.detail(i), { extra: { originStatus: result.arg(i) } });
        return;
      case STATUS.ORIGIN_TIMEOUT:
        this.error('E_ORIGIN_TIMEOUT', result.detail(i));
        return;
      case STATUS.ORIGIN_BUSY:
        this.errorWith('E_ORIGIN_BUSY', "the key's origin has maxConcurrent requests in flight from this node; retry", {
          headers: [['retry-after', String(result.arg(i))]],
        });
        return;
      case STATUS.LEASE_LOST:
        this.error('E_LEASE_LOST', result.detail(i));
        return;
      case STATUS.TOO_LARGE:
        this.error('E_VALUE_TOO_LARGE', 'the value does not fit in the L1 partition');
        return;
      case STATUS.L2_ERROR:
        this.error('E_L2_UNAVAILABLE', l2ErrorMessage(result, i));
        return;
      default:
        this.error('E_INTERNAL', `unexpected shard status ${result.status(i)}`);
        return;
    }
  }
  onFail(code: ErrorCode, message: string): void {
    this.error(code, message);
  }
}

/** POST /v1/mget: one op per distinct key, answered when every shard has. */
class MgetExchange extends Exchange implements OpWaiter {
  keys: string[] = [];
  values: (string | null)[] = [];
  remaining = 0;
  /** Sets the keys once the body is read; the caller then submits one op per key. */
  expect(keys: string[]): void {
    this.keys = keys;
    this.values = new Array<string | null>(keys.length).fill(null);
    this.remaining = keys.length;
  }
  onResult(result: BatchResult, index: number, slot: number): void {
    // A key the L2 could not be asked about is not known to be absent: the whole answer fails rather than say null.
    if (result.status(index) === STATUS.L2_ERROR) {
      this.error('E_L2_UNAVAILABLE', l2ErrorMessage(result, index));
      return;
    }
    if (result.status(index) === STATUS.HIT) {
      const value = result.value(index);
      this.values[slot] = Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
    }
    if (--this.remaining === 0) {
      const out: Record<string, string | null> = Object.create(null);
      for (let i = 0; i < this.keys.length; i++) out[this.keys[i] as string] = this.values[i] ?? null;
      this.json(JSON.stringify({ values: out }));
    }
  }
  onFail(code: ErrorCode, message: string): void {
    this.error(code, message);
  }
}

/** Builds the uWS app with every v1 route. */
export function createApp(uws: ReturnType<typeof loadNativeUws>, ctx: AppContext): TemplatedApp {
  const { config, shards: client } = ctx;
  const counters = ctx.counters;
  const guard = new TokenGuard(config.tokens);
  const shards = config.shards;
  const app = uws.App();

  /**
   * The header checks every request passes: repeated fields, Host, and body
   * framing. Answers (and closes: the message cannot be trusted) and returns
   * false when they fail.
   */
  const headersOk = (ex: Exchange, h: HeaderScan): boolean => {
    const problem = headerProblem(h);
    if (problem !== null) {
      ex.error('E_INVALID_HEADER', problem, true);
      return false;
    }
    if (h.contentLengths === 0 && h.codings === 0) return true;
    const framing = framingProblem(h);
    if (framing === null) return true;
    ex.error('E_BAD_FRAMING', `ambiguous message framing: ${framing}`, true);
    return false;
  };
  const authorized = (ex: Exchange, h: HeaderScan): boolean => {
    if (guard.allows(h.authorization)) return true;
    // An unread body would be taken for the next request: close.
    ex.error('E_UNAUTHORIZED', 'this route needs Authorization: Bearer <token>', h.hasBody, WWW_AUTHENTICATE);
    return false;
  };
  const methodNotAllowed = (res: HttpResponse, req: HttpRequest, allow: string): void => {
    const method = req.getMethod().toUpperCase();
    const ex = new Exchange(res, 'other', counters);
    ex.head = method === 'HEAD';
    const h = scanHeaders(req);
    if (headersOk(ex, h)) ex.error('E_METHOD_NOT_ALLOWED', `${method} is not allowed; use ${allow}`, h.hasBody, ['allow', allow]);
  };
  const refuseIfDraining = (ex: Exchange): boolean => {
    if (!ctx.draining()) return false;
    ex.error('E_SHUTTING_DOWN', 'the node is draining', true);
    return true;
  };

  const shardOf = (key: string): number => shardOfKey(key, shards);
  /** A strata-lease a write cannot carry: not one this node's tokens look like, or on a key with an origin (the node loads those itself). */
  const badWriteLease = (key: string, lease: string | null): boolean => lease !== null && (tokenEpoch(lease) === null || ruleFor(key, origins) !== null);
  const maxWaitMs = Math.floor(answerWithinMs(config.requestTimeoutMs));
  const origins = config.origins;
  const forwarder = ctx.forwarder;
  /** Whether a forward to `peer` may go now; when its breaker refuses, that is counted and the caller serves the key here. */
  const admitted = (peer: Peer): boolean => {
    if (peer.admits(Date.now())) return true;
    counters.forwardFallback('breaker');
    return false;
  };
  /**
   * Sends a key request to the node that owns the key (admitted) and relays
   * its answer; what gets none (unreachable, too slow, draining) is served
   * here by `local`, given the ms the attempt took.
   */
  const viaOwner = (peer: Peer, ex: Exchange, forward: OwnerRequest, local: (spentMs: number) => void): void => {
    (forwarder as Forwarder).forward(peer, forward, (answer) => {
      if (ex.done) return;
      if (typeof answer === 'string') {
        counters.forwardFallback(answer);
        local(performance.now() - ex.startMs);
        return;
      }
      counters.forwarded();
      ex.relay(answer);
    });
  };
  /** The path and query of the request, as the owner must see them. */
  const pathOf = (req: HttpRequest): string => {
    const query = req.getQuery() ?? '';
    return query === '' ? req.getUrl() : `${req.getUrl()}?${query}`;
  };
  const toOwner = (req: HttpRequest, peer: Peer, ex: KeyExchange, key: string, shard: number, get: GetQuery): void => {
    const op = ex.head ? OP.HEAD : OP.GET;
    viaOwner(peer, ex, { method: ex.head ? 'HEAD' : 'GET', path: pathOf(req) }, (spentMs) => {
      // Served here in what is left of the request's time: a lease wait shrinks by what the forward took.
      client.submit(shard, op, key, leaseArgs(get.waitMs === 0 ? get : { ...get, waitMs: Math.max(0, get.waitMs - spentMs) }), ex, 0);
    });
  };
  /** Whether another node forwarded this request here (served here whatever this node's ring says: one hop at most); counted. */
  const fromPeer = (h: HeaderScan): boolean => {
    if (!h.hop) return false;
    counters.servedForPeer();
    return true;
  };
  /** The node that owns `hash` when it is another one (null: this node serves it, or another node forwarded the request). */
  const ownerOf = (forwarded: boolean, hash: number): Peer | null => (forwarded || forwarder === null ? null : forwarder.ownerOf(hash));
  /** The node a read of `hash` goes to: its owner when another node's breaker admits it (null: served here, the hot-read index first). */
  const readOwner = (forwarded: boolean, hash: number): Peer | null => {
    const owner = ownerOf(forwarded, hash);
    return owner !== null && admitted(owner) ? owner : null;
  };
  const lookup = (head: boolean) => (res: HttpResponse, req: HttpRequest) => {
    const route = head ? 'head' : 'get';
    const h = scanHeaders(req);
    const query = req.getQuery() ?? '';
    const forwarded = fromPeer(h);
    let get = query === '' ? NO_LEASE : parseGetQuery(query, maxWaitMs);
    if (forwarded && !isProblem(get) && get.waitMs > 0) get = withinDeadline(get, h.deadline);
    // Fast path: a valid key whose entry the shard has published is answered here, in the handler
    // (a lease request too: a fresh hit leaves nothing to load).
    if (!head && !isProblem(get) && h.contentLengths === 0 && h.codings === 0 && headerProblem(h) === null && !ctx.draining()) {
      const key = keyFromSegment(req.getParameter(0) ?? '');
      if (typeof key === 'string' && (get.leaseMs === 0 || ruleFor(key, origins) === null)) {
        const hash = hashKey(key);
        const shard = shardOfHash(hash, shards);
        const owner = readOwner(forwarded, hash);
        if (owner !== null) return toOwner(req, owner, new KeyExchange(res, route, counters), key, shard, get);
        if (serveHot(res, client.hotReader(shard), key, hash, shard, counters)) return;
        client.submit(shard, OP.GET, key, leaseArgs(get), new KeyExchange(res, route, counters), 0);
        return;
      }
    }
    const ex = new KeyExchange(res, route, counters);
    ex.head = head;
    if (!headersOk(ex, h) || refuseIfDraining(ex)) return;
    const key = keyFromSegment(req.getParameter(0) ?? '');
    if (typeof key !== 'string') return ex.error('E_INVALID_KEY', key.message, h.hasBody);
    if (isProblem(get)) return ex.error(get.code, get.message, h.hasBody);
    if (get.leaseMs > 0 && ruleFor(key, origins) !== null) {
      return ex.error('E_INVALID_LEASE', 'this key has an origin: Strata loads it itself, so there is no lease to hand out', h.hasBody);
    }
    const hash = hashKey(key);
    const shard = shardOfHash(hash, shards);
    const owner = readOwner(forwarded, hash);
    if (owner !== null) return toOwner(req, owner, ex, key, shard, get);
    client.submit(shard, head ? OP.HEAD : OP.GET, key, leaseArgs(get), ex, 0);
  };
  app.get('/v1/keys/:key', lookup(false));
  app.head('/v1/keys/:key', lookup(true));

  app.put('/v1/keys/:key', (res, req) => {
    const ex = new KeyExchange(res, 'put', counters);
    const h = scanHeaders(req);
    if (!headersOk(ex, h) || refuseIfDraining(ex) || !authorized(ex, h)) return;
    const close = h.hasBody;
    const key = keyFromSegment(req.getParameter(0) ?? '');
    if (typeof key !== 'string') return ex.error('E_INVALID_KEY', key.message, close);
    const query = parsePutQuery(req.getQuery() ?? '', config.defaultTtl, config.maxTtl);
    if (isProblem(query)) return ex.error(query.code, query.message, close);
    const lease = h.leases === 0 ? null : h.lease;
    if (badWriteLease(key, lease)) return ex.error('E_INVALID_LEASE', INVALID_WRITE_LEASE, close);
    const contentType = contentTypeOf(h.contentType);
    if (typeof contentType !== 'string') return ex.error(contentType.code, contentType.message, close);
    const hash = hashKey(key);
    const shard = shardOfHash(hash, shards);
    // The owner writes it (the L2, the bus, then its own L1): a read through any node then sees the write at once.
    const owner = ownerOf(fromPeer(h), hash);
    // Read now: uWS clears req when the handler returns, before the body has come.
    const path = owner === null ? '' : pathOf(req);
    const headers = owner === null ? [] : writeHeaders(h, contentType, lease);
    readBody(res, h, {
      maxBytes: config.maxValueBytes,
      onBody: (value) => {
        if (ex.aborted) return;
        // Written here when the owner cannot take it; then no copy stays in this L1, where no read of the key comes.
        const put: PutArgs = {
          kind: 'put',
          value,
          contentType,
          ttlMs: query.ttlS * 1000,
          swrMs: query.swrS * 1000,
          tags: query.tags,
          lease,
          keep: owner === null,
        };
        if (owner === null || !admitted(owner)) return client.submit(shard, OP.PUT, key, put, ex, 0);
        viaOwner(owner, ex, { method: 'PUT', path, headers, body: value }, () => client.submit(shard, OP.PUT, key, put, ex, 0));
      },
      onTooLarge: (announced) =>
        ex.error(
          'E_VALUE_TOO_LARGE',
          announced === null
            ? `the value is larger than maxValueBytes (${config.maxValueBytes})`
            : `the value is ${announced} bytes; maxValueBytes is ${config.maxValueBytes}`,
          true,
        ),
      onBadFraming: (why) => ex.error('E_BAD_FRAMING', why, true),
    });
  });

  app.del('/v1/keys/:key', (res, req) => {
    const ex = new KeyExchange(res, 'delete', counters);
    const h = scanHeaders(req);
    if (!headersOk(ex, h) || refuseIfDraining(ex) || !authorized(ex, h)) return;
    const key = keyFromSegment(req.getParameter(0) ?? '');
    if (typeof key !== 'string') return ex.error('E_INVALID_KEY', key.message, h.hasBody);
    // With strata-lease: the holder gives the lease back (its load failed); the key is not deleted.
    const lease = h.leases === 0 ? null : h.lease;
    if (badWriteLease(key, lease)) return ex.error('E_INVALID_LEASE', INVALID_WRITE_LEASE, h.hasBody);
    const hash = hashKey(key);
    const shard = shardOfHash(hash, shards);
    const local = () =>
      lease === null ? client.submit(shard, OP.DELETE, key, null, ex, 0) : client.submit(shard, OP.RELEASE, key, { kind: 'release', lease }, ex, 0);
    const owner = ownerOf(fromPeer(h), hash);
    if (owner === null || !admitted(owner)) return local();
    viaOwner(owner, ex, { method: 'DELETE', path: pathOf(req), headers: writeHeaders(h, null, lease) }, local);
  });

  // Other methods on a key, and key paths that are not one segment.
  app.any('/v1/keys/:key', (res, req) => methodNotAllowed(res, req, KEY_METHODS));
  app.any('/v1/keys/*', (res, req) => {
    const method = req.getMethod();
    const ex = new Exchange(res, routeOfMethod(method), counters);
    ex.head = method === 'head';
    const h = scanHeaders(req);
    if (!headersOk(ex, h)) return;
    if (!['get', 'head', 'put', 'delete'].includes(method)) {
      return ex.error('E_METHOD_NOT_ALLOWED', `${method.toUpperCase()} is not allowed here`, h.hasBody, ['allow', KEY_METHODS]);
    }
    ex.error('E_INVALID_KEY', 'the key must be exactly one non-empty path segment (encode "/" as %2F)', h.hasBody);
  });
  app.any('/v1/keys', (res, req) => {
    const ex = new Exchange(res, 'other', counters);
    ex.head = req.getMethod() === 'head';
    const h = scanHeaders(req);
    if (!headersOk(ex, h)) return;
    ex.error('E_INVALID_KEY', 'the key is empty', h.hasBody);
  });

  /** Reads and parses a JSON body for mget/invalidate, then calls `use`. */
  const withJsonBody = (ex: Exchange, res: HttpResponse, h: HeaderScan, use: (body: Record<string, unknown>) => void): void => {
    readBody(res, h, {
      maxBytes: MAX_JSON_BODY_BYTES,
      onBody: (bytes) => {
        if (ex.aborted) return;
        const body = parseJsonBody(bytes);
        if (isProblem(body)) return ex.error(body.code, body.message);
        use(body);
      },
      onTooLarge: (announced) =>
        ex.error(
          'E_BODY_TOO_LARGE',
          announced === null ? `the body is larger than ${MAX_JSON_BODY_BYTES} bytes` : `the body is ${announced} bytes; at most ${MAX_JSON_BODY_BYTES}`,
          true,
        ),
      onBadFraming: (why) => ex.error('E_BAD_FRAMING', why, true),
    });
  };

  app.post('/v1/mget', (res, req) => {
    const ex = new MgetExchange(res, 'mget', counters);
    const h = scanHeaders(req);
    if (!headersOk(ex, h) || refuseIfDraining(ex)) return;
    withJsonBody(ex, res, h, (body) => {
      const keys = stringList(body, 'keys', MAX_BATCH_KEYS, keyProblem, 'E_INVALID_KEY');
      if (keys === undefined) return ex.error('E_INVALID_BODY', 'the body must be {"keys": [...]}');
      if (isProblem(keys)) return ex.error(keys.code, keys.message);
      const unique = [...new Set(keys)];
      if (unique.length === 0) return ex.json('{"values":{}}');
      ex.expect(unique);
      for (let i = 0; i < unique.length; i++) {
        const key = unique[i] as string;
        client.submit(shardOf(key), OP.GET, key, CACHE_ONLY, ex, i);
      }
    });
  });

  app.post('/v1/invalidate', (res, req) => {
    const ex = new Exchange(res, 'invalidate', counters);
    const h = scanHeaders(req);
    if (!headersOk(ex, h) || refuseIfDraining(ex) || !authorized(ex, h)) return;
    withJsonBody(ex, res, h, (body) => {
      const wanted = invalidationOf(body);
      if (isProblem(wanted)) return ex.error(wanted.code, wanted.message);
      invalidate(client, wanted.keys, wanted.tags).then(
        (invalidated) => ex.json(JSON.stringify({ invalidated })),
        (failure: InvalidationFailure) => ex.error(failure.code, failure.message),
      );
    });
  });
  app.any('/v1/mget', (res, req) => methodNotAllowed(res, req, 'POST'));
  app.any('/v1/invalidate', (res, req) => methodNotAllowed(res, req, 'POST'));

  /** GET and HEAD for a read-only route (RFC 9110 §9.1: HEAD wherever GET is). */
  const getAndHead = (path: string, route: Route, handle: (ex: Exchange, h: HeaderScan) => void) => {
    const serve = (res: HttpResponse, req: HttpRequest, head: boolean) => {
      const ex = new Exchange(res, route, counters);
      ex.head = head;
      const h = scanHeaders(req);
      if (headersOk(ex, h)) handle(ex, h);
    };
    app.get(path, (res, req) => serve(res, req, false));
    app.head(path, (res, req) => serve(res, req, true));
  };
  const health = (ex: Exchange) => ex.json('{"status":"ok"}');
  getAndHead('/healthz', 'health', health);
  getAndHead('/livez', 'health', health);
  /** The supervisor's answer, as it rendered it (ask never rejects: a supervisor that does not answer in time gets a 500). */
  const relay = (ex: Exchange, question: Question) => {
    void ctx.ask(question).then((answer) => ex.send(answer.status, answer.contentType, answer.body));
  };
  getAndHead('/readyz', 'health', (ex) => relay(ex, 'ready'));
  getAndHead('/metrics', 'metrics', (ex, h) => {
    if (authorized(ex, h)) relay(ex, 'metrics');
  });
  getAndHead('/v1/stats', 'stats', (ex, h) => {
    // The dashboard's page reads it with its sign-in cookie (a browser cannot add an Authorization header to fetch on its own).
    if ((h.authorizations === 0 && guard.allowsSession(sessionCookie(h.cookie))) || authorized(ex, h)) relay(ex, 'stats');
  });
  // The ring and its members as the supervisor sees them, with this front's breakers per peer.
  getAndHead('/v1/cluster', 'cluster', (ex, h) => {
    if (!authorized(ex, h)) return;
    void ctx.ask('cluster').then((answer) => {
      if (answer.status !== 200) return ex.send(answer.status, answer.contentType, answer.body);
      const view = JSON.parse(answer.body) as Record<string, unknown>;
      view.breakers = forwarder?.breakers() ?? {};
      ex.json(JSON.stringify(view));
    });
  });
  dashboardRoutes(app, guard, counters, headersOk, methodNotAllowed);
  for (const path of ['/healthz', '/livez', '/readyz', '/metrics', '/v1/stats', '/v1/cluster']) {
    app.any(path, (res, req) => methodNotAllowed(res, req, 'GET, HEAD'));
  }

  app.any('/*', (res, req) => {
    const ex = new Exchange(res, 'other', counters);
    ex.head = req.getMethod() === 'head';
    const h = scanHeaders(req);
    if (!headersOk(ex, h)) return;
    ex.error('E_ROUTE_NOT_FOUND', `no route for ${req.getMethod().toUpperCase()} ${req.getUrl()}`, h.hasBody);
  });
  return app;
}

function routeOfMethod(method: string): Route {
  return method === 'get' ? 'get' : method === 'head' ? 'head' : method === 'put' ? 'put' : method === 'delete' ? 'delete' : 'other';
}

/** Largest sign-in form body (`token=…`). */
const SIGN_IN_MAX_BYTES = 4096;
const HTML_TYPE = 'text/html; charset=utf-8';
const FORM_TYPE = 'application/x-www-form-urlencoded';

/**
 * `/dashboard`: the page bundled at build time (src/dashboard/), guarded like
 * the admin routes. A browser cannot send a bearer token by itself, so when
 * the node has tokens, a browser without one gets a sign-in form (401) that
 * posts to `/dashboard/sign-in`, which sets an HttpOnly, SameSite=Strict
 * cookie carrying the token; the page and `/v1/stats` accept that cookie.
 * Other clients get the usual JSON 401.
 */
function dashboardRoutes(
  app: TemplatedApp,
  guard: TokenGuard,
  counters: FrontCounters,
  headersOk: (ex: Exchange, h: HeaderScan) => boolean,
  methodNotAllowed: (res: HttpResponse, req: HttpRequest, allow: string) => void,
): void {
  const asset = loadDashboard();
  const pageHeaders = (csp: string) =>
    [
      ['content-security-policy', csp],
      ['x-content-type-options', 'nosniff'],
      ['referrer-policy', 'no-referrer'],
    ] as const;
  const SIGN_IN_CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
  const signedIn = (h: HeaderScan): boolean => guard.allows(h.authorization) || (h.authorizations === 0 && guard.allowsSession(sessionCookie(h.cookie)));
  const refuse = (ex: Exchange, h: HeaderScan, wantsHtml: boolean, failed: boolean): void => {
    if (wantsHtml) ex.send(401, HTML_TYPE, signInPage(failed), [...pageHeaders(SIGN_IN_CSP), ['www-authenticate', 'Bearer realm="strata"']]);
    else ex.error('E_UNAUTHORIZED', 'the dashboard needs Authorization: Bearer <token> (browsers: sign in at /dashboard)', h.hasBody, WWW_AUTHENTICATE);
  };
  const page = (res: HttpResponse, req: HttpRequest, head: boolean) => {
    const ex = new Exchange(res, 'dashboard', counters);
    ex.head = head;
    const wantsHtml = (req.getHeader('accept') ?? '').includes('text/html');
    const h = scanHeaders(req);
    if (!headersOk(ex, h)) return;
    if (!signedIn(h)) return refuse(ex, h, wantsHtml, false);
    if (asset === null) return ex.error('E_DASHBOARD_NOT_BUILT', 'dist/src/dashboard/dashboard.json is missing: run `npm run build`', h.hasBody);
    ex.send(200, HTML_TYPE, asset.html, pageHeaders(asset.csp));
  };
  app.get('/dashboard', (res, req) => page(res, req, false));
  app.head('/dashboard', (res, req) => page(res, req, true));
  app.post('/dashboard/sign-in', (res, req) => {
    const ex = new Exchange(res, 'dashboard', counters);
    const h = scanHeaders(req);
    if (!headersOk(ex, h)) return;
    if (h.contentType.split(';')[0]?.trim().toLowerCase() !== FORM_TYPE) {
      return ex.error('E_INVALID_CONTENT_TYPE', `the sign-in form is sent as ${FORM_TYPE}`, h.hasBody);
    }
    readBody(res, h, {
      maxBytes: SIGN_IN_MAX_BYTES,
      onBody: (bytes) => {
        if (ex.aborted) return;
        const token = new URLSearchParams(Buffer.from(bytes).toString('utf8')).get('token') ?? '';
        if (!guard.enabled) return ex.send(303, HTML_TYPE, '', [['location', '/dashboard']]);
        if (token === '' || !guard.allowsToken(token)) return refuse(ex, h, true, true);
        ex.send(303, HTML_TYPE, '', [
          ['location', '/dashboard'],
          ['set-cookie', `${SESSION_COOKIE}=${sessionValue(token)}; Path=/; HttpOnly; SameSite=Strict`],
        ]);
      },
      onTooLarge: () => ex.error('E_BODY_TOO_LARGE', `the sign-in form is larger than ${SIGN_IN_MAX_BYTES} bytes`, true),
      onBadFraming: (why) => ex.error('E_BAD_FRAMING', why, true),
    });
  });
  // Signing out needs no token: it only asks the browser to forget its cookie.
  app.post('/dashboard/sign-out', (res, req) => {
    const ex = new Exchange(res, 'dashboard', counters);
    const h = scanHeaders(req);
    if (!headersOk(ex, h)) return;
    ex.send(303, HTML_TYPE, '', [
      ['location', '/dashboard'],
      ['set-cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`],
    ]);
  });
  app.any('/dashboard', (res, req) => methodNotAllowed(res, req, 'GET, HEAD'));
  app.any('/dashboard/sign-in', (res, req) => methodNotAllowed(res, req, 'POST'));
  app.any('/dashboard/sign-out', (res, req) => methodNotAllowed(res, req, 'POST'));
}

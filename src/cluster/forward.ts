/**
 * Owner forwarding, in each front (docs/cluster.md): a GET, HEAD, PUT or DELETE for a key
 * another node owns goes to that node over a keep-alive pool, once. The
 * request carries `x-strata-hop` (the forwarding node's id): a node never
 * forwards a request that has it, so two nodes that disagree about the ring
 * cost one extra hop, never a loop. It also carries `x-strata-deadline-ms`,
 * the forward's deadline: the owner waits no longer than that (a lease wait).
 *
 * Each peer has a breaker: after FAILURES_TO_OPEN forwards in a row that got
 * no answer (refused, reset, past the forward deadline, or a draining
 * owner's 503) the node serves that peer's keys itself for OPEN_MS, then
 * lets one forward through to probe. Any other answer from the owner is the
 * owner's answer: it is relayed, and it closes the breaker.
 */

import { Pool } from 'undici';
import type { FallbackReason } from '../counters/layout.js';
import { TRY_ELSEWHERE_CODES } from '../errors.js';
import type { MemberConfig } from './members.js';
import { Ring } from './ring.js';

/** The request header that marks a forwarded request (its value: the forwarding node's id). */
export const HOP_HEADER = 'x-strata-hop';
/** The request header that carries the forward's deadline, ms (the owner waits no longer than that). */
export const DEADLINE_HEADER = 'x-strata-deadline-ms';
/** The response header naming the node that served a key request. */
export const NODE_HEADER = 'x-strata-node';

/** Forwards in a row without an answer that open a peer's breaker. */
export const FAILURES_TO_OPEN = 3;
/** How long an open breaker keeps a peer's keys local before one probe, ms. */
export const OPEN_MS = 1000;
/** Keep-alive connections per peer per front. */
const CONNECTIONS_PER_PEER = 16;

/** A key request as it goes to the owner. */
export interface OwnerRequest {
  readonly method: 'GET' | 'HEAD' | 'PUT' | 'DELETE';
  /** Path and query as the client sent them. */
  readonly path: string;
  /** Headers beyond the hop's own, as name, value, name, value, … */
  readonly headers?: readonly string[];
  readonly body?: Uint8Array;
}

/** The owner's answer, as relayed. */
export interface OwnerAnswer {
  readonly status: number;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Buffer;
  /** The owner's Content-Length: a HEAD answer has no body to measure. */
  readonly contentLength: number;
}

/** Response headers that describe the peer connection, not the answer: never relayed. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'transfer-encoding',
  'content-length',
  'date',
  'proxy-connection',
  'upgrade',
  'te',
  'trailer',
  // The owner's server banner: this node's uWS writes its own.
  'uwebsockets',
]);

/** A peer node as one front sees it: its pool and its breaker. */
export class Peer {
  failures = 0;
  openUntilMs = 0;
  /** While open, whether the one probe is out. */
  probing = false;
  readonly pool: Pool;

  constructor(
    readonly id: string,
    readonly url: string,
    connectTimeoutMs: number,
  ) {
    this.pool = new Pool(url, { connections: CONNECTIONS_PER_PEER, pipelining: 1, keepAliveTimeout: 30_000, connect: { timeout: connectTimeoutMs } });
  }

  /** Whether a forward may go now (closed, or open past OPEN_MS with no probe out: this call takes the probe). */
  admits(nowMs: number): boolean {
    if (this.failures < FAILURES_TO_OPEN) return true;
    if (nowMs < this.openUntilMs || this.probing) return false;
    this.probing = true;
    return true;
  }

  succeeded(): void {
    this.failures = 0;
    this.probing = false;
  }

  failed(nowMs: number): void {
    this.failures++;
    this.probing = false;
    if (this.failures >= FAILURES_TO_OPEN) this.openUntilMs = nowMs + OPEN_MS;
  }

  /** The breaker's state, for /v1/cluster. */
  get state(): 'closed' | 'open' | 'half-open' {
    if (this.failures < FAILURES_TO_OPEN) return 'closed';
    return this.probing ? 'half-open' : 'open';
  }
}

/**
 * Owner answers that mean "this node cannot serve now" rather than an answer
 * about the key: a draining owner, or one whose shard is being replaced. The
 * key is served here instead, as when the owner is unreachable.
 */
const OWNER_UNAVAILABLE = TRY_ELSEWHERE_CODES.map((code) => Buffer.from(`"${code}"`));

/** Collects one forwarded answer (undici's dispatch handler). */
class ForwardHandler {
  #status = 0;
  #headers: [string, string][] = [];
  #contentLength = -1;
  #chunks: Buffer[] = [];
  settled = false;
  #controller: { abort(reason: Error): void } | null = null;

  constructor(
    readonly peer: Peer,
    /** performance.now() past which the forward is given up (queued, connecting or waiting alike). */
    readonly deadline: number,
    readonly done: (answer: OwnerAnswer | FallbackReason) => void,
  ) {}

  onRequestStart(controller: { abort(reason: Error): void }): void {
    this.#controller = controller;
  }

  onResponseStart(_controller: unknown, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    this.#status = statusCode;
    for (const name in headers) {
      const value = headers[name];
      if (name === 'content-length') this.#contentLength = Number(value);
      if (value === undefined || HOP_BY_HOP.has(name)) continue;
      if (typeof value === 'string') this.#headers.push([name, value]);
      else for (const v of value) this.#headers.push([name, v]);
    }
  }

  onResponseData(_controller: unknown, chunk: Buffer): void {
    this.#chunks.push(chunk);
  }

  onResponseEnd(): void {
    if (this.settled) return;
    this.settled = true;
    const body = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks);
    if (this.#status === 503 && OWNER_UNAVAILABLE.some((code) => body.includes(code))) {
      this.peer.failed(Date.now());
      this.done('unreachable');
      return;
    }
    this.peer.succeeded();
    const length = Number.isSafeInteger(this.#contentLength) && this.#contentLength >= 0 ? this.#contentLength : body.length;
    this.done({ status: this.#status, headers: this.#headers, body, contentLength: length });
  }

  onResponseError(_controller: unknown, error: Error): void {
    if (this.settled) return;
    this.settled = true;
    const code = (error as { code?: string }).code;
    // A request undici refuses to send says nothing about the peer (but gives back a probe it carried).
    if (code === 'UND_ERR_INVALID_ARG') this.peer.probing = false;
    else this.peer.failed(Date.now());
    this.done(code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' ? 'timeout' : 'unreachable');
  }

  /** Past its deadline (the sweep): given up, counted as a timeout; undici's later callbacks are ignored. */
  expire(): void {
    if (this.settled) return;
    this.settled = true;
    this.peer.failed(Date.now());
    this.#controller?.abort(new Error('forward deadline passed'));
    this.done('timeout');
  }
}

/** How often a front gives up forwards past their deadline (queued ones have no undici timer yet), ms. */
const SWEEP_MS = 25;

/** A path as it goes on the wire: uWS hands it over decoded, undici writes latin1; non-ASCII is percent-encoded. */
function wirePath(path: string): string {
  return /^[\x00-\x7f]*$/.test(path) ? path : path.replace(/[^\x00-\x7f]+/g, (run) => encodeURIComponent(run));
}

/** One front's view of the ring and its peers. */
export class Forwarder {
  #ring: Ring;
  readonly #peers = new Map<string, Peer>();
  /** Forwards not yet answered, for the deadline sweep. */
  readonly #inFlight = new Set<ForwardHandler>();
  readonly #sweep: NodeJS.Timeout;

  /** The headers every forward carries: the hop mark and the deadline. */
  readonly #hopHeaders: string[];

  constructor(
    readonly self: string,
    /** How long a forward may take from the moment it is asked for, queue and connect included, ms. */
    readonly timeoutMs: number,
  ) {
    this.#ring = new Ring([{ id: self, weight: 1 }]);
    this.#hopHeaders = [HOP_HEADER, self, DEADLINE_HEADER, String(timeoutMs)];
    this.#sweep = setInterval(() => this.#expire(), SWEEP_MS);
    this.#sweep.unref();
  }

  /** The ring the supervisor computed (this node included): peers not on it any more are closed. */
  update(members: readonly MemberConfig[]): void {
    this.#ring = new Ring(members);
    const keep = new Set<string>();
    for (const m of members) {
      if (m.id === this.self) continue;
      keep.add(m.id);
      const peer = this.#peers.get(m.id);
      if (peer !== undefined && peer.url === m.url) continue;
      if (peer !== undefined) void peer.pool.close();
      try {
        this.#peers.set(m.id, new Peer(m.id, m.url, this.timeoutMs));
      } catch {
        // An address undici cannot use (the registry checks records, so only a bug gets here): its keys are served here.
        this.#peers.delete(m.id);
      }
    }
    for (const [id, peer] of this.#peers) {
      if (keep.has(id)) continue;
      this.#peers.delete(id);
      void peer.pool.close();
    }
  }

  /** The peer that owns a key hash, or null when this node does. */
  ownerOf(keyHash: number): Peer | null {
    if (this.#peers.size === 0) return null;
    const id = this.#ring.ownerOfHash(keyHash);
    return id === this.self ? null : (this.#peers.get(id) ?? null);
  }

  /** Every peer's breaker, for /v1/cluster. */
  breakers(): Record<string, 'closed' | 'open' | 'half-open'> {
    return Object.fromEntries([...this.#peers].map(([id, peer]) => [id, peer.state]));
  }

  /**
   * Sends a request to its owner; calls `done` with the owner's answer, or
   * with the reason there is none (the caller then serves it locally).
   * undici's dispatch API, not request(): no body stream and no timer of its
   * own per forward (its header and body timeouts run on undici's coarse
   * clock), because the hop's CPU is what forwarding costs
   * (native-bench/README.md, "Many nodes").
   */
  forward(peer: Peer, request: OwnerRequest, done: (answer: OwnerAnswer | FallbackReason) => void): void {
    const ms = this.timeoutMs;
    const handler = new ForwardHandler(peer, performance.now() + ms, (answer) => {
      this.#inFlight.delete(handler);
      done(answer);
    });
    this.#inFlight.add(handler);
    try {
      const headers = request.headers === undefined ? this.#hopHeaders : [...this.#hopHeaders, ...request.headers];
      const body = request.body === undefined ? null : Buffer.from(request.body.buffer, request.body.byteOffset, request.body.byteLength);
      peer.pool.dispatch(
        { origin: peer.url, method: request.method, path: wirePath(request.path), headers, body, headersTimeout: ms, bodyTimeout: ms },
        handler,
      );
    } catch (err) {
      handler.onResponseError(null, err as Error);
    }
  }

  /** Gives up the forwards past their deadline, wherever they are (undici's own timers start only once a request is written). */
  #expire(): void {
    if (this.#inFlight.size === 0) return;
    const now = performance.now();
    for (const handler of this.#inFlight) if (now > handler.deadline) handler.expire();
  }

  /** At the front's end (its drain is over): whatever is still in flight is dropped, not waited for. */
  async close(): Promise<void> {
    clearInterval(this.#sweep);
    await Promise.all([...this.#peers.values()].map((p) => p.pool.destroy().catch(() => {})));
    this.#peers.clear();
  }
}

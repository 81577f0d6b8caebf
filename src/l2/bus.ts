import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { clusterNodes, type L2Target } from './redis.js';

/** The pub/sub channel every node publishes invalidations on (docs/redis-layout.md). */
export const BUS_CHANNEL = 'strata:v1:bus';

/** What a message invalidates: keys, or every entry carrying one of the tags. */
export const BUS_KIND = { KEYS: 0, TAGS: 1 } as const;
export type BusKind = (typeof BUS_KIND)[keyof typeof BUS_KIND];

/** What a node tells the others. */
export interface BusMessage {
  readonly kind: BusKind;
  /** The publishing node (8 bytes, hex); a node ignores its own messages. */
  readonly node: string;
  /** The publishing stream within the node (4 bytes, hex): one per shard worker incarnation. */
  readonly stream: string;
  /** The stream's message number: 1, 2, 3, … for the stream's life. */
  readonly seq: number;
  /** Keys (or tags) whose L1 entries the others must drop. */
  readonly items: readonly string[];
}

/** Why a receiver can no longer trust its L1: it may have missed messages. */
export type GapReason = { readonly kind: 'gap'; readonly from: string; readonly expected: number; readonly got: number } | { readonly kind: 'reconnect' };

export interface BusHandlers {
  /** Keys another node invalidated. */
  onKeys(keys: readonly string[], from: string): void;
  /** Tags another node invalidated. */
  onTags(tags: readonly string[], from: string): void;
  /** Messages may have been lost: drop (or revalidate) whatever L1 holds. */
  onGap(reason: GapReason): void;
}

const MAGIC = 0x53; // 'S'
const VERSION = 2;
export const NODE_ID_BYTES = 8;
export const STREAM_ID_BYTES = 4;
const HEAD_BYTES = 3 + NODE_ID_BYTES + STREAM_ID_BYTES + 8 + 2;

/** A fresh random node id. */
export function newNodeId(): string {
  return randomBytes(NODE_ID_BYTES).toString('hex');
}

/**
 * Encodes a message: u8 magic | u8 version | u8 kind | 8-byte node id |
 * 4-byte stream id | f64 seq | u16 item count | per item: u16 length | UTF-8 bytes.
 */
export function encodeBusMessage(message: BusMessage): Buffer {
  const node = Buffer.from(message.node, 'hex');
  const stream = Buffer.from(message.stream, 'hex');
  if (node.length !== NODE_ID_BYTES) throw new RangeError('node id must be 8 bytes of hex');
  if (stream.length !== STREAM_ID_BYTES) throw new RangeError('stream id must be 4 bytes of hex');
  const items = message.items.map((k) => Buffer.from(k, 'utf8'));
  if (items.length > 0xffff || items.some((k) => k.length > 0xffff)) throw new RangeError('bus message too large');
  const out = Buffer.allocUnsafe(HEAD_BYTES + items.reduce((n, k) => n + 2 + k.length, 0));
  let at = 0;
  out[at++] = MAGIC;
  out[at++] = VERSION;
  out[at++] = message.kind;
  node.copy(out, at);
  at += NODE_ID_BYTES;
  stream.copy(out, at);
  at += STREAM_ID_BYTES;
  out.writeDoubleLE(message.seq, at);
  at += 8;
  out.writeUInt16LE(items.length, at);
  at += 2;
  for (const item of items) {
    out.writeUInt16LE(item.length, at);
    at += 2;
    item.copy(out, at);
    at += item.length;
  }
  return out;
}

/** Decodes a bus message, or returns null for bytes that are not one (they are ignored). */
export function decodeBusMessage(bytes: Buffer): BusMessage | null {
  if (bytes.length < HEAD_BYTES || bytes[0] !== MAGIC || bytes[1] !== VERSION) return null;
  const kind = bytes[2];
  if (kind !== BUS_KIND.KEYS && kind !== BUS_KIND.TAGS) return null;
  let at = 3;
  const node = bytes.toString('hex', at, at + NODE_ID_BYTES);
  at += NODE_ID_BYTES;
  const stream = bytes.toString('hex', at, at + STREAM_ID_BYTES);
  at += STREAM_ID_BYTES;
  const seq = bytes.readDoubleLE(at);
  at += 8;
  const count = bytes.readUInt16LE(at);
  at += 2;
  const items: string[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 2 > bytes.length) return null;
    const length = bytes.readUInt16LE(at);
    at += 2;
    if (at + length > bytes.length) return null;
    items.push(bytes.toString('utf8', at, at + length));
    at += length;
  }
  return { kind, node, stream, seq, items };
}

/**
 * One numbered stream of a node's invalidations (each shard worker owns one).
 * `send` hands the bytes to Redis (RedisL2Store.publish) and resolves once
 * Redis has taken them, that is, once Redis has queued them to every subscriber.
 */
export class BusPublisher {
  readonly stream = randomBytes(STREAM_ID_BYTES).toString('hex');
  #seq = 0;
  constructor(
    readonly node: string,
    readonly send: (message: Buffer) => Promise<unknown>,
  ) {}

  /** Tells the other nodes to drop keys (or tagged entries) from their L1. */
  async publish(kind: BusKind, items: readonly string[]): Promise<void> {
    await this.send(encodeBusMessage({ kind, node: this.node, stream: this.stream, seq: ++this.#seq, items }));
  }
}

/** How often the subscriber checks that Redis still answers, ms. */
export const PING_INTERVAL_MS = 500;

/**
 * The receiving end of the cross-node L1 invalidation bus, on Redis pub/sub
 * (one per node, on the main thread). Classic (not sharded) pub/sub on one
 * channel: in a Redis Cluster a PUBLISH reaches subscribers on every node, so
 * a node may subscribe through any of them and keeps working when one fails;
 * sharded pub/sub would tie the only channel to one slot's master and gain
 * nothing for a single channel.
 *
 * The subscription is one plain connection this class manages itself, also
 * for a Cluster: ioredis's Cluster client moves its subscriber between nodes
 * on topology changes without telling anyone, and a move loses messages
 * unseen. Here every (re)subscription after the first is reported.
 *
 * Delivery is at most once. Each stream numbers its messages; a receiver that
 * sees a number skip, or whose subscription restarts (messages sent meanwhile
 * are lost), reports a gap so the node stops trusting its L1.
 */
export class BusSubscriber {
  readonly #lastSeen = new Map<string, number>();
  readonly #targets: readonly { host: string; port: number }[] | string;
  readonly #handlers: BusHandlers;
  readonly #timeoutMs: number;
  #connection: Redis | null = null;
  #attempt = 0;
  #subscribedOnce = false;
  #ready = false;
  #closed = false;
  #retry: NodeJS.Timeout | null = null;
  #lastError = '';

  private constructor(
    readonly node: string,
    target: L2Target,
    handlers: BusHandlers,
    timeoutMs: number,
  ) {
    this.#targets = 'url' in target ? target.url : clusterNodes(target.cluster);
    this.#handlers = handlers;
    this.#timeoutMs = timeoutMs;
  }

  /** True while subscribed. */
  get ready(): boolean {
    return this.#ready;
  }

  /** Why the last connection attempt failed ('' after a success): what an operator needs to fix. */
  get lastError(): string {
    return this.#lastError;
  }

  /** Starts subscribing in the background (and keeps at it until close). */
  static start(target: L2Target, node: string, handlers: BusHandlers, timeoutMs: number): BusSubscriber {
    const bus = new BusSubscriber(node, target, handlers, timeoutMs);
    bus.#connect();
    return bus;
  }

  /** Opens one connection (to the next Cluster node in turn) and subscribes; on loss, tries again. */
  #connect(): void {
    if (this.#closed) return;
    const attempt = this.#attempt++;
    const options = { connectTimeout: this.#timeoutMs, commandTimeout: this.#timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true };
    const targets = this.#targets;
    const connection =
      typeof targets === 'string'
        ? new Redis(targets, options)
        : new Redis({ ...options, ...(targets[attempt % targets.length] as { host: string; port: number }) });
    this.#connection = connection;
    // The first error of an attempt says why (WRONGPASS, ECONNREFUSED); what follows is its echo ("Connection is closed.").
    let attemptError = '';
    connection.on('error', (err: Error) => {
      attemptError ||= err.message;
      this.#lastError = attemptError;
    });
    connection.on('messageBuffer', (_channel: Buffer, payload: Buffer) => this.#receive(payload));
    connection.once('end', () => {
      this.#ready = false;
      if (this.#connection !== connection || this.#closed) return;
      this.#connection = null;
      // Back off a little when nothing answers; the next attempt goes to the next node.
      this.#retry = setTimeout(() => this.#connect(), Math.min(1000, 50 * Math.min(20, attempt + 1)));
      this.#retry.unref();
    });
    connection
      .connect()
      .then(() => connection.subscribe(BUS_CHANNEL))
      .then(
        () => {
          if (this.#connection !== connection) return;
          this.#attempt = 0;
          this.#ready = true;
          this.#lastError = '';
          // What was published while this node was not subscribed is gone.
          if (this.#subscribedOnce) this.#handlers.onGap({ kind: 'reconnect' });
          this.#subscribedOnce = true;
          this.#watch(connection);
        },
        (err: Error) => {
          attemptError ||= err.message;
          this.#lastError = attemptError;
          connection.disconnect();
        },
      );
  }

  /**
   * PINGs the subscription every PING_INTERVAL_MS: a Redis that hangs
   * (SIGSTOP, CLIENT PAUSE) keeps the socket open but answers nothing, and
   * only a deadline notices. A missed PING drops the connection, so the next
   * subscription reports the gap.
   */
  #watch(connection: Redis): void {
    const timer = setInterval(() => {
      if (this.#connection !== connection) return clearInterval(timer);
      connection.ping().catch(() => {
        clearInterval(timer);
        connection.disconnect();
      });
    }, PING_INTERVAL_MS);
    timer.unref();
    connection.once('end', () => clearInterval(timer));
  }

  #receive(payload: Buffer): void {
    const message = decodeBusMessage(payload);
    if (message === null || message.node === this.node) return;
    const handlers = this.#handlers;
    const from = `${message.node}/${message.stream}`;
    const last = this.#lastSeen.get(from);
    this.#lastSeen.set(from, message.seq);
    if (last !== undefined && message.seq !== last + 1) {
      handlers.onGap({ kind: 'gap', from, expected: last + 1, got: message.seq });
    }
    if (message.kind === BUS_KIND.KEYS) handlers.onKeys(message.items, from);
    else handlers.onTags(message.items, from);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#ready = false;
    if (this.#retry !== null) clearTimeout(this.#retry);
    const connection = this.#connection;
    this.#connection = null;
    if (connection !== null) await connection.quit().catch(() => connection.disconnect());
  }
}

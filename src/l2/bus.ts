import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { clusterNodes, toL2Error } from './redis.js';

/** The pub/sub channel every node publishes invalidations on (docs/redis-layout.md). */
export const BUS_CHANNEL = 'strata:v1:bus';

/** What a node tells the others. */
export interface BusMessage {
  /** The publishing node. */
  readonly node: string;
  /** The publisher's message number: 1, 2, 3, … for the publisher's life. */
  readonly seq: number;
  /** Keys whose L1 entries the others must drop. */
  readonly keys: readonly string[];
}

/** Why a receiver can no longer trust its L1: it may have missed messages. */
export type GapReason = { readonly kind: 'gap'; readonly node: string; readonly expected: number; readonly got: number } | { readonly kind: 'reconnect' };

export interface BusHandlers {
  /** Keys another node invalidated. */
  onInvalidate(keys: readonly string[], from: string): void;
  /** Messages may have been lost: drop (or revalidate) whatever L1 holds. */
  onGap(reason: GapReason): void;
}

const MAGIC = 0x53; // 'S'
const VERSION = 1;
const NODE_ID_BYTES = 8;

/**
 * Encodes a message: u8 magic | u8 version | 8-byte node id | f64 seq |
 * u16 key count | per key: u16 length | UTF-8 bytes.
 */
export function encodeBusMessage(message: BusMessage): Buffer {
  const node = Buffer.from(message.node, 'hex');
  if (node.length !== NODE_ID_BYTES) throw new RangeError('node id must be 8 bytes of hex');
  const keys = message.keys.map((k) => Buffer.from(k, 'utf8'));
  if (keys.length > 0xffff || keys.some((k) => k.length > 0xffff)) throw new RangeError('bus message too large');
  const out = Buffer.allocUnsafe(2 + NODE_ID_BYTES + 8 + 2 + keys.reduce((n, k) => n + 2 + k.length, 0));
  let at = 0;
  out[at++] = MAGIC;
  out[at++] = VERSION;
  node.copy(out, at);
  at += NODE_ID_BYTES;
  out.writeDoubleLE(message.seq, at);
  at += 8;
  out.writeUInt16LE(keys.length, at);
  at += 2;
  for (const key of keys) {
    out.writeUInt16LE(key.length, at);
    at += 2;
    key.copy(out, at);
    at += key.length;
  }
  return out;
}

/** Decodes a bus message, or returns null for bytes that are not one (they are ignored). */
export function decodeBusMessage(bytes: Buffer): BusMessage | null {
  if (bytes.length < 2 + NODE_ID_BYTES + 8 + 2 || bytes[0] !== MAGIC || bytes[1] !== VERSION) return null;
  let at = 2;
  const node = bytes.toString('hex', at, at + NODE_ID_BYTES);
  at += NODE_ID_BYTES;
  const seq = bytes.readDoubleLE(at);
  at += 8;
  const count = bytes.readUInt16LE(at);
  at += 2;
  const keys: string[] = [];
  for (let i = 0; i < count; i++) {
    if (at + 2 > bytes.length) return null;
    const length = bytes.readUInt16LE(at);
    at += 2;
    if (at + length > bytes.length) return null;
    keys.push(bytes.toString('utf8', at, at + length));
    at += length;
  }
  return { node, seq, keys };
}

/**
 * The cross-node L1 invalidation bus on Redis pub/sub. Classic (not sharded)
 * pub/sub on one channel: in a Redis Cluster a PUBLISH reaches subscribers
 * on every node, so a node may subscribe through any of them and keeps
 * working when one fails; sharded pub/sub would tie the only channel to one
 * slot's master and gain nothing for a single channel.
 *
 * Delivery is at most once. Each publisher numbers its messages; a receiver
 * that sees a number skip, or whose subscription reconnects (messages sent
 * meanwhile are lost), reports a gap so the node stops trusting its L1.
 */
export class InvalidationBus {
  readonly node: string;
  readonly #publisher: Redis | Cluster;
  readonly #subscriber: Redis | Cluster;
  readonly #lastSeen = new Map<string, number>();
  #seq = 0;

  private constructor(node: string, publisher: Redis | Cluster, subscriber: Redis | Cluster) {
    this.node = node;
    this.#publisher = publisher;
    this.#subscriber = subscriber;
  }

  /** Connects a publisher and a subscriber and subscribes; handlers start receiving at once. */
  static async start(
    target: { readonly url: string } | { readonly cluster: readonly string[] },
    handlers: BusHandlers,
    commandTimeoutMs: number,
  ): Promise<InvalidationBus> {
    const connect = (): Redis | Cluster => {
      if ('url' in target) return new Redis(target.url, { commandTimeout: commandTimeoutMs, maxRetriesPerRequest: 1, lazyConnect: true });
      return new Cluster(clusterNodes(target.cluster), { lazyConnect: true, redisOptions: { commandTimeout: commandTimeoutMs, maxRetriesPerRequest: 1 } });
    };
    const publisher = connect();
    const subscriber = connect();
    for (const client of [publisher, subscriber]) client.on('error', () => {});
    const bus = new InvalidationBus(randomBytes(NODE_ID_BYTES).toString('hex'), publisher, subscriber);
    try {
      await Promise.all([publisher.connect(), subscriber.connect()]);
      subscriber.on('messageBuffer', (_channel: Buffer, payload: Buffer) => bus.#receive(payload, handlers));
      let subscribedOnce = false;
      // After a reconnect ioredis subscribes again by itself; what was published meanwhile is gone.
      subscriber.on('ready', () => {
        if (subscribedOnce) handlers.onGap({ kind: 'reconnect' });
      });
      await subscriber.subscribe(BUS_CHANNEL);
      subscribedOnce = true;
    } catch (err) {
      publisher.disconnect();
      subscriber.disconnect();
      throw toL2Error(err);
    }
    return bus;
  }

  /** Tells the other nodes to drop keys from their L1; resolves when Redis took the message. */
  async publish(keys: readonly string[]): Promise<void> {
    const message = encodeBusMessage({ node: this.node, seq: ++this.#seq, keys });
    try {
      await this.#via().publish(BUS_CHANNEL, message);
    } catch (err) {
      throw toL2Error(err);
    }
  }

  /**
   * The connection a publish goes through. A Cluster client would send each
   * keyless PUBLISH to any node, and messages entering the cluster at
   * different nodes can arrive out of order (seen as gaps); so all of a
   * node's messages go through one master, the first by address. After a
   * failover it changes, and receivers may see one gap: safe, they drop L1.
   */
  #via(): Redis | Cluster {
    const publisher = this.#publisher;
    if (!(publisher instanceof Cluster)) return publisher;
    const masters = publisher.nodes('master');
    let first: Redis | undefined;
    let firstName = '';
    for (const node of masters) {
      const name = `${node.options.host}:${node.options.port}`;
      if (first === undefined || name < firstName) {
        first = node;
        firstName = name;
      }
    }
    return first ?? publisher;
  }

  #receive(payload: Buffer, handlers: BusHandlers): void {
    const message = decodeBusMessage(payload);
    if (message === null || message.node === this.node) return;
    const last = this.#lastSeen.get(message.node);
    this.#lastSeen.set(message.node, message.seq);
    if (last !== undefined && message.seq !== last + 1) {
      handlers.onGap({ kind: 'gap', node: message.node, expected: last + 1, got: message.seq });
    }
    handlers.onInvalidate(message.keys, message.node);
  }

  async close(): Promise<void> {
    await Promise.all([this.#publisher.quit().catch(() => this.#publisher.disconnect()), this.#subscriber.quit().catch(() => this.#subscriber.disconnect())]);
  }
}

/** The invalidation bus's channel and message format, and the numbered streams nodes publish (docs/redis-layout.md). */
import { randomBytes } from 'node:crypto';

/** The pub/sub channel every node publishes invalidations on (docs/redis-layout.md). */
export const BUS_CHANNEL = 'strata:v1:bus';

/**
 * What a message says: drop these keys, or every entry carrying one of these
 * tags; or (HEARTBEAT, no items, its number not a new one) "my last message
 * was this number", so that losing a stream's last message is noticed too.
 */
export const BUS_KIND = { KEYS: 0, TAGS: 1, HEARTBEAT: 2 } as const;
export type BusKind = (typeof BUS_KIND)[keyof typeof BUS_KIND];

/** What a node tells the others. */
export interface BusMessage {
  readonly kind: BusKind;
  /** The publishing node (8 bytes, hex); a node ignores its own messages. */
  readonly node: string;
  /** The publishing stream within the node (4 bytes, hex): one per shard worker incarnation. */
  readonly stream: string;
  /** When the stream began, epoch ms by its node's clock: tells a receiver whether it can have missed the stream's first messages. */
  readonly streamStartedMs: number;
  /** The stream's message number: 1, 2, 3, … for the stream's life. */
  readonly seq: number;
  /** Keys (or tags) whose L1 entries the others must drop. */
  readonly items: readonly string[];
  /**
   * When it was published, epoch ms by its node's clock: the bus's delay is
   * measured on the messages a node gets back from itself (one clock).
   * Written after the items, so a reader that predates it reads the rest
   * the same. @default absent
   */
  readonly sentMs?: number;
}

const MAGIC = 0x53; // 'S'
const VERSION = 3;
export const NODE_ID_BYTES = 8;
export const STREAM_ID_BYTES = 4;
const HEAD_BYTES = 3 + NODE_ID_BYTES + STREAM_ID_BYTES + 8 + 8 + 2;

/** A fresh random node id. */
export function newNodeId(): string {
  return randomBytes(NODE_ID_BYTES).toString('hex');
}

/**
 * Encodes a message: u8 magic | u8 version | u8 kind | 8-byte node id |
 * 4-byte stream id | f64 stream start | f64 seq | u16 item count | per item:
 * u16 length | UTF-8 bytes | f64 sent (optional).
 */
export function encodeBusMessage(message: BusMessage): Buffer {
  const node = Buffer.from(message.node, 'hex');
  const stream = Buffer.from(message.stream, 'hex');
  if (node.length !== NODE_ID_BYTES) throw new RangeError('node id must be 8 bytes of hex');
  if (stream.length !== STREAM_ID_BYTES) throw new RangeError('stream id must be 4 bytes of hex');
  const items = message.items.map((k) => Buffer.from(k, 'utf8'));
  if (items.length > 0xffff || items.some((k) => k.length > 0xffff)) throw new RangeError('bus message too large');
  const sent = message.sentMs === undefined ? 0 : 8;
  const out = Buffer.allocUnsafe(HEAD_BYTES + items.reduce((n, k) => n + 2 + k.length, 0) + sent);
  let at = 0;
  out[at++] = MAGIC;
  out[at++] = VERSION;
  out[at++] = message.kind;
  node.copy(out, at);
  at += NODE_ID_BYTES;
  stream.copy(out, at);
  at += STREAM_ID_BYTES;
  out.writeDoubleLE(message.streamStartedMs, at);
  at += 8;
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
  if (message.sentMs !== undefined) out.writeDoubleLE(message.sentMs, at);
  return out;
}

/** Decodes a bus message, or returns null for bytes that are not one (they are ignored). */
export function decodeBusMessage(bytes: Buffer): BusMessage | null {
  if (bytes.length < HEAD_BYTES || bytes[0] !== MAGIC || bytes[1] !== VERSION) return null;
  const kind = bytes[2];
  if (kind !== BUS_KIND.KEYS && kind !== BUS_KIND.TAGS && kind !== BUS_KIND.HEARTBEAT) return null;
  let at = 3;
  const node = bytes.toString('hex', at, at + NODE_ID_BYTES);
  at += NODE_ID_BYTES;
  const stream = bytes.toString('hex', at, at + STREAM_ID_BYTES);
  at += STREAM_ID_BYTES;
  const streamStartedMs = bytes.readDoubleLE(at);
  at += 8;
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
  if (at + 8 <= bytes.length) return { kind, node, stream, streamStartedMs, seq, items, sentMs: bytes.readDoubleLE(at) };
  return { kind, node, stream, streamStartedMs, seq, items };
}

/**
 * One numbered stream of a node's invalidations (each shard worker owns one).
 * `next` makes the stream's next message; call it when the message is about
 * to be published, so the numbers go out in order.
 */
export class BusPublisher {
  readonly stream = randomBytes(STREAM_ID_BYTES).toString('hex');
  readonly startedMs = Date.now();
  #seq = 0;
  /** Heartbeats still owed for the last message (see heartbeat()). */
  #heartbeatsOwed = 0;
  constructor(readonly node: string) {}

  /** The next message: drop these keys (or tagged entries) from your L1. */
  next(kind: typeof BUS_KIND.KEYS | typeof BUS_KIND.TAGS, items: readonly string[]): Buffer {
    this.#heartbeatsOwed = HEARTBEATS_AFTER_ACTIVITY;
    return encodeBusMessage({ kind, node: this.node, stream: this.stream, streamStartedMs: this.startedMs, seq: ++this.#seq, items, sentMs: preciseNowMs() });
  }

  /**
   * A heartbeat repeating the last number, or null when none is owed. Called
   * on a timer: after a message, the next HEARTBEATS_AFTER_ACTIVITY calls
   * return one, then the stream is silent until it publishes again (an idle
   * node sends nothing).
   */
  heartbeat(): Buffer | null {
    if (this.#heartbeatsOwed === 0) return null;
    this.#heartbeatsOwed--;
    return encodeBusMessage({
      kind: BUS_KIND.HEARTBEAT,
      node: this.node,
      stream: this.stream,
      streamStartedMs: this.startedMs,
      seq: this.#seq,
      items: [],
      sentMs: preciseNowMs(),
    });
  }
}

/** Epoch ms with a fraction (performance's clock, from the process's time origin): the bus's delay is often under a ms. */
export function preciseNowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Heartbeats a stream sends after its last message (two: one lost heartbeat does not hide a lost message). */
export const HEARTBEATS_AFTER_ACTIVITY = 2;
/** How often a shard worker offers its stream a heartbeat, ms. */
export const HEARTBEAT_INTERVAL_MS = 1000;

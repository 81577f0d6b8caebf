import { Redis } from 'ioredis';
import { BUS_CHANNEL, BUS_KIND, decodeBusMessage, preciseNowMs } from './bus-format.js';
import { type ClusterSeeds, clusterAuth, type L2Target, parseClusterSeeds } from './target.js';

export * from './bus-format.js';

/** Why a receiver can no longer trust its L1: it may have missed messages. */
export type GapReason = { readonly kind: 'gap'; readonly from: string; readonly expected: number; readonly got: number } | { readonly kind: 'subscribed' };

export interface BusHandlers {
  /** Keys another node invalidated. */
  onKeys(keys: readonly string[], from: string): void;
  /** Tags another node invalidated. */
  onTags(tags: readonly string[], from: string): void;
  /** Messages may have been lost: drop (or revalidate) whatever L1 holds. */
  onGap(reason: GapReason): void;
  /** One of this node's own messages came back, `delayMs` after it was published (one clock: the bus's delay). @default ignored */
  onOwnDelay?(delayMs: number): void;
}

/** Streams whose numbers a subscriber keeps (a few bytes each; one stream per shard worker incarnation of every node). */
export const MAX_STREAMS = 65_536;

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
 * unseen. Here every subscription is reported (the first too: the shards may
 * have filled L1 from Redis before it).
 *
 * Delivery is at most once. Each stream numbers its messages; a receiver that
 * sees a number skip (or a stream that began after it subscribed whose first
 * message it did not see), or whose subscription (re)starts (messages sent
 * meanwhile are lost), reports a gap so the node stops trusting its L1.
 * The numbers of at most MAX_STREAMS streams are kept, the least recently
 * heard from dropped first (a dropped stream that speaks again may be taken
 * for a new one and cost one needless gap). Stream start times come from the
 * publishing node's clock: skew between nodes can cause a needless gap or
 * hide the loss of a new stream's very first message.
 */
export class BusSubscriber {
  /** Per stream (`node/stream`): the highest number seen; least recently heard from first. */
  readonly #streams = new Map<string, { seq: number }>();
  /** When the current subscription began, epoch ms. */
  #subscribedAtMs = 0;
  readonly #targets: string | ClusterSeeds;
  readonly #handlers: BusHandlers;
  readonly #timeoutMs: number;
  #connection: Redis | null = null;
  #attempt = 0;
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
    this.#targets = 'url' in target ? target.url : parseClusterSeeds(target.cluster);
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
        : new Redis({ ...options, ...clusterAuth(targets), ...(targets.nodes[attempt % targets.nodes.length] as { host: string; port: number }) });
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
          // Numbers seen before belong to what is now cleared; streams start afresh.
          this.#streams.clear();
          this.#subscribedAtMs = Date.now();
          // What was published while this node was not subscribed is gone (at the first subscription too).
          this.#handlers.onGap({ kind: 'subscribed' });
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
    if (message === null) return;
    const handlers = this.#handlers;
    if (message.node === this.node && message.sentMs !== undefined) handlers.onOwnDelay?.(preciseNowMs() - message.sentMs);
    const from = `${message.node}/${message.stream}`;
    const streams = this.#streams;
    const stream = streams.get(from);
    // A heartbeat repeats the stream's last number; any other message carries the next one.
    const expected = message.kind === BUS_KIND.HEARTBEAT ? (stream?.seq ?? 0) : (stream?.seq ?? 0) + 1;
    if (stream === undefined) {
      // A stream that began after this subscription must show every number from 1; a stream already running may start anywhere.
      const missed = message.kind === BUS_KIND.HEARTBEAT ? message.seq > 0 : message.seq !== 1;
      if (missed && message.streamStartedMs > this.#subscribedAtMs) handlers.onGap({ kind: 'gap', from, expected: 1, got: message.seq });
      streams.set(from, { seq: message.seq });
      if (streams.size > MAX_STREAMS) streams.delete(streams.keys().next().value as string);
    } else {
      const skipped = message.kind === BUS_KIND.HEARTBEAT ? message.seq > expected : message.seq !== expected;
      if (skipped) handlers.onGap({ kind: 'gap', from, expected, got: message.seq });
      // Only forward: a late message must not make the next one look like a gap.
      if (message.seq > stream.seq) stream.seq = message.seq;
      // Most recently heard from last, so the bound drops the quietest stream.
      streams.delete(from);
      streams.set(from, stream);
    }
    if (message.kind === BUS_KIND.HEARTBEAT) return;
    // A node's own key messages change nothing here (the key's shard did the write). Its own tag
    // messages are applied: one that comes after a sweep which outlived its deadline is what tells this
    // node's other shards to drop what they read from Redis meanwhile.
    if (message.kind === BUS_KIND.TAGS) handlers.onTags(message.items, from);
    else if (message.node !== this.node) handlers.onKeys(message.items, from);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#ready = false;
    if (this.#retry !== null) clearTimeout(this.#retry);
    const connection = this.#connection;
    this.#connection = null;
    if (connection === null) return;
    // QUIT politely, but never wait on a Redis that does not answer.
    const quit = connection.quit().catch(() => undefined);
    await Promise.race([quit, new Promise((r) => setTimeout(r, this.#timeoutMs).unref())]);
    connection.disconnect();
  }
}

import type { MessagePort } from 'node:worker_threads';
import type { ErrorCode } from '../errors.js';
import type { HotIndexReader } from '../l1/hot-index.js';
import { type Batch, BatchResult, type OpArgs, STATUS } from './protocol.js';

export { BatchResult } from './protocol.js';

/** Who waits for an op's answer. `slot` is the caller's own tag (e.g. an mget position). */
export interface OpWaiter {
  onResult(result: BatchResult, index: number, slot: number): void;
  onFail(code: ErrorCode, message: string): void;
}

/** Where ops for the shards go: what invalidation and the bus need of a shard client. */
export interface ShardSink {
  readonly shards: number;
  /** Queues one op for the shard's next batch. For PUT, `args.value`'s buffer is transferred. */
  submit(shard: number, op: number, key: string, args: OpArgs | null, waiter: OpWaiter, slot: number): void;
}

/** Ops gathered for one shard during one event-loop turn, then in flight until answered. */
class PendingBatch {
  readonly ops: number[] = [];
  readonly keys: string[] = [];
  args: (OpArgs | null)[] | null = null;
  readonly waiters: OpWaiter[] = [];
  readonly slots: number[] = [];
  readonly transfer: ArrayBuffer[] = [];
  /** performance.now() when sent. */
  sentAt = 0;
  /** Names the batch in the worker's answers. */
  id = 0;
  /** Ops answered so far (an answer may leave some PENDING for a later one). */
  answered = 0;
  /** Which ops are answered, once an answer left some PENDING (null until then). */
  done: Uint8Array | null = null;

  /** Fails every op not answered yet. */
  fail(code: ErrorCode, message: string): void {
    const { waiters, done } = this;
    for (let i = 0; i < waiters.length; i++) if (done === null || done[i] === 0) (waiters[i] as OpWaiter).onFail(code, message);
  }
}

/** This thread's link to the worker that owns a shard. */
class ShardLink {
  /** threadId of the owning worker, -1 while there is none. */
  threadId = -1;
  port: MessagePort | null = null;
  pending: PendingBatch | null = null;
  /** Sent and not fully answered, by id, oldest first (Map keeps insertion order). */
  readonly inFlight = new Map<number, PendingBatch>();
  /** Id of the last batch sent. */
  lastId = 0;
  /**
   * This thread's view of the worker's hot-read index. Every worker gets a
   * new one, so nothing a replaced (even a hung, still running) worker writes
   * can be read.
   */
  hot: HotIndexReader | null = null;
  constructor(readonly index: number) {}
}

export interface ShardClientOptions {
  readonly shards: number;
  /** Past this, waiting ops get E_SHARD_TIMEOUT and `onTimeout` asks for the worker to be replaced. */
  readonly requestTimeoutMs: number;
  /** A shard's worker sat on a batch past the deadline: the supervisor should replace it. */
  readonly onTimeout: (shard: number, threadId: number) => void;
}

/**
 * One thread's client of the shards (each front has one, and the main thread
 * one for the bus and PostgreSQL): ops are queued per shard and sent as one
 * batch per shard per event-loop turn (setImmediate) over this thread's own
 * port to the shard's worker, because the thread hop, not the cache work, is
 * what costs. The supervisor (supervisor.ts) connects and disconnects the
 * ports as workers come and go.
 */
export class ShardClient implements ShardSink {
  readonly shards: number;
  readonly #timeoutMs: number;
  readonly #onTimeout: (shard: number, threadId: number) => void;
  readonly #links: ShardLink[];
  readonly #watchdog: NodeJS.Timeout;
  readonly #tickMs: number;
  /** When the watchdog last ran (performance.now()). */
  #lastTick: number;
  #flushScheduled = false;
  #closed = false;

  constructor(options: ShardClientOptions) {
    this.shards = options.shards;
    this.#timeoutMs = options.requestTimeoutMs;
    this.#onTimeout = options.onTimeout;
    this.#links = Array.from({ length: options.shards }, (_, i) => new ShardLink(i));
    this.#tickMs = Math.max(5, Math.min(250, this.#timeoutMs / 4));
    this.#lastTick = performance.now();
    this.#watchdog = setInterval(() => this.#checkDeadlines(), this.#tickMs);
    this.#watchdog.unref();
  }

  /** Links a shard to its (new) worker: ops go to `port`, GET hits may be read from `hot`. */
  connect(shard: number, threadId: number, port: MessagePort, hot: HotIndexReader | null): void {
    const link = this.#links[shard];
    if (link === undefined || this.#closed) {
      port.close();
      return;
    }
    if (link.threadId !== -1) this.disconnect(shard, link.threadId, 'E_SHARD_UNAVAILABLE', `shard ${shard} lost its worker; retry`);
    link.threadId = threadId;
    link.port = port;
    link.hot = hot;
    port.on('message', (buffer: ArrayBuffer) => this.#settle(link, buffer));
  }

  /** Unlinks a shard from its worker (gone, hung or replaced) and fails what it owed; ignored for another worker. */
  disconnect(shard: number, threadId: number, code: ErrorCode, message: string): void {
    const link = this.#links[shard];
    if (link === undefined || link.threadId !== threadId || threadId === -1) return;
    link.threadId = -1;
    link.port?.close();
    link.port = null;
    // The replacement starts with an empty L1 and its own index: nothing the old worker published is read again.
    link.hot = null;
    const owed = [...link.inFlight.values()];
    link.inFlight.clear();
    for (const batch of owed) batch.fail(code, message);
  }

  /** The shard's hot-read index, or null while the shard has no worker (disconnect() drops it with the port) or the index is off. */
  hotReader(shard: number): HotIndexReader | null {
    return (this.#links[shard] as ShardLink).hot;
  }

  submit(shard: number, op: number, key: string, args: OpArgs | null, waiter: OpWaiter, slot: number): void {
    if (this.#closed) {
      waiter.onFail('E_SHUTTING_DOWN', 'the node is shutting down');
      return;
    }
    const link = this.#links[shard] as ShardLink;
    if (link.port === null) {
      waiter.onFail('E_SHARD_UNAVAILABLE', `shard ${shard} has no worker right now (restarting); retry`);
      return;
    }
    let batch = link.pending;
    if (batch === null) {
      batch = new PendingBatch();
      link.pending = batch;
    }
    if (args !== null) {
      if (batch.args === null) batch.args = new Array<OpArgs | null>(batch.ops.length).fill(null);
      batch.args.push(args);
      if (args.kind === 'put') batch.transfer.push(args.value.buffer as ArrayBuffer);
    } else if (batch.args !== null) {
      batch.args.push(null);
    }
    batch.ops.push(op);
    batch.keys.push(key);
    batch.waiters.push(waiter);
    batch.slots.push(slot);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    const now = performance.now();
    for (const link of this.#links) {
      const batch = link.pending;
      if (batch === null) continue;
      link.pending = null;
      const port = link.port;
      if (port === null) {
        batch.fail('E_SHARD_UNAVAILABLE', `shard ${link.index} lost its worker; retry`);
        continue;
      }
      batch.sentAt = now;
      batch.id = ++link.lastId;
      const message: Batch = { id: batch.id, sentAtMs: performance.timeOrigin + now, ops: batch.ops, keys: batch.keys, args: batch.args };
      link.inFlight.set(batch.id, batch);
      if (batch.transfer.length > 0) port.postMessage(message, batch.transfer);
      else port.postMessage(message);
    }
  };

  #settle(link: ShardLink, buffer: ArrayBuffer): void {
    const id = BatchResult.idOf(buffer);
    const batch = link.inFlight.get(id);
    if (batch === undefined) return;
    const n = batch.ops.length;
    const result = new BatchResult(buffer, n);
    const { waiters, slots } = batch;
    let answered = 0;
    for (let i = 0; i < n; i++) {
      if (result.status(i) === STATUS.PENDING) {
        // Only a batch answered in several parts needs to remember which ops are done: all before this one are.
        if (batch.done === null) batch.done = new Uint8Array(n).fill(1, 0, i);
        continue;
      }
      answered++;
      if (batch.done !== null) batch.done[i] = 1;
      (waiters[i] as OpWaiter).onResult(result, i, slots[i] as number);
    }
    batch.answered += answered;
    if (batch.answered >= n) link.inFlight.delete(id);
  }

  /** Fails a shard's batches past their deadline and asks for the worker that sat on them to be replaced. */
  #checkDeadlines(): void {
    const now = performance.now();
    const late = now - this.#lastTick > 2 * this.#tickMs;
    this.#lastTick = now;
    // This thread itself was stalled (GC, starved of CPU): answers may be waiting on the ports unread. Judge next tick.
    if (late) return;
    for (const link of this.#links) {
      const oldest = link.inFlight.values().next().value;
      if (oldest === undefined || now - oldest.sentAt < this.#timeoutMs) continue;
      const threadId = link.threadId;
      this.disconnect(link.index, threadId, 'E_SHARD_TIMEOUT', `shard ${link.index} did not answer within ${this.#timeoutMs} ms; its worker is being replaced`);
      this.#onTimeout(link.index, threadId);
    }
  }

  /** Ops queued or in flight. */
  get inFlight(): number {
    let n = 0;
    for (const link of this.#links) {
      for (const batch of link.inFlight.values()) n += batch.ops.length - batch.answered;
      n += link.pending?.ops.length ?? 0;
    }
    return n;
  }

  /** Stops taking ops, waits for those in flight (up to timeoutMs), then fails the rest and closes the ports. */
  async close(timeoutMs: number): Promise<void> {
    this.#closed = true;
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    clearInterval(this.#watchdog);
    for (const link of this.#links) this.disconnect(link.index, link.threadId, 'E_SHUTTING_DOWN', 'the node is shutting down');
  }
}

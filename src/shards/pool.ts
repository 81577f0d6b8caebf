import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { ErrorCode } from '../errors.js';
import type { HotIndexShape } from '../l1/hot-index.js';
import { allocateHotIndex, HotIndexReader } from '../l1/hot-index.js';
import { OriginSlots } from '../origin/slots.js';
import { type AttachTask, type Batch, BatchResult, type OpArgs, STATUS } from './protocol.js';
import type { ShardWorkerData } from './worker.js';

export { BatchResult } from './protocol.js';

/** Who waits for an op's answer. `slot` is the caller's own tag (e.g. an mget position). */
export interface OpWaiter {
  onResult(result: BatchResult, index: number, slot: number): void;
  onFail(code: ErrorCode, message: string): void;
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

/** A shard's link to the worker that owns it. */
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
   * The front's view of this worker's hot-read index. Every worker gets a new
   * one, so nothing a replaced (even a hung, still running) worker writes can
   * be read.
   */
  hot: HotIndexReader | null = null;
  /** The worker's row of origin slots: retired with the worker, so what it held is given back (origin/slots.ts). */
  originRow: SharedArrayBuffer | null = null;
  constructor(readonly index: number) {}
}

export interface ShardPoolOptions {
  readonly shards: number;
  readonly workerData: ShardWorkerData;
  /** Past this, waiting ops get E_SHARD_TIMEOUT and the shard's worker is replaced. */
  readonly requestTimeoutMs: number;
  /** The worker module (URL); tests substitute one that misbehaves. @default ./worker.js */
  readonly workerFile?: string;
}

const WORKER_FILE = new URL('./worker.js', import.meta.url).href;
/**
 * Young generation of each shard worker's V8 heap, MiB. V8's default lets it
 * grow to about 48 MiB per thread, reserved for good once reached. A shard's
 * short-lived objects (batch messages, answers, L2 replies) need less, but
 * not much less: at 4 MiB the garbage collector took 14 % of a shard's CPU
 * under L2 hits, at 16 MiB 10.5 % (9 % at V8's default), so 16 it is
 * (docs/memory.md, native-bench/README.md).
 */
export const SHARD_YOUNG_GENERATION_MB = 16;
const kQueueOptions = Piscina.queueOptionsSymbol;

/**
 * The shard workers. Piscina owns the threads (exactly one per shard, replaced
 * when one dies) and its loadBalancer gives each worker one attach task that
 * pins a shard to it. Ops then travel over that shard's own MessagePort: queued
 * per shard and sent as one batch per shard per event-loop turn (setImmediate),
 * because the thread hop, not the cache work, is what costs. A piscina task
 * per batch measured 15–20% slower than a port message (native-bench/README.md).
 */
export class ShardPool {
  readonly shards: number;
  readonly #pool: Piscina;
  readonly #timeoutMs: number;
  readonly #links: ShardLink[];
  readonly #watchdog: NodeJS.Timeout;
  readonly #attachWaiters = new Set<() => void>();
  readonly #hotShape: HotIndexShape | null;
  /** The node's origin slots (null without origins), and how many rules they count. */
  readonly #originSlots: OriginSlots | null;
  readonly #originRules: number;
  #flushScheduled = false;
  #closed = false;

  constructor(options: ShardPoolOptions) {
    this.shards = options.shards;
    this.#timeoutMs = options.requestTimeoutMs;
    this.#hotShape = options.workerData.hotIndexShape;
    const origins = options.workerData.origins;
    this.#originRules = origins?.rules.length ?? 0;
    this.#originSlots = origins === null ? null : new OriginSlots(this.#originRules, origins.slots);
    this.#links = Array.from({ length: options.shards }, (_, i) => new ShardLink(i));
    const links = this.#links;
    this.#pool = new Piscina({
      filename: options.workerFile ?? WORKER_FILE,
      minThreads: options.shards,
      maxThreads: options.shards,
      idleTimeout: Number.POSITIVE_INFINITY,
      // Workers keep their event loop (port messages, timers, later Redis sockets): no Atomics.wait.
      atomics: 'disabled',
      resourceLimits: { maxYoungGenerationSizeMb: SHARD_YOUNG_GENERATION_MB },
      workerData: options.workerData,
      // Key affinity: an attach task goes to the worker chosen for its shard, and to no other.
      loadBalancer: (task, workers) => {
        const shard = (task as unknown as Record<symbol, { shard: number } | undefined>)[kQueueOptions]?.shard;
        const id = shard === undefined ? -1 : (links[shard]?.threadId ?? -1);
        for (const worker of workers) if (worker.id === id && !worker.terminating && !worker.destroyed) return worker;
        return null;
      },
    });
    this.#pool.on('workerCreate', (worker: { id: number }) => this.#adopt(worker.id));
    this.#pool.on('workerDestroy', (worker: { id: number }) => {
      const link = links.find((l) => l.threadId === worker.id);
      if (link !== undefined) this.#detach(link, 'E_SHARD_UNAVAILABLE', `shard ${link.index} lost its worker; retry`);
    });
    // A dying worker's error reaches its attach task; the pool-level event must not crash the node.
    this.#pool.on('error', () => {});
    this.#watchdog = setInterval(() => this.#checkDeadlines(), Math.max(5, Math.min(250, this.#timeoutMs / 4)));
    this.#watchdog.unref();
  }

  /** Gives a new worker the first shard without one and sends it the attach task. */
  #adopt(threadId: number): void {
    const link = this.#links.find((l) => l.threadId === -1);
    if (link === undefined || this.#closed) return;
    link.threadId = threadId;
    const { port1, port2 } = new MessageChannel();
    const hotIndex = this.#hotShape === null ? null : allocateHotIndex(this.#hotShape);
    const originRow = this.#originSlots === null ? null : OriginSlots.newRow(this.#originRules);
    link.originRow = originRow;
    const task: AttachTask & { [kQueueOptions]: { shard: number } } = {
      shard: link.index,
      port: port2,
      hotIndex,
      originRow,
      [kQueueOptions]: { shard: link.index },
    };
    this.#pool.run(task, { transferList: [port2] }).then(
      () => this.#detach(link, 'E_SHARD_UNAVAILABLE', `shard ${link.index} worker stopped`, threadId),
      (err: unknown) => this.#detach(link, 'E_SHARD_UNAVAILABLE', `shard ${link.index} worker failed: ${(err as Error)?.message ?? err}`, threadId),
    );
    port1.on('message', (buffer: ArrayBuffer) => this.#settle(link, buffer));
    link.hot = hotIndex === null || this.#hotShape === null ? null : new HotIndexReader(hotIndex, this.#hotShape);
    link.port = port1;
    for (const wake of this.#attachWaiters) wake();
  }

  /** Unlinks a shard from its worker (gone or hung) and fails what it owed. */
  #detach(link: ShardLink, code: ErrorCode, message: string, threadId = link.threadId): void {
    if (link.threadId !== threadId || threadId === -1) return;
    link.threadId = -1;
    link.port?.close();
    link.port = null;
    // The replacement starts with an empty L1 and its own index: nothing the old worker published is read again.
    link.hot = null;
    // Origin requests the old worker had in flight will never give their slots back: give them back now.
    if (link.originRow !== null) this.#originSlots?.retire(link.originRow);
    link.originRow = null;
    const owed = [...link.inFlight.values()];
    link.inFlight.clear();
    for (const batch of owed) batch.fail(code, message);
  }

  /** Resolves when every shard has a worker (rejects after 30 s). */
  async ready(): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (this.#links.some((l) => l.port === null)) {
      if (Date.now() > deadline) throw new Error('shard workers did not start within 30 s');
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.#attachWaiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, 100);
        this.#attachWaiters.add(wake);
      });
    }
  }

  /** True while the shard has a worker to take ops. */
  isUp(shard: number): boolean {
    return this.#links[shard]?.port != null;
  }

  /** The shard's hot-read index, or null while the shard has no worker (or the index is off). */
  hotReader(shard: number): HotIndexReader | null {
    const link = this.#links[shard] as ShardLink;
    return link.port === null ? null : link.hot;
  }

  /** Thread id of each shard's worker (-1 where none). */
  workerThreadIds(): readonly number[] {
    return this.#links.map((l) => l.threadId);
  }

  /** Queues one op for the shard's next batch. For PUT, `args.value`'s buffer is transferred. */
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

  /** Fails a shard's batches past their deadline and replaces the worker that sat on them. */
  #checkDeadlines(): void {
    const now = performance.now();
    for (const link of this.#links) {
      const oldest = link.inFlight.values().next().value;
      if (oldest === undefined || now - oldest.sentAt < this.#timeoutMs) continue;
      const threadId = link.threadId;
      this.#detach(link, 'E_SHARD_TIMEOUT', `shard ${link.index} did not answer within ${this.#timeoutMs} ms; its worker is being replaced`);
      for (const worker of this.#pool.threads) if (worker.threadId === threadId) void worker.terminate();
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

  /** Stops taking ops, waits for in-flight batches (up to timeoutMs), then stops the workers. */
  async close(timeoutMs: number): Promise<void> {
    this.#closed = true;
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    clearInterval(this.#watchdog);
    for (const link of this.#links) this.#detach(link, 'E_SHUTTING_DOWN', 'the node is shutting down');
    await this.#pool.destroy();
  }

  /** Test-only: the worker thread that owns a shard. */
  workerThreadOf(shard: number) {
    const id = this.#links[shard]?.threadId;
    return this.#pool.threads.find((w) => w.threadId === id);
  }
}

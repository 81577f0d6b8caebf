import { MessageChannel, type MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { ErrorCode } from '../errors.js';
import { allocateHotIndex, type HotIndexShape, revokeHotIndex } from '../l1/hot-index.js';
import { type ErrorFields, errorFields, type Logger, type ShardLoss, SILENT_LOG } from '../log.js';
import { OriginSlots } from '../origin/slots.js';
import { ShardClient } from './client.js';
import type { AttachTask, ConnectMessage } from './protocol.js';
import type { ShardWorkerData } from './worker.js';

/** A thread's shard client as the supervisor sees it: told when a shard's worker comes and goes. */
export interface ShardConnector {
  /** A new worker owns `shard`: `port` reaches it, `hotIndex` is its hot-read index (null when off). */
  connect(shard: number, threadId: number, port: MessagePort, hotIndex: SharedArrayBuffer | null): void;
  /** The worker is gone (or being replaced): what it owed fails with code. */
  disconnect(shard: number, threadId: number, code: ErrorCode, message: string): void;
}

/** A shard's worker as the supervisor holds it. */
class ShardSeat {
  /** threadId of the owning worker, -1 while there is none. */
  threadId = -1;
  /** The worker's control port: client ports are handed to it there. */
  control: MessagePort | null = null;
  /** True once the worker has taken the shard (it said so on the control port) and serves. */
  attached = false;
  hotIndex: SharedArrayBuffer | null = null;
  /** The worker's row of origin slots: retired with the worker, so what it held is given back (origin/slots.ts). */
  originRow: SharedArrayBuffer | null = null;
  /** The worker this seat lost last and why, until its replacement has taken the shard (then logged as shard.replaced). */
  lost: { readonly threadId: number; readonly reason: ShardLoss } | null = null;
  constructor(readonly index: number) {}
}

export interface ShardSupervisorOptions {
  readonly shards: number;
  readonly workerData: ShardWorkerData;
  /** The worker module (URL); tests substitute one that misbehaves. @default ./worker.js */
  readonly workerFile?: string;
  /** Where workers lost and replaced are logged. @default SILENT_LOG */
  readonly log?: Logger;
}

/** Why a seat is vacated: a worker lost (logged, replaced) or the node shutting down (neither). */
type Vacancy = { readonly reason: ShardLoss; readonly error?: unknown } | { readonly reason: 'shutdown' };

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
 * The shard workers, supervised from the main thread. Piscina owns the
 * threads (exactly one per shard, replaced when one dies) and its
 * loadBalancer gives each worker one attach task that pins a shard to it and
 * carries the worker's control port. Every shard client (one per front, one
 * on the main thread) gets a port of its own to every shard's worker: the
 * supervisor makes a MessageChannel per client per worker and hands one end
 * to each. A piscina task per batch measured 15–20% slower than a port
 * message (native-bench/README.md).
 */
export class ShardSupervisor {
  readonly shards: number;
  readonly #pool: Piscina;
  readonly #seats: ShardSeat[];
  readonly #clients = new Set<ShardConnector>();
  readonly #attachWaiters = new Set<() => void>();
  readonly #hotShape: HotIndexShape | null;
  /** The node's origin slots (null without origins), and how many rules they count. */
  readonly #originSlots: OriginSlots | null;
  readonly #originRules: number;
  readonly #log: Logger;
  #closed = false;

  constructor(options: ShardSupervisorOptions) {
    this.shards = options.shards;
    this.#log = options.log ?? SILENT_LOG;
    this.#hotShape = options.workerData.hotIndexShape;
    const origins = options.workerData.origins;
    this.#originRules = origins?.rules.length ?? 0;
    this.#originSlots = origins === null ? null : new OriginSlots(this.#originRules, origins.slots);
    this.#seats = Array.from({ length: options.shards }, (_, i) => new ShardSeat(i));
    const seats = this.#seats;
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
        const id = shard === undefined ? -1 : (seats[shard]?.threadId ?? -1);
        for (const worker of workers) if (worker.id === id && !worker.terminating && !worker.destroyed) return worker;
        return null;
      },
    });
    this.#pool.on('workerCreate', (worker: { id: number }) => this.#adopt(worker.id));
    this.#pool.on('workerDestroy', (worker: { id: number }) => {
      const seat = seats.find((l) => l.threadId === worker.id);
      if (seat !== undefined) this.#vacate(seat, 'E_SHARD_UNAVAILABLE', `shard ${seat.index} lost its worker; retry`, { reason: 'exit' });
    });
    // A dying worker's error reaches its attach task; the pool-level event must not crash the node.
    this.#pool.on('error', () => {});
  }

  /** Gives a new worker the first shard without one, sends it the attach task, and connects every client. */
  #adopt(threadId: number): void {
    const seat = this.#seats.find((l) => l.threadId === -1);
    if (seat === undefined || this.#closed) return;
    seat.threadId = threadId;
    const { port1: control, port2: workerControl } = new MessageChannel();
    seat.control = control;
    seat.attached = false;
    control.once('message', () => {
      if (seat.control !== control) return;
      seat.attached = true;
      const lost = seat.lost;
      seat.lost = null;
      if (lost !== null) {
        this.#log.event(
          'shard.replaced',
          { shard: seat.index, threadId, previousThreadId: lost.threadId, reason: lost.reason },
          `strata: shard ${seat.index} has a new worker (thread ${threadId}, replacing thread ${lost.threadId}: ${lost.reason})`,
        );
      }
      for (const wake of this.#attachWaiters) wake();
    });
    seat.hotIndex = this.#hotShape === null ? null : allocateHotIndex(this.#hotShape);
    seat.originRow = this.#originSlots === null ? null : OriginSlots.newRow(this.#originRules);
    const task: AttachTask & { [kQueueOptions]: { shard: number } } = {
      shard: seat.index,
      control: workerControl,
      hotIndex: seat.hotIndex,
      originRow: seat.originRow,
      [kQueueOptions]: { shard: seat.index },
    };
    this.#pool.run(task, { transferList: [workerControl] }).then(
      () => this.#vacate(seat, 'E_SHARD_UNAVAILABLE', `shard ${seat.index} worker stopped`, { reason: 'exit' }, threadId),
      (err: unknown) =>
        this.#vacate(
          seat,
          'E_SHARD_UNAVAILABLE',
          `shard ${seat.index} worker failed: ${(err as Error)?.message ?? err}`,
          { reason: 'crash', error: err },
          threadId,
        ),
    );
    for (const client of this.#clients) this.#link(seat, client);
  }

  /** A port between one client and a seat's worker. */
  #link(seat: ShardSeat, client: ShardConnector): void {
    if (seat.control === null) return;
    const { port1, port2 } = new MessageChannel();
    const connect: ConnectMessage = { port: port2 };
    seat.control.postMessage(connect, [port2]);
    client.connect(seat.index, seat.threadId, port1, seat.hotIndex);
  }

  /** Unlinks a shard from its worker (gone or hung): every client fails what it owed. */
  #vacate(seat: ShardSeat, code: ErrorCode, message: string, vacancy: Vacancy, threadId = seat.threadId): void {
    if (seat.threadId !== threadId || threadId === -1) return;
    seat.threadId = -1;
    if (vacancy.reason !== 'shutdown' && !this.#closed) {
      // A replacement that dies before it took the shard keeps the first loss's thread as the one replaced.
      seat.lost ??= { threadId, reason: vacancy.reason };
      const error: Partial<ErrorFields> = 'error' in vacancy ? errorFields(vacancy.error) : {};
      this.#log.event(
        'shard.exit',
        { shard: seat.index, threadId, reason: vacancy.reason, ...error },
        `strata: shard ${seat.index} lost its worker (thread ${threadId}: ${vacancy.reason}${error.error === undefined ? '' : `, ${error.error}`}); replacing it`,
      );
    }
    seat.control?.close();
    seat.control = null;
    seat.attached = false;
    // Before any client hears of it: no front serves the old worker's copies from here on.
    if (seat.hotIndex !== null && this.#hotShape !== null) revokeHotIndex(seat.hotIndex, this.#hotShape);
    seat.hotIndex = null;
    // Origin requests the old worker had in flight will never give their slots back: give them back now.
    if (seat.originRow !== null) this.#originSlots?.retire(seat.originRow);
    seat.originRow = null;
    for (const client of this.#clients) client.disconnect(seat.index, threadId, code, message);
  }

  /** Connects a client to every shard now and to every worker that comes later; returns how to forget it. */
  addClient(client: ShardConnector): () => void {
    this.#clients.add(client);
    for (const seat of this.#seats) this.#link(seat, client);
    return () => this.#clients.delete(client);
  }

  /**
   * A shard client on the calling thread (the main thread's, for the bus and
   * PostgreSQL), connected to every shard; a deadline it sees passed replaces
   * the worker.
   */
  localClient(requestTimeoutMs: number): ShardClient {
    const client = new ShardClient({ shards: this.shards, requestTimeoutMs, onTimeout: (shard, threadId) => this.replace(shard, threadId) });
    this.addClient({
      connect: (shard, threadId, port) => client.connect(shard, threadId, port, null),
      disconnect: (shard, threadId, code, message) => client.disconnect(shard, threadId, code, message),
    });
    return client;
  }

  /** A client saw the shard's worker sit on a batch past the deadline: replace that worker (if it still owns the shard). */
  replace(shard: number, threadId: number): void {
    const seat = this.#seats[shard];
    if (seat === undefined || seat.threadId !== threadId || threadId === -1) return;
    this.#vacate(seat, 'E_SHARD_TIMEOUT', `shard ${shard} did not answer in time; its worker is being replaced`, { reason: 'timeout' });
    for (const worker of this.#pool.threads) if (worker.threadId === threadId) void worker.terminate();
  }

  /** Resolves when every shard's worker has taken its shard (rejects after 30 s). */
  async ready(): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (this.#seats.some((l) => !l.attached)) {
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

  /** True while the shard has a worker that has taken it. */
  isUp(shard: number): boolean {
    return this.#seats[shard]?.attached === true;
  }

  /** Thread id of each shard's worker (-1 where none). */
  workerThreadIds(): readonly number[] {
    return this.#seats.map((l) => l.threadId);
  }

  /** Stops the workers (the clients have closed their ports by now). */
  async close(): Promise<void> {
    this.#closed = true;
    for (const seat of this.#seats) this.#vacate(seat, 'E_SHUTTING_DOWN', 'the node is shutting down', { reason: 'shutdown' });
    this.#clients.clear();
    await this.#pool.destroy();
  }

  /** Test-only: the worker thread that owns a shard. */
  workerThreadOf(shard: number) {
    const id = this.#seats[shard]?.threadId;
    return this.#pool.threads.find((w) => w.threadId === id);
  }
}

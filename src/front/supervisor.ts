import { Worker } from 'node:worker_threads';
import type { MemberConfig } from '../cluster/members.js';
import type { StrataConfig } from '../config/schema.js';
import { FrontCounters } from '../counters/counters.js';
import { PortInUseError } from '../errors.js';
import type { HotIndexShape } from '../l1/hot-index.js';
import { describeError, errorFields, type Logger } from '../log.js';
import type { ShardSupervisor } from '../shards/supervisor.js';
import { type FromFront, type FrontWorkerData, internalAnswer, type Question, type SupervisorAnswer, type ToFront } from './messages.js';

const FRONT_FILE = new URL('./thread.js', import.meta.url);
/**
 * Young generation of each front's V8 heap, MiB: 2 MiB semi-spaces, as the
 * single front on the main thread had (`--max-semi-space-size=2`). A front's
 * garbage is small and short-lived (request objects, batch messages); a
 * larger young generation is reserved for good once reached (docs/memory.md).
 */
export const FRONT_YOUNG_GENERATION_MB = 6;
/** A front that dies is replaced after this long, doubling while replacements keep dying (up to 5 s). */
const RESTART_DELAY_MS = 50;
const MAX_RESTART_DELAY_MS = 5000;
/** How long shutdown waits for each front to end after asking it to, and past the drain deadline for its 'drained'. */
export const CLOSE_WAIT_MS = 1000;
/** A replacement that runs this long resets the delay. */
const STABLE_AFTER_MS = 10_000;

export interface FrontSupervisorOptions {
  readonly config: StrataConfig;
  /** The port every front listens on (claimed by the supervisor; never 0). */
  readonly port: number;
  readonly frontCounters: SharedArrayBuffer;
  readonly hotIndexShape: HotIndexShape | null;
  readonly shards: ShardSupervisor;
  /** This node's id on the ring (resolved: never empty). */
  readonly nodeId: string;
  /** Renders the answers a front asks for (readiness, metrics, stats, cluster). */
  readonly answer: (question: Question) => Promise<SupervisorAnswer>;
  /** Where fronts that fail, are replaced or hang are logged. */
  readonly log: Logger;
}

/** One front's seat: the thread running it now, if any. */
class FrontSeat {
  worker: Worker | null = null;
  startedAt = 0;
  restartDelayMs = RESTART_DELAY_MS;
  /** Forgets this thread as a shard client. */
  forget: (() => void) | null = null;
  drained: (() => void) | null = null;
  exited: Promise<void> = Promise.resolve();
  constructor(readonly index: number) {}
}

/**
 * The fronts, supervised from the main thread: F worker threads, each a uWS
 * app on the same port (SO_REUSEPORT), each connected to every shard. A front
 * that dies (an uncaught exception) is replaced; its connections are lost,
 * the other fronts are not affected. A front is never terminated from
 * outside: uWS's native handles must be closed by the thread itself before it
 * ends, or the whole process aborts; so shutdown asks each front to drain and
 * then to close.
 */
export class FrontSupervisor {
  readonly #options: FrontSupervisorOptions;
  readonly #seats: FrontSeat[];
  #closing = false;
  /** The ring's members as last set: every front, a replacement too, routes by them. */
  #ring: readonly MemberConfig[] = [];

  constructor(options: FrontSupervisorOptions) {
    this.#options = options;
    this.#seats = Array.from({ length: options.config.fronts }, (_, i) => new FrontSeat(i));
  }

  /** Starts every front; resolves once each listens on the port. */
  async start(): Promise<void> {
    try {
      await Promise.all(this.#seats.map((seat) => this.#spawn(seat)));
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  /** A new ring (membership changed): every front routes by it from its next request. */
  setRing(members: readonly MemberConfig[]): void {
    this.#ring = members;
    for (const seat of this.#seats) seat.worker?.postMessage({ type: 'ring', members } satisfies ToFront);
  }

  /** Starts a thread for a seat (a replacement of a front that died, or the first); resolves once it listens. */
  #spawn(seat: FrontSeat, replacement = false): Promise<void> {
    const { config, port, frontCounters, hotIndexShape, shards, nodeId } = this.#options;
    const data: FrontWorkerData = { front: seat.index, config, port, frontCounters, hotIndexShape, nodeId };
    const worker = new Worker(FRONT_FILE, {
      workerData: data,
      name: `strata-front-${seat.index}`,
      resourceLimits: { maxYoungGenerationSizeMb: FRONT_YOUNG_GENERATION_MB },
    });
    seat.worker = worker;
    seat.startedAt = Date.now();
    const post = (message: ToFront, transfer?: readonly import('node:worker_threads').TransferListItem[]) => {
      if (seat.worker === worker) worker.postMessage(message, transfer);
    };
    seat.forget = shards.addClient({
      connect: (shard, threadId, shardPort, hotIndex) => post({ type: 'shard', shard, threadId, port: shardPort, hotIndex }, [shardPort]),
      disconnect: (shard, threadId, code, message) => post({ type: 'shardDown', shard, threadId, code, message }),
    });
    // After every shard's port and the ring (messages keep their order): a front takes no request before it can route it.
    if (this.#ring.length > 0) post({ type: 'ring', members: this.#ring });
    post({ type: 'listen' });
    let exit: () => void = () => {};
    seat.exited = new Promise<void>((resolve) => {
      exit = resolve;
    });
    return new Promise<void>((resolve, reject) => {
      let listening = false;
      worker.on('message', (message: FromFront) => {
        switch (message.type) {
          case 'listening':
            listening = true;
            resolve();
            return;
          case 'listenFailed':
            // The claim found the port free a moment ago: someone took it since (or binding is not permitted).
            reject(new PortInUseError(config.host, port, `front ${seat.index} could not bind it (${message.message})`));
            post({ type: 'close' });
            return;
          case 'ask':
            void this.#options.answer(message.question).then(
              (answer) => post({ type: 'answer', id: message.id, answer }),
              // Not the error's message: it may quote what it failed on (a key on the hot-keys board, say).
              (err: unknown) =>
                post({ type: 'answer', id: message.id, answer: internalAnswer(`the supervisor could not answer ${message.question} (${describeError(err)})`) }),
            );
            return;
          case 'timeout':
            shards.replace(message.shard, message.threadId);
            return;
          case 'drained':
            seat.drained?.();
            return;
        }
      });
      worker.on('error', (err) => {
        // Not the message: a front's error may quote the request it failed on (docs/logs.md).
        this.#options.log.event('front.error', { front: seat.index, ...errorFields(err) }, `strata: front ${seat.index} failed: ${describeError(err)}`);
      });
      worker.once('exit', (code) => {
        seat.forget?.();
        seat.forget = null;
        seat.worker = null;
        seat.drained?.();
        // Its requests in flight are gone with it (its region has no writer until a replacement starts).
        new FrontCounters(frontCounters, seat.index, config.shards).exited();
        exit();
        if (!listening) reject(new Error(`front ${seat.index} exited with code ${code} before it listened`));
        // A front that ran, or a replacement that failed to start: try again (the delay grows); the first start's failure fails the node.
        if (this.#closing || (!listening && !replacement)) return;
        this.#replace(seat, code);
      });
    });
  }

  /** Starts a replacement for a front that died, after a delay that grows while replacements keep dying. */
  #replace(seat: FrontSeat, code: number): void {
    const stable = Date.now() - seat.startedAt > STABLE_AFTER_MS;
    const delay = stable ? RESTART_DELAY_MS : seat.restartDelayMs;
    seat.restartDelayMs = Math.min(MAX_RESTART_DELAY_MS, delay * 2);
    const log = this.#options.log;
    log.event(
      'front.exit',
      { front: seat.index, exitCode: code, replaceInMs: delay },
      `strata: front ${seat.index} exited with code ${code}; replacing it in ${delay} ms`,
    );
    setTimeout(() => {
      if (this.#closing) return;
      this.#spawn(seat, true).then(
        () => log.event('front.replaced', { front: seat.index, exitCode: code }, `strata: front ${seat.index} replaced; it listens again`),
        (err: unknown) => {
          // Strata's own errors (the port taken, the thread ended before it listened): no request data in them.
          log.event(
            'front.replace_failed',
            { front: seat.index, code: errorFields(err).code ?? null },
            `strata: front ${seat.index} could not be replaced: ${err instanceof Error ? err.message : String(err)}`,
          );
        },
      );
    }, delay).unref();
  }

  /** Each front's thread (null while it is being replaced). Test-only. */
  threadOf(front: number): Worker | null {
    return this.#seats[front]?.worker ?? null;
  }

  /** Test-only: makes a front fail as a bug in a handler would. */
  crash(front: number): void {
    this.#seats[front]?.worker?.postMessage({ type: 'crash' } satisfies ToFront);
  }

  /** Shutdown, step 1: every front stops accepting and finishes its requests in flight (until deadlineMs, epoch ms). */
  async drain(deadlineMs: number): Promise<void> {
    this.#closing = true;
    const drained = Promise.all(
      this.#seats.map(
        (seat) =>
          new Promise<void>((resolve) => {
            if (seat.worker === null) return resolve();
            seat.drained = resolve;
            seat.worker.postMessage({ type: 'drain', deadlineMs } satisfies ToFront);
          }),
      ),
    );
    // A hung front never says 'drained': shutdown goes on without it.
    await this.#within(drained, Math.max(0, deadlineMs - Date.now()) + CLOSE_WAIT_MS, 'drain');
  }

  /** Waits for `work` at most `ms`; says so when it gave up. */
  async #within(work: Promise<unknown>, ms: number, what: 'drain' | 'stop'): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), ms);
    });
    const ended = await Promise.race([work, late]);
    clearTimeout(timer);
    if (ended === 'late') {
      this.#options.log.event(
        'front.hung',
        { step: what, waitedMs: ms },
        `strata: a front did not ${what} within ${ms} ms (hung); shutdown goes on without it`,
      );
    }
  }

  /**
   * Shutdown, step 2: every front closes its connections and ends. A front
   * that does not end within CLOSE_WAIT_MS (a hung handler) is left behind:
   * it cannot be terminated safely (see the class comment), so the process
   * ends with it still running, and Node may then abort instead of exiting
   * cleanly.
   */
  async close(): Promise<void> {
    this.#closing = true;
    for (const seat of this.#seats) seat.worker?.postMessage({ type: 'close' } satisfies ToFront);
    await this.#within(Promise.all(this.#seats.map((seat) => seat.exited)), CLOSE_WAIT_MS, 'stop');
  }
}

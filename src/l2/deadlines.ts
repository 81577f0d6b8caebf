import { L2UnavailableError } from '../errors.js';

interface Pending {
  readonly at: number;
  /** What is waited for, for the timeout's message. */
  readonly what: string;
  settled: boolean;
  readonly reject: (err: L2UnavailableError) => void;
}

/**
 * Deadlines for operations that all get the same time limit, without a timer
 * per operation: deadlines then arrive in the order the operations started,
 * so one queue and one sweeping timer suffice (a timer per L2 read cost more
 * than the read's own bookkeeping). An operation past its deadline is
 * rejected with kind `timeout` at the next sweep, at most `deadlineMs / 10`
 * (≥ 1 ms, ≤ 25 ms) late.
 */
export class DeadlineQueue {
  readonly #deadlineMs: number;
  readonly #sweepMs: number;
  #queue: Pending[] = [];
  #head = 0;
  #timer: NodeJS.Timeout | null = null;

  constructor(deadlineMs: number) {
    this.#deadlineMs = deadlineMs;
    this.#sweepMs = Math.max(1, Math.min(25, Math.floor(deadlineMs / 10)));
  }

  /** Settles like `promise`, or rejects with an L2 timeout `deadlineMs` after now, whichever is first. */
  bound<T>(promise: Promise<T>, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const pending: Pending = { at: performance.now() + this.#deadlineMs, what, settled: false, reject };
      this.#queue.push(pending);
      this.#timer ??= setInterval(() => this.#sweep(), this.#sweepMs);
      promise.then(
        (value) => {
          pending.settled = true;
          resolve(value);
        },
        (err: unknown) => {
          pending.settled = true;
          reject(err);
        },
      );
    });
  }

  #sweep(): void {
    const now = performance.now();
    const queue = this.#queue;
    let head = this.#head;
    while (head < queue.length) {
      const pending = queue[head] as Pending;
      if (!pending.settled) {
        if (pending.at > now) break;
        pending.settled = true;
        pending.reject(new L2UnavailableError('timeout', `${pending.what} took longer than ${this.#deadlineMs} ms`));
      }
      head++;
    }
    if (head === queue.length) {
      // Nothing waits: stop sweeping until the next operation.
      this.#queue = [];
      this.#head = 0;
      if (this.#timer !== null) clearInterval(this.#timer);
      this.#timer = null;
    } else if (head > 1024 && head * 2 > queue.length) {
      this.#queue = queue.slice(head);
      this.#head = 0;
    } else {
      this.#head = head;
    }
  }

  /** Stops the sweeping timer (pending operations are left to settle by themselves). */
  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}

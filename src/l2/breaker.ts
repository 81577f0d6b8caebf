/** Where a circuit breaker is. */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  /** Consecutive failures that open the circuit. @default 5 */
  readonly failureThreshold?: number;
  /** How long the circuit stays open before one probe is let through, ms. @default 1000 */
  readonly cooldownMs?: number;
  /** Clock in ms; tests pass a fake one. @default performance.now */
  readonly now?: () => number;
}

/**
 * A circuit breaker: after `failureThreshold` failures in a row it opens and
 * refuses calls at once, so a dead or hung dependency is not hammered and
 * callers fail fast; after `cooldownMs` it lets one probe through
 * (half-open): success closes it, failure opens it for another cooldown.
 */
export class CircuitBreaker {
  readonly #threshold: number;
  readonly #cooldownMs: number;
  readonly #now: () => number;
  #state: BreakerState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #probing = false;

  constructor(options: BreakerOptions = {}) {
    this.#threshold = options.failureThreshold ?? 5;
    this.#cooldownMs = options.cooldownMs ?? 1000;
    this.#now = options.now ?? (() => performance.now());
    if (!Number.isInteger(this.#threshold) || this.#threshold < 1) throw new RangeError('failureThreshold must be an integer ≥ 1');
    if (!(this.#cooldownMs >= 0)) throw new RangeError('cooldownMs must be ≥ 0');
  }

  get state(): BreakerState {
    if (this.#state === 'open' && this.#now() - this.#openedAt >= this.#cooldownMs) return 'half-open';
    return this.#state;
  }

  /** May a call go ahead now? In half-open, only one (the probe) until it reports. */
  allow(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.#probing) return false;
    this.#state = 'half-open';
    this.#probing = true;
    return true;
  }

  /** The call that was allowed succeeded. */
  success(): void {
    this.#failures = 0;
    this.#probing = false;
    this.#state = 'closed';
  }

  /** The call that was allowed failed. */
  failure(): void {
    this.#failures++;
    if (this.#probing || this.#failures >= this.#threshold) {
      this.#state = 'open';
      this.#openedAt = this.#now();
      this.#probing = false;
    }
  }
}

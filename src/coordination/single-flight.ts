/**
 * One run per key at a time (groupcache's singleflight): a caller for a key
 * whose run is in flight shares that run's result instead of starting
 * another. The run is forgotten when it settles, so the next caller starts a
 * fresh one.
 */
export class SingleFlight<T> {
  readonly #flights = new Map<string, Promise<T>>();

  /** Runs `start` for key unless a run is in flight; `joined` is true when this call shares one. */
  run(key: string, start: () => Promise<T>): { readonly promise: Promise<T>; readonly joined: boolean } {
    const inFlight = this.#flights.get(key);
    if (inFlight !== undefined) return { promise: inFlight, joined: true };
    const promise = start().finally(() => {
      if (this.#flights.get(key) === promise) this.#flights.delete(key);
    });
    this.#flights.set(key, promise);
    return { promise, joined: false };
  }

  /** True while a run for key is in flight. */
  has(key: string): boolean {
    return this.#flights.has(key);
  }

  /** Runs in flight. */
  get size(): number {
    return this.#flights.size;
  }
}

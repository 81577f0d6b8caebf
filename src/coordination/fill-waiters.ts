/**
 * Requests waiting for a key to be filled by someone else (another node's
 * origin load, a lease holder's PUT). A wait ends when the key is noticed
 * (the bus brought another node's write of it, or this node wrote it), or
 * after its poll interval, whichever is first; the waiter then looks at the
 * L2 again. Bus first, polling as the fallback: a lost bus message costs one
 * poll interval, never the whole wait.
 */
export class FillWaiters {
  readonly #waiting = new Map<string, Set<() => void>>();

  /** Resolves after ms, or as soon as key is noticed. */
  wait(key: string, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      let set = this.#waiting.get(key);
      if (set === undefined) {
        set = new Set();
        this.#waiting.set(key, set);
      }
      const waiters = set;
      const wake = () => {
        clearTimeout(timer);
        waiters.delete(wake);
        if (waiters.size === 0 && this.#waiting.get(key) === waiters) this.#waiting.delete(key);
        resolve();
      };
      const timer = setTimeout(wake, Math.max(0, ms));
      waiters.add(wake);
    });
  }

  /** Wakes every wait on key (something was written or dropped for it). */
  notice(key: string): void {
    const set = this.#waiting.get(key);
    if (set === undefined) return;
    for (const wake of [...set]) wake();
  }

  /** Wakes every wait (the bus may have lost messages). */
  noticeAll(): void {
    for (const key of [...this.#waiting.keys()]) this.notice(key);
  }

  /** Keys with a wait in progress. */
  get keys(): number {
    return this.#waiting.size;
  }
}

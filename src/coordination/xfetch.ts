/**
 * Probabilistic early refresh, "XFetch" (Vattani, Chierichetti, Lowenstein,
 * "Optimal Probabilistic Cache Stampede Prevention", VLDB 2015): a reader
 * refreshes a value before it expires when
 *
 *   now − δ · β · ln(rand) ≥ expiry        (rand uniform in (0, 1])
 *
 * δ is how long the last load took and β ≥ 0 scales eagerness (1 is the
 * paper's optimum; 0 turns it off). −ln(rand) is exponential with mean 1: a
 * read δ·β before expiry refreshes with probability 1/e, and reads close to
 * expiry almost surely do, so under steady load one read refreshes a hot key
 * shortly before it expires and nobody waits for the load.
 */
export function refreshEarly(nowMs: number, expiresMs: number, deltaMs: number, beta: number, random: () => number = Math.random): boolean {
  if (beta <= 0 || deltaMs <= 0) return false;
  // 1 − random() is in (0, 1]: ln never sees 0.
  return nowMs - deltaMs * beta * Math.log(1 - random()) >= expiresMs;
}

/**
 * How long before expiry XFetch can realistically fire: from there on the
 * probability of an early refresh per read is above e^−EARLY_WINDOW_SPAN
 * (1.8 %). Reads the front answers from the hot-read index do not run XFetch,
 * so a hot entry is withdrawn from the index this long before it expires and
 * its last reads go to the shard, which does.
 */
export function earlyWindowMs(deltaMs: number, beta: number): number {
  return beta <= 0 || deltaMs <= 0 ? 0 : deltaMs * beta * EARLY_WINDOW_SPAN;
}

const EARLY_WINDOW_SPAN = 4;

/** Tuning of the stampede protection (config: coordination). */
export interface CoordinationSettings {
  /** First poll interval of a wait for another holder's fill, ms (doubles up to maxPollMs). */
  readonly pollMs: number;
  readonly maxPollMs: number;
  /** XFetch's β: how early hot keys are refreshed; 0 turns early refresh off. */
  readonly earlyRefreshBeta: number;
  /** Every answer comes within this long of its batch, ms (below requestTimeoutMs, past which a shard client fails the batch). */
  readonly answerWithinMs: number;
}

export const COORDINATION_DEFAULTS: CoordinationSettings = { pollMs: 20, maxPollMs: 200, earlyRefreshBeta: 1, answerWithinMs: 4000 };

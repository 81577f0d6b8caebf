import { L2_ERROR_KINDS } from '../counters/layout.js';
import type { ErrorCode } from '../errors.js';
import type { BusApply } from '../l2/node-link.js';
import type { BatchResult, OpWaiter, ShardSink } from '../shards/client.js';
import { OP, STATUS } from '../shards/protocol.js';
import { shardOf } from '../shards/route.js';

/** Why an invalidation failed: the first failure among its ops. */
export interface InvalidationFailure {
  readonly code: ErrorCode;
  readonly message: string;
}

/** The message of a 503 E_L2_UNAVAILABLE for an op the shard answered with STATUS.L2_ERROR. */
export function l2ErrorMessage(result: BatchResult, index: number): string {
  const kind = L2_ERROR_KINDS[result.arg(index)] ?? 'connection';
  const why =
    kind === 'timeout'
      ? 'did not answer within l2TimeoutMs'
      : kind === 'breaker'
        ? 'is failing; the circuit is open and Strata is probing it'
        : kind === 'cluster'
          ? 'cluster is failing over or misconfigured'
          : kind === 'reply'
            ? 'holds a value under this key that Strata did not write; PUT or DELETE the key'
            : 'is unreachable';
  return kind === 'reply' ? `the L2 (Redis) ${why} (${kind})` : `the L2 (Redis) ${why} (${kind}); retry`;
}

/** Ops submitted together, counted down as they answer; settles with the sum of their counts or the first failure. */
class Step implements OpWaiter {
  remaining: number;
  count = 0;
  failure: InvalidationFailure | null = null;
  readonly done: Promise<void>;
  #resolve!: () => void;

  constructor(ops: number) {
    this.remaining = ops;
    this.done = new Promise<void>((resolve) => {
      this.#resolve = resolve;
    });
    if (ops === 0) this.#resolve();
  }

  onResult(result: BatchResult, index: number): void {
    if (result.status(index) === STATUS.L2_ERROR) this.failure ??= { code: 'E_L2_UNAVAILABLE', message: l2ErrorMessage(result, index) };
    else this.count += result.arg(index);
    this.#countDown();
  }

  onFail(code: ErrorCode, message: string): void {
    this.failure ??= { code, message };
    this.#countDown();
  }

  #countDown(): void {
    if (--this.remaining === 0) this.#resolve();
  }
}

/**
 * Invalidates keys and tags on every node, in two steps: key deletes and each
 * tag's sweep on the tag's own shard (L2 and bus included); then every shard
 * of this node drops the tags' entries from its L1, so that nothing a shard
 * read from the L2 before the sweep outlives it. The second step runs
 * whatever the first answered (a sweep that failed or timed out may still
 * have reached Redis). Resolves with how many entries went (as the L2 held
 * them, or the L1s without an L2); rejects with the first failure.
 */
export async function invalidate(pool: ShardSink, keys: readonly string[], tags: readonly string[]): Promise<number> {
  const shards = pool.shards;
  const uniqueKeys = [...new Set(keys)];
  const uniqueTags = [...new Set(tags)];
  const first = new Step(uniqueKeys.length + uniqueTags.length);
  for (const key of uniqueKeys) pool.submit(shardOf(key, shards), OP.DELETE, key, null, first, 0);
  // The tag's own shard sweeps the L2 and tells the other nodes (and cleans its L1); then every shard cleans its L1.
  for (const tag of uniqueTags) pool.submit(shardOf(tag, shards), OP.INVALIDATE_TAG, tag, null, first, 0);
  await first.done;
  const second = new Step(uniqueTags.length * shards);
  for (const tag of uniqueTags) for (let s = 0; s < shards; s++) pool.submit(s, OP.INVALIDATE_TAG_L1, tag, null, second, 0);
  await second.done;
  const failure = first.failure ?? second.failure;
  if (failure !== null) throw failure;
  return first.count + second.count;
}

// Drops sent to the shards on the bus's behalf have nobody waiting for them.
const NOBODY: OpWaiter = { onResult() {}, onFail() {} };

/** Other nodes' invalidations, as L1-only drops on this node's shards (the bus subscription's handler). */
export function remoteDrops(sink: ShardSink): BusApply {
  const shards = sink.shards;
  return {
    keys(keys) {
      for (const key of keys) sink.submit(shardOf(key, shards), OP.DROP, key, null, NOBODY, 0);
    },
    tags(tags) {
      for (const tag of tags) for (let s = 0; s < shards; s++) sink.submit(s, OP.DROP_TAG, tag, null, NOBODY, 0);
    },
    gap() {
      for (let s = 0; s < shards; s++) sink.submit(s, OP.CLEAR, '', null, NOBODY, 0);
    },
  };
}

import { hashKey } from '../hash.js';

/** The shard that owns key, in [0, shards). */
export function shardOf(key: string, shards: number): number {
  return shards === 1 ? 0 : hashKey(key) % shards;
}

/** The shard for a key whose hashKey() the caller already has. */
export function shardOfHash(hash: number, shards: number): number {
  return shards === 1 ? 0 : hash % shards;
}

/**
 * The member registry in the L2 (docs/cluster.md): each node heartbeats a
 * record of itself with a TTL, and reads everyone's. Both keys share the hash
 * tag `{members}`, so in a Redis Cluster they live in one slot and one MGET
 * reads every record. Joins and graceful leaves are also announced on a
 * pub/sub channel, so the others re-read at once instead of at their next
 * poll.
 */
import { Cluster, Redis } from 'ioredis';
import { L2_PREFIX } from '../l2/keys.js';
import { clusterAuth, type L2Target, parseClusterSeeds } from '../l2/target.js';
import { checkNodeId, checkPeerUrl, checkWeight, type MemberConfig } from './members.js';

/** The set of every id that has registered (records expire; ids are forgotten later). */
export const MEMBERS_SET = `${L2_PREFIX}{members}`;
/** The channel joins and leaves are announced on: `join <id>` or `leave <id>`. */
export const MEMBERS_CHANNEL = `${L2_PREFIX}members`;

/** A member's record: `strata:v1:{members}:<id>`. */
export function memberKey(id: string): string {
  return `${MEMBERS_SET}:${id}`;
}

/** What a node says of itself in the registry. */
export interface MemberRecord extends MemberConfig {
  /** When the node started, epoch ms (a restarted node is a new incarnation). */
  readonly startedMs: number;
}

/** One id of the set and its record, or null once the record expired. */
export interface RegistryEntry {
  readonly id: string;
  readonly record: MemberRecord | null;
}

/** An announcement on MEMBERS_CHANNEL. */
export interface Announcement {
  readonly event: 'join' | 'leave';
  readonly id: string;
}

/** The registry's Redis side: a command client and a subscriber, both reconnecting by themselves. */
export class RedisRegistry {
  readonly #client: Redis | Cluster;
  readonly #subscriber: Redis | Cluster;

  constructor(target: L2Target, timeoutMs: number, onAnnouncement: (a: Announcement) => void) {
    // The subscriber has no command timeout: it sends nothing but SUBSCRIBE and then waits, by design.
    const connection = { connectTimeout: timeoutMs, maxRetriesPerRequest: 1, retryStrategy: (times: number) => Math.min(100 * times, 2000) };
    // No offline queue: while Redis is unreachable a heartbeat or a leave fails at once instead of waiting for it.
    const options = { ...connection, commandTimeout: timeoutMs, enableOfflineQueue: false };
    if ('url' in target) {
      this.#client = new Redis(target.url, options);
      this.#subscriber = new Redis(target.url, connection);
    } else {
      const seeds = parseClusterSeeds(target.cluster);
      const auth = clusterAuth(seeds);
      this.#client = new Cluster(
        seeds.nodes.map((n) => ({ ...n })),
        { clusterRetryStrategy: (times) => Math.min(100 * times, 2000), enableOfflineQueue: false, redisOptions: { ...options, ...auth } },
      );
      // PUBLISH in a Redis Cluster reaches every node: one subscription on any of them hears it. A Cluster
      // client subscribes on one node and moves the subscription to another when that one goes away.
      this.#subscriber = new Cluster(
        seeds.nodes.map((n) => ({ ...n })),
        { clusterRetryStrategy: (times) => Math.min(100 * times, 2000), redisOptions: { ...connection, ...auth } },
      );
    }
    // Failures show in the commands' rejections (counted by Membership); the events would only repeat them.
    this.#client.on('error', () => {});
    this.#subscriber.on('error', () => {});
    this.#subscriber.on('message', (_channel: string, text: string) => {
      const space = text.indexOf(' ');
      const event = text.slice(0, space);
      if (event === 'join' || event === 'leave') onAnnouncement({ event, id: text.slice(space + 1) });
    });
    this.#subscriber.subscribe(MEMBERS_CHANNEL).catch(() => {});
  }

  /** Writes (or refreshes) this node's record, to expire after `ttlMs` without another heartbeat. */
  async heartbeat(record: MemberRecord, ttlMs: number): Promise<void> {
    await Promise.all([this.#client.sadd(MEMBERS_SET, record.id), this.#client.set(memberKey(record.id), JSON.stringify(record), 'PX', ttlMs)]);
  }

  /** Every registered id and its record (null when it expired). */
  async list(): Promise<RegistryEntry[]> {
    const ids = (await this.#client.smembers(MEMBERS_SET)).sort();
    if (ids.length === 0) return [];
    const records = await this.#client.mget(ids.map(memberKey));
    return ids.map((id, i) => ({ id, record: parseRecord(id, records[i] ?? null) }));
  }

  /** Drops ids whose records are long gone from the set. */
  async forget(ids: readonly string[]): Promise<void> {
    if (ids.length > 0) await this.#client.srem(MEMBERS_SET, ...ids);
  }

  async announce(event: Announcement['event'], id: string): Promise<void> {
    await this.#client.publish(MEMBERS_CHANNEL, `${event} ${id}`);
  }

  /** A graceful leave: the record goes at once and the others hear of it. */
  async leave(id: string): Promise<void> {
    await Promise.all([this.#client.del(memberKey(id)), this.#client.srem(MEMBERS_SET, id)]);
    await this.announce('leave', id);
  }

  close(): void {
    this.#client.disconnect();
    this.#subscriber.disconnect();
  }
}

/** A record as another node wrote it; anything malformed counts as absent. */
function parseRecord(id: string, text: string | null): MemberRecord | null {
  if (text === null) return null;
  try {
    const r = JSON.parse(text) as Partial<MemberRecord>;
    if (r.id !== id || typeof r.startedMs !== 'number') return null;
    // Checked as the config checks its own members: a bad record must not reach the ring or a peer pool.
    return { id: checkNodeId('record', id), url: checkPeerUrl('record', r.url), weight: checkWeight('record', r.weight ?? 1), startedMs: r.startedMs };
  } catch {
    return null;
  }
}

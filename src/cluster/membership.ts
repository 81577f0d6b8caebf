/**
 * Who is on the ring, as the node's supervisor (main thread) sees it
 * (docs/cluster.md). Members come from the config (static) and, with the
 * registry on, from the L2, where every node heartbeats a record of itself
 * with a TTL. Without the registry the ring is the config's members, always;
 * whether they answer is the fronts' breakers' business. With it, a member
 * (static or not) is on the ring while its record lives and for GRACE_MS
 * after it expired (a node that missed a heartbeat or two is not dropped at
 * once); one that leaves gracefully goes at once; one that comes back
 * rejoins at the next poll. A static member that has not registered yet
 * keeps its place for STATIC_START_GRACE_MS after this node started (nodes
 * of a cluster start at about the same time, some more slowly). This node is always on its own ring. Every node
 * computes the ring from the same records with the same function, so the
 * rings converge within one poll of a change (an announcement makes it
 * sooner).
 *
 * When the registry cannot be read (the L2 is down), the last ring stays:
 * losing Redis must not move keys between nodes that are all still up.
 */
import type { Logger } from '../log.js';
import type { MemberConfig } from './members.js';
import type { Announcement, MemberRecord, RedisRegistry } from './registry.js';
import { Ring } from './ring.js';

/** How often a node heartbeats and re-reads the registry, ms. */
export const HEARTBEAT_MS = 1000;
/** A record's TTL: three heartbeats. */
export const RECORD_TTL_MS = 3 * HEARTBEAT_MS;
/** How long a member whose record expired stays on the ring, ms. */
export const GRACE_MS = 2000;
/** How long a graceful leave may take before shutdown goes on without it, ms. */
const LEAVE_WAIT_MS = 1000;
/** How long a static member that has not registered yet stays on the ring after this node started, ms. */
export const STATIC_START_GRACE_MS = 30_000;
/** After how long an expired id is dropped from the registry's set, ms. */
const FORGET_AFTER_MS = 60_000;

/** A member's state: `up` (config or a live record), `suspect` (record expired, within the grace period). */
export type MemberState = 'up' | 'suspect';

/** One member in /v1/cluster. */
export interface MemberView {
  readonly id: string;
  readonly url: string;
  readonly weight: number;
  readonly self: boolean;
  /** Named in the config's members. */
  readonly static: boolean;
  /** Has a live record in the registry. */
  readonly registered: boolean;
  readonly state: MemberState;
  /** When its record was last seen alive, epoch ms (null: never, or no registry). */
  readonly lastSeenMs: number | null;
}

export interface MembershipOptions {
  /** This node, as the others reach it. */
  readonly self: MemberConfig;
  /** The config's members (this node may be among them). */
  readonly members: readonly MemberConfig[];
  readonly registry: RedisRegistry | null;
  /** Called with the ring's members whenever they change (and once at start). */
  readonly onRing: (members: readonly MemberConfig[]) => void;
  /** Where members joining and leaving the ring are logged. */
  readonly log: Logger;
}

/** What the registry told of another node. */
interface Seen {
  /** Its last live record (null: static and never seen). */
  record: MemberRecord | null;
  lastSeenMs: number | null;
  /** When its record was first found missing (0 while alive, or not yet read). */
  missingSinceMs: number;
}

export class Membership {
  readonly #options: MembershipOptions;
  readonly #startedMs = Date.now();
  /** Every other node the config names or the registry lists. */
  readonly #seen = new Map<string, Seen>();
  readonly #static: ReadonlySet<string>;
  /** Members that announced their leave and have not been dropped yet (the log says why they went). */
  readonly #leaving = new Set<string>();
  #ring: Ring;
  #ringMembers: readonly MemberConfig[] = [];
  #timer: NodeJS.Timeout | null = null;
  #polling = false;
  #pollAgain = false;
  #closed = false;
  /** Registry reads and heartbeats that failed, and the last failure. */
  #errors = 0;
  #lastError = '';
  /** Whether this node's last heartbeat reached the registry. */
  #heartbeatOk = false;
  /** Whether the last poll failed, and when the registry answered again after failures (0: not settling). */
  #lastPollFailed = false;
  #recovered = 0;

  constructor(options: MembershipOptions) {
    this.#options = options;
    this.#static = new Set(options.members.map((m) => m.id));
    for (const m of options.members) if (m.id !== options.self.id) this.#seen.set(m.id, { record: null, lastSeenMs: null, missingSinceMs: 0 });
    this.#ring = new Ring([options.self]);
    this.#publish();
  }

  /** Heartbeats and polls until close(). */
  start(): void {
    const registry = this.#options.registry;
    if (registry === null) return;
    void this.#poll().then(() => registry.announce('join', this.#options.self.id).catch(() => {}));
    this.#timer = setInterval(() => void this.#poll(), HEARTBEAT_MS);
    this.#timer.unref();
  }

  /** An announcement from the channel: a leave takes effect now, anything else is read from the registry. */
  hear(announcement: Announcement): void {
    if (this.#closed || announcement.id === this.#options.self.id) return;
    const seen = this.#seen.get(announcement.id);
    if (announcement.event === 'leave' && seen !== undefined) {
      this.#leaving.add(announcement.id);
      // It was up to say so: not a static member still starting.
      seen.lastSeenMs ??= Date.now();
      seen.missingSinceMs = Date.now() - GRACE_MS - 1;
      this.#expire(Date.now());
      this.#publish();
    }
    void this.#poll();
  }

  get ring(): Ring {
    return this.#ring;
  }

  /** /v1/cluster, without the fronts' breakers. */
  view(routing: 'owner' | 'local'): Record<string, unknown> {
    const self = this.#options.self;
    const members: MemberView[] = this.#ringMembers.map((m) => {
      const seen = this.#seen.get(m.id);
      return {
        id: m.id,
        url: m.url,
        weight: m.weight,
        self: m.id === self.id,
        static: this.#static.has(m.id),
        registered: m.id === self.id ? this.#heartbeatOk : seen?.record !== null && seen?.missingSinceMs === 0,
        state: seen !== undefined && seen.missingSinceMs !== 0 ? 'suspect' : 'up',
        lastSeenMs: seen?.lastSeenMs ?? null,
      };
    });
    return {
      node: self.id,
      url: self.url,
      routing,
      ring: { algorithm: 'rendezvous', fingerprint: this.#ring.fingerprint, members: this.#ring.members },
      members,
      registry:
        this.#options.registry === null
          ? { enabled: false }
          : { enabled: true, errors: this.#errors, ...(this.#lastError === '' ? {} : { lastError: this.#lastError }) },
    };
  }

  /** Stops heartbeating; with the registry, leaves it so that the others drop this node at once. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    const registry = this.#options.registry;
    if (registry === null) return;
    // Bounded: a Redis that does not answer must not hold up the drain (the others drop this node after the grace period).
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, LEAVE_WAIT_MS);
    });
    await Promise.race([registry.leave(this.#options.self.id).catch(() => {}), late]);
    clearTimeout(timer);
    registry.close();
  }

  /** One heartbeat and one read of the registry (a poll asked for while one runs runs after it). */
  async #poll(): Promise<void> {
    const registry = this.#options.registry;
    if (registry === null || this.#closed) return;
    if (this.#polling) {
      this.#pollAgain = true;
      return;
    }
    this.#polling = true;
    try {
      const self = this.#options.self;
      this.#heartbeatOk = false;
      await registry.heartbeat({ ...self, startedMs: this.#startedMs }, RECORD_TTL_MS);
      this.#heartbeatOk = true;
      const entries = await registry.list();
      const now = Date.now();
      const listed = new Map(entries.map((e) => [e.id, e.record]));
      const forget: string[] = [];
      for (const [id, record] of listed) {
        if (id === self.id) continue;
        const seen = this.#seen.get(id);
        if (record !== null) {
          if (seen === undefined || seen.missingSinceMs !== 0) {
            this.#leaving.delete(id);
            this.#options.log.event('member.join', { id, url: record.url }, `strata: member ${id} is on the ring (${record.url})`);
          }
          this.#seen.set(id, { record, lastSeenMs: now, missingSinceMs: 0 });
        } else if (seen === undefined) {
          // Expired before this node ever saw it alive: not on this ring; dropped from the set eventually.
          forget.push(id);
        }
      }
      // Right after the registry was unreachable, the others may not have written again yet: nobody is missed until
      // every live node has had a heartbeat's time to do so.
      if (this.#recovered === 0 && this.#lastPollFailed) this.#recovered = now;
      this.#lastPollFailed = false;
      const settling = this.#recovered !== 0 && now - this.#recovered < RECORD_TTL_MS;
      for (const [id, seen] of this.#seen) {
        const record = listed.get(id) ?? null;
        if (record === null && seen.missingSinceMs === 0 && !settling) seen.missingSinceMs = now;
      }
      if (!settling) this.#recovered = 0;
      this.#expire(now);
      this.#publish();
      if (forget.length > 0 && now - this.#startedMs > FORGET_AFTER_MS) await registry.forget(forget);
    } catch (err) {
      // The registry is unreachable: keep the ring as it is (see the file comment).
      this.#errors++;
      this.#lastPollFailed = true;
      this.#lastError = (err as Error).message;
    } finally {
      this.#polling = false;
      if (this.#pollAgain && !this.#closed) {
        this.#pollAgain = false;
        void this.#poll();
      }
    }
  }

  /** Drops what has been missing past the grace period: a registered node altogether, a static one from the ring. */
  #expire(now: number): void {
    for (const [id, seen] of this.#seen) {
      if (this.#belongs(id, seen, now)) continue;
      if (!this.#static.has(id)) this.#seen.delete(id);
      const left = this.#leaving.delete(id);
      if (!this.#ring.has(id)) continue;
      this.#options.log.event(
        'member.leave',
        { id, reason: left ? 'left' : 'expired' },
        `strata: member ${id} left the ring (${left ? 'it said it was leaving' : 'no heartbeat in the registry'})`,
      );
    }
  }

  /** Whether another node is on the ring now. */
  /** Whether another node belongs on the ring (see the file comment). */
  #belongs(id: string, seen: Seen, now = Date.now()): boolean {
    if (this.#options.registry === null) return this.#static.has(id);
    // A static member this node has not yet seen alive may be starting more slowly: it keeps its place for a while.
    if (this.#static.has(id) && seen.lastSeenMs === null && now - this.#startedMs < STATIC_START_GRACE_MS) return true;
    return seen.missingSinceMs === 0 || now - seen.missingSinceMs <= GRACE_MS;
  }

  /** Recomputes the ring's members; tells onRing when they changed. */
  #publish(): void {
    const { self, members } = this.#options;
    const staticById = new Map(members.map((m) => [m.id, m]));
    const byId = new Map<string, MemberConfig>();
    for (const [id, seen] of this.#seen) {
      if (!this.#belongs(id, seen)) continue;
      // The config's address wins over what a node registered for itself.
      const listed = staticById.get(id);
      const record = seen.record;
      if (listed !== undefined) byId.set(id, listed);
      else if (record !== null) byId.set(id, { id, url: record.url, weight: record.weight });
    }
    byId.set(self.id, self);
    const next = [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const same =
      next.length === this.#ringMembers.length &&
      next.every((m, i) => {
        const was = this.#ringMembers[i] as MemberConfig;
        return was.id === m.id && was.url === m.url && was.weight === m.weight;
      });
    if (same) return;
    this.#ringMembers = Object.freeze(next);
    this.#ring = new Ring(next);
    this.#options.onRing(this.#ringMembers);
  }
}

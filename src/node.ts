import { hostname } from 'node:os';
import { checkPeerUrl, type MemberConfig } from './cluster/members.js';
import { Membership } from './cluster/membership.js';
import { RedisRegistry } from './cluster/registry.js';
import { answerWithinMs } from './config/load.js';
import type { StrataConfig } from './config/schema.js';
import { COORDINATION_DEFAULTS } from './coordination/settings.js';
import { allocateFrontCounters, Counters, FrontTotals } from './counters/counters.js';
import { PortInUseError } from './errors.js';
import type { Question, SupervisorAnswer } from './front/messages.js';
import { FrontSupervisor } from './front/supervisor.js';
import { claimPort, pickPort } from './http/port-claim.js';
import { loadNativeUws } from './http/uws.js';
import { invalidate, remoteDrops } from './invalidation/invalidate.js';
import { PostgresInvalidation } from './invalidation/postgres.js';
import { allocatedBytes, hotIndexShapeFor } from './l1/hot-index.js';
import { downReason, healthOf, type L2Status, l2TargetOf, NodeL2Link } from './l2/node-link.js';
import { configSummary, type Logger, SILENT_LOG } from './log.js';
import { MetricsRegistry } from './metrics/registry.js';
import { StatsReporter } from './metrics/stats.js';
import { OriginSlots } from './origin/slots.js';
import { ShardSupervisor } from './shards/supervisor.js';
import { VERSION } from './version.js';

/** A running node. */
export interface StrataNode {
  readonly config: StrataConfig;
  /** The port actually bound (differs from config.port when that is 0). */
  readonly port: number;
  readonly counters: Counters;
  /** This node's id on the ring and in x-strata-node (config.nodeId, or the one derived from host name and port). */
  readonly nodeId: string;
  /** The L2's state now ({ configured: false } for an L1-only node). */
  l2Status(): L2Status;
  /** Drains and stops: /readyz 503, listen sockets closed, in-flight requests finished, fronts and workers stopped. */
  close(): Promise<void>;
  /** Test-only access to internals. */
  readonly internals: {
    readonly pool: ShardSupervisor;
    readonly fronts: FrontSupervisor;
    readonly stats: StatsReporter;
    readonly l2: NodeL2Link | null;
    readonly postgres: PostgresInvalidation | null;
    readonly membership: Membership;
  };
}

/** How often each shard sweeps expired entries (and applies front hits to recency). */
const PURGE_INTERVAL_MS = 1000;
/**
 * At start, how long the node waits for the L2 before it listens anyway (then
 * not ready until the L2 is). A Redis that answers at once costs nothing; the
 * wait spares clients the 503s of a node that listens a moment before its
 * shards' connections are up.
 */
export const L2_START_WAIT_MS = 5000;

/** What the process running the node wants to hear while it starts and runs. */
export interface StartOptions {
  /** Where the node logs its events (docs/logs.md); the CLI's writes to stdout and stderr. @default SILENT_LOG */
  readonly log?: Logger;
}

/** One startNode call's log, and whether node.start and node.config are out (once, whatever port 0 retries). */
interface StartLog {
  readonly log: Logger;
  announced: boolean;
}

/**
 * Starts a node: the port claimed, shard workers, then the HTTP fronts.
 * Rejects when any cannot start. The calling (main) thread becomes the
 * supervisor: it serves no HTTP itself (docs/architecture.md).
 */
export async function startNode(config: StrataConfig, options: StartOptions = {}): Promise<StrataNode> {
  // Refuses a fallback JS server before anything starts (each front loads it again in its thread).
  loadNativeUws();
  const log: StartLog = { log: options.log ?? SILENT_LOG, announced: false };
  // Port 0: the port picked may be taken before the fronts bind it (by another process, or an outgoing
  // connection of this one); another pick is as good, so a few are tried.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOn(config.port === 0 ? await pickPort(config.host) : config.port, config, log);
    } catch (err) {
      if (config.port !== 0 || !(err instanceof PortInUseError) || attempt >= PORT_ZERO_ATTEMPTS) throw err;
    }
  }
}

/** How many free ports a node started on port 0 tries before it gives up. */
const PORT_ZERO_ATTEMPTS = 3;

async function startOn(port: number, config: StrataConfig, startLog: StartLog): Promise<StrataNode> {
  // First: a node whose port is taken must not start workers or touch the L2.
  const claim = await claimPort(config.host, port);
  let node: StrataNode;
  try {
    node = await startClaimed(config, port, startLog);
  } catch (err) {
    claim.release();
    throw err;
  }
  const close = node.close;
  return { ...node, close: () => close().finally(() => claim.release()) };
}

async function startClaimed(config: StrataConfig, listenPort: number, startLog: StartLog): Promise<StrataNode> {
  const log = startLog.log;
  // Its id is known once the port is (derived from it when not configured).
  const self = selfMember(config, listenPort);
  if (!startLog.announced) {
    startLog.announced = true;
    log.event(
      'node.start',
      { version: VERSION, nodeId: self.id, pid: process.pid, nodeVersion: process.version },
      `strata: starting Strata ${VERSION} as node ${self.id} (pid ${process.pid})`,
    );
    log.event('node.config', configSummary(config), 'strata: configuration');
  }
  const counters = new Counters(config.shards, undefined, config.origins.length);
  const frontCounters = allocateFrontCounters(config.fronts, config.shards);
  const frontTotals = new FrontTotals(frontCounters, config.fronts, config.shards);
  counters.includeFronts(frontTotals);
  const originSlots = new OriginSlots(config.origins.length);
  const l1MaxBytesPerShard = Math.floor(config.l1MaxBytes / config.shards);
  const shape = hotIndexShapeFor(l1MaxBytesPerShard, config.fronts);
  const target = l2TargetOf(config);
  const l2 = target === null ? null : new NodeL2Link(target, config, log);
  const l2Status = (): L2Status => l2?.status(counters) ?? { configured: false, up: false };
  const pool = new ShardSupervisor({
    shards: config.shards,
    log,
    workerData: {
      shards: config.shards,
      countersBuffer: counters.buffer,
      l1MaxBytesPerShard,
      purgeIntervalMs: PURGE_INTERVAL_MS,
      hotIndexShape: shape,
      l2: l2?.shardSettings ?? null,
      origins: config.origins.length === 0 ? null : { rules: config.origins, slots: originSlots.buffer },
      maxValueBytes: config.maxValueBytes,
      coordination: { ...COORDINATION_DEFAULTS, earlyRefreshBeta: config.earlyRefreshBeta, answerWithinMs: answerWithinMs(config.requestTimeoutMs) },
    },
  });
  // The supervisor's own client of the shards: the bus's drops and PostgreSQL's invalidations go through it.
  const shards = pool.localClient(config.requestTimeoutMs);
  try {
    await pool.ready();
  } catch (err) {
    await shards.close(0);
    await pool.close();
    throw err;
  }
  if (l2 !== null) {
    l2.start(remoteDrops(shards));
    // A Redis that is down now is not fatal: the node listens, reports not ready, and heals when Redis answers.
    const deadline = Date.now() + L2_START_WAIT_MS;
    await new Promise((r) => setTimeout(r, 20));
    if (!l2Status().up) {
      log.event(
        'l2.connecting',
        { ...l2.addresses, waitMs: L2_START_WAIT_MS },
        `strata: connecting to the L2 (${l2.describe()}); serving in at most ${L2_START_WAIT_MS / 1000} s, with or without it`,
      );
    }
    while (!l2Status().up && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  }
  // Invalidations from PostgreSQL go through the node's own invalidation path (L2, bus, every L1).
  const postgres =
    config.postgresUrl === ''
      ? null
      : new PostgresInvalidation({
          url: config.postgresUrl,
          channels: config.postgresChannels,
          shared: l2 !== null,
          apply: (keys, tags) => invalidate(shards, keys, tags),
          // Its lines name outbox ids, gap bounds and PostgreSQL's errors: no keys, tags or credentials.
          say: (line) => log.event('postgres.notice', {}, line),
        });
  postgres?.start();
  const stats = new StatsReporter({
    nodeId: self.id,
    counters,
    fronts: frontTotals,
    pool,
    config,
    l2Status,
    bus: l2?.bus ?? null,
    hotIndexBytesPerShard: allocatedBytes(shape),
    originSlots,
    postgres,
  });
  const metrics = new MetricsRegistry({
    counters,
    fronts: frontTotals,
    ringSize: () => membership.ring.members.length,
    stats,
    shards: config.shards,
    l1MaxBytes: config.l1MaxBytes,
    pool,
    l2Status,
    bus: l2?.bus ?? null,
    origins: config.origins,
    originSlots,
    postgres,
  });
  let draining = false;
  const answer = async (question: Question): Promise<SupervisorAnswer> => {
    switch (question) {
      case 'ready':
        return readiness(config.shards, pool, draining, l2Status());
      case 'metrics':
        return { status: 200, contentType: metrics.contentType, body: await metrics.render() };
      case 'stats':
        return { status: 200, contentType: 'application/json', body: JSON.stringify(stats.snapshot()) };
      case 'cluster':
        return { status: 200, contentType: 'application/json', body: JSON.stringify(clusterView(membership, frontTotals, config.routing)) };
    }
  };
  const fronts = new FrontSupervisor({ config, port: listenPort, frontCounters, hotIndexShape: shape, shards: pool, answer, log, nodeId: self.id });
  // Every ring (the first one now) goes to the fronts, which take it before they listen.
  const registry = config.registry && target !== null ? new RedisRegistry(target, config.l2TimeoutMs, (announcement) => membership.hear(announcement)) : null;
  const membership = new Membership({ self, members: config.members, registry, onRing: (members) => fronts.setRing(members), log });
  /** Stops what runs behind the fronts; the supervisor's own ops may finish until shardsTimeoutMs. */
  const stopBackground = async (shardsTimeoutMs = 0) => {
    stats.close();
    await membership.close();
    await shards.close(shardsTimeoutMs);
    await postgres?.close();
    await l2?.close();
    await pool.close();
  };
  membership.start();
  await fronts.start().catch(async (err: unknown) => {
    await stopBackground();
    throw err;
  });
  const l2AtStart = l2Status();
  logListening(log, config, listenPort, self.id, l2 === null ? null : { link: l2, status: l2AtStart });
  // From here on, transitions only: the listening line said how the L2 was.
  l2?.watch(counters, l2AtStart.up);

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      draining = true;
      // The node takes its L2 down itself now: not an event.
      l2?.unwatch();
      // Off the ring first: the other nodes stop forwarding here while this one drains.
      await membership.close();
      // In-flight requests (a body still arriving, ops at a shard) finish before the shards stop.
      const deadline = Date.now() + config.drainTimeoutMs;
      await fronts.drain(deadline);
      await fronts.close();
      await stopBackground(Math.max(0, deadline - Date.now()));
    })();
    return closing;
  };
  return {
    config,
    port: listenPort,
    nodeId: self.id,
    counters,
    l2Status,
    close,
    internals: { pool, fronts: fronts, stats, l2, postgres, membership },
  };
}

/**
 * The listening line (start, config and L2 in one sentence, as the node has
 * always printed it), and the L2's state when it is not up yet.
 */
function logListening(log: Logger, config: StrataConfig, port: number, nodeId: string, l2: { link: NodeL2Link; status: L2Status } | null): void {
  const url = httpUrl(config.host, port);
  const mib = (config.l1MaxBytes / 1048576).toFixed(config.l1MaxBytes % 1048576 === 0 ? 0 : 1);
  const { fronts, shards } = config;
  log.event(
    'node.listening',
    { url, nodeId, fronts, shards, l2: l2 === null ? 'none' : l2.status.up ? 'up' : 'down' },
    `strata listening on ${url} with ${fronts} front${fronts === 1 ? '' : 's'} and ${shards} shard${shards === 1 ? '' : 's'}, L1 budget ${mib} MiB, ${l2 === null ? 'no L2 configured (L1 only)' : `L2 ${l2.link.describe()}`}, node ${nodeId}${clusterSummary(config)}`,
  );
  if (l2 === null || l2.status.up) return;
  const why = l2.status.lastError ? ` (${l2.status.lastError})` : '';
  log.event(
    'l2.down',
    { ...healthOf(l2.status, shards), reason: downReason(l2.status, shards), atStart: true },
    `strata: warning: the L2 is not reachable yet${why}; L1 hits are served, everything else gets 503 E_L2_UNAVAILABLE and /readyz 503 until it is`,
  );
}

/** How the node finds its peers, for the listening line. */
function clusterSummary(config: StrataConfig): string {
  const parts: string[] = [];
  if (config.members.length > 0) parts.push(`${config.members.length} configured members`);
  if (config.registry) parts.push('the registry');
  if (parts.length === 0) return '';
  return ` (ring from ${parts.join(' and ')}, routing ${config.routing})`;
}

/** Characters a node id may not have, replaced in the one derived from the host name. */
const NOT_IN_NODE_ID = /[^A-Za-z0-9._-]/g;

/**
 * This node as the ring knows it: its id (configured, or `<host name>-<port>`)
 * and the URL the others reach it at (configured, its members entry, or its
 * listening address, the host name when it listens on every interface).
 */
function selfMember(config: StrataConfig, port: number): MemberConfig {
  const member = derivedSelf(config, port);
  // A derived address (a host name, an IPv6 literal with a zone) must be one the others can use.
  return { ...member, url: checkPeerUrl('advertiseUrl', member.url) };
}

function derivedSelf(config: StrataConfig, port: number): MemberConfig {
  // The host name is cut, never the port: two nodes on one host differ by port.
  const id =
    config.nodeId !== ''
      ? config.nodeId
      : `${hostname()
          .replace(NOT_IN_NODE_ID, '-')
          .slice(0, 63 - String(port).length)}-${port}`;
  const listed = config.members.find((m) => m.id === id);
  if (config.advertiseUrl !== '') return { id, url: config.advertiseUrl, weight: listed?.weight ?? 1 };
  if (listed !== undefined) return listed;
  const host = config.host === '0.0.0.0' || config.host === '::' ? hostname() : config.host;
  return { id, url: httpUrl(host, port), weight: 1 };
}

/** http://host:port, an IPv6 host in brackets (RFC 3986 §3.2.2). */
function httpUrl(host: string, port: number): string {
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** GET /v1/cluster as the supervisor renders it (each front adds its own breakers). */
function clusterView(membership: Membership, fronts: FrontTotals, routing: 'owner' | 'local'): Record<string, unknown> {
  return { ...membership.view(routing), forwarding: fronts.forwarding() };
}

/** /readyz: 200 when every shard has a worker and a configured L2 is up; 503 while draining or degraded. */
function readiness(total: number, pool: ShardSupervisor, draining: boolean, l2: L2Status): SupervisorAnswer {
  let up = 0;
  for (let s = 0; s < total; s++) if (pool.isUp(s)) up++;
  // A configured L2 is required: without it misses and writes fail, so the load balancer should look elsewhere.
  const ready = !draining && up === total && (!l2.configured || l2.up);
  const body = JSON.stringify({ status: ready ? 'ready' : draining ? 'draining' : 'degraded', shards: { up, total }, l2 });
  return { status: ready ? 200 : 503, contentType: 'application/json', body };
}

import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUS_CHANNEL, type BusHandlers, decodeBusMessage, encodeBusMessage, type GapReason, InvalidationBus } from '../../src/l2/bus.js';
import { until } from '../helpers/node.js';
import { RedisCluster, RedisServer } from '../helpers/redis.js';

// The cross-node invalidation bus (issue 3 groundwork), on a standalone Redis and on a Redis Cluster.

function recorder() {
  const got: { keys: readonly string[]; from: string }[] = [];
  const gaps: GapReason[] = [];
  const handlers: BusHandlers = {
    onInvalidate: (keys, from) => got.push({ keys, from }),
    onGap: (reason) => gaps.push(reason),
  };
  return { got, gaps, handlers };
}

describe('bus message format', () => {
  it('round-trips, and ignores bytes that are not a bus message', () => {
    const message = { node: '0123456789abcdef', seq: 42, keys: ['a', 'ключ', 'x{y}'] };
    expect(decodeBusMessage(encodeBusMessage(message))).toEqual(message);
    expect(decodeBusMessage(Buffer.from('hello'))).toBeNull();
    expect(decodeBusMessage(encodeBusMessage(message).subarray(0, 20))).toBeNull();
  });
});

const targets: [string, () => Promise<{ target: { url: string } | { cluster: string[] }; stop: () => Promise<void>; url?: string }>][] = [
  [
    'standalone',
    async () => {
      const redis = await RedisServer.start();
      return { target: { url: redis.url }, url: redis.url, stop: () => redis.stop() };
    },
  ],
  [
    'cluster',
    async () => {
      const cluster = await RedisCluster.start();
      return { target: { cluster: cluster.seeds }, stop: () => cluster.stop() };
    },
  ],
];

describe.each(targets)('invalidation bus (%s)', (_name, start) => {
  let env: Awaited<ReturnType<(typeof targets)[number][1]>>;
  beforeAll(async () => {
    env = await start();
  }, 60_000);
  afterAll(() => env?.stop());

  it('delivers a node’s invalidations to the other nodes, not back to itself, in order and without gaps', async () => {
    const a = recorder();
    const b = recorder();
    const busA = await InvalidationBus.start(env.target, a.handlers, 1000);
    const busB = await InvalidationBus.start(env.target, b.handlers, 1000);
    try {
      for (let i = 0; i < 20; i++) await busA.publish([`k${i}`, `x${i}`]);
      await until(() => b.got.length === 20);
      expect(b.got.map((m) => m.keys[0])).toEqual(Array.from({ length: 20 }, (_, i) => `k${i}`));
      expect(b.got.every((m) => m.from === busA.node)).toBe(true);
      expect(b.gaps).toEqual([]);
      await busB.publish(['from-b']);
      await until(() => a.got.length === 1);
      expect(a.got[0]?.keys).toEqual(['from-b']);
      expect(a.got.some((m) => m.from === busA.node)).toBe(false);
    } finally {
      await busA.close();
      await busB.close();
    }
  });

  it('reports a gap when a publisher’s numbers skip', async () => {
    const b = recorder();
    const bus = await InvalidationBus.start(env.target, b.handlers, 1000);
    // A raw client publishes as a node whose message 2 never arrives.
    const raw = 'url' in env.target ? new Redis(env.target.url) : new Redis(Number(env.target.cluster[0]?.split(':')[1]));
    try {
      for (const seq of [1, 3]) await raw.publish(BUS_CHANNEL, encodeBusMessage({ node: 'feedfacefeedface', seq, keys: [`s${seq}`] }));
      await until(() => b.got.length === 2);
      expect(b.gaps).toEqual([{ kind: 'gap', node: 'feedfacefeedface', expected: 2, got: 3 }]);
    } finally {
      raw.disconnect();
      await bus.close();
    }
  });
});

describe('invalidation bus when Redis restarts', () => {
  it('reports a reconnect gap: what was published while away is lost', async () => {
    const redis = await RedisServer.start();
    const b = recorder();
    const bus = await InvalidationBus.start({ url: redis.url }, b.handlers, 500);
    try {
      await redis.restart();
      await until(() => b.gaps.some((g) => g.kind === 'reconnect'), 15_000, 50);
    } finally {
      await bus.close();
      await redis.stop();
    }
  });
});

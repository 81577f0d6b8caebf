import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BUS_CHANNEL,
  BUS_KIND,
  type BusHandlers,
  BusPublisher,
  BusSubscriber,
  decodeBusMessage,
  encodeBusMessage,
  type GapReason,
  newNodeId,
} from '../../src/l2/bus.js';
import { valueKey } from '../../src/l2/keys.js';
import { type L2Target, RedisL2Store } from '../../src/l2/redis.js';
import { textEntry } from '../helpers/entries.js';
import { until } from '../helpers/node.js';
import { RedisCluster, RedisServer } from '../helpers/redis.js';

// The cross-node invalidation bus, on a standalone Redis and on a Redis Cluster.

function recorder() {
  const keys: { items: readonly string[]; from: string }[] = [];
  const tags: (readonly string[])[] = [];
  const gaps: GapReason[] = [];
  const handlers: BusHandlers = {
    onKeys: (items, from) => keys.push({ items, from }),
    onTags: (items) => tags.push(items),
    onGap: (reason) => gaps.push(reason),
  };
  return { keys, tags, gaps, handlers };
}

describe('bus message format', () => {
  it('round-trips, and ignores bytes that are not a bus message', () => {
    const message = {
      kind: BUS_KIND.TAGS,
      node: '0123456789abcdef',
      stream: '01020304',
      streamStartedMs: 1_790_000_000_000,
      seq: 42,
      items: ['a', 'ключ', 'x{y}'],
    };
    expect(decodeBusMessage(encodeBusMessage(message))).toEqual(message);
    expect(decodeBusMessage(Buffer.from('hello'))).toBeNull();
    expect(decodeBusMessage(encodeBusMessage(message).subarray(0, 30))).toBeNull();
    // The send time rides after the items: a message with it decodes with it, and its bytes up to
    // the items are those of the same message without it (what a reader that predates it reads).
    const timed = { ...message, sentMs: 1_790_000_000_123.5 };
    expect(decodeBusMessage(encodeBusMessage(timed))).toEqual(timed);
    expect(encodeBusMessage(timed).subarray(0, -8).equals(encodeBusMessage(message))).toBe(true);
  });
});

const targets: [string, () => Promise<{ target: L2Target; stop: () => Promise<void>; rawPort: number }>][] = [
  [
    'standalone',
    async () => {
      const redis = await RedisServer.start();
      return { target: { url: redis.url }, rawPort: redis.port, stop: () => redis.stop() };
    },
  ],
  [
    'cluster',
    async () => {
      const cluster = await RedisCluster.start();
      return { target: { cluster: cluster.seeds }, rawPort: cluster.nodes[0]?.port as number, stop: () => cluster.stop() };
    },
  ],
];

describe.each(targets)('invalidation bus (%s)', (_name, start) => {
  let env: Awaited<ReturnType<(typeof targets)[number][1]>>;
  beforeAll(async () => {
    env = await start();
  }, 60_000);
  afterAll(() => env?.stop());

  it('delivers a node’s invalidations to the other nodes in order and without gaps; its own key messages are not applied back', async () => {
    const nodeA = newNodeId();
    const store = await RedisL2Store.connect({ ...env.target, commandTimeoutMs: 1000, connectTimeoutMs: 5000 });
    const publisher = new BusPublisher(nodeA);
    const self = recorder();
    const other = recorder();
    const subA = BusSubscriber.start(env.target, nodeA, self.handlers, 1000);
    const subB = BusSubscriber.start(env.target, newNodeId(), other.handlers, 1000);
    try {
      await until(() => subA.ready && subB.ready);
      // Each subscription starts with a gap: what came before it is unknown.
      expect(other.gaps).toEqual([{ kind: 'subscribed' }]);
      for (let i = 0; i < 20; i++) await store.publish(BUS_CHANNEL, publisher.next(BUS_KIND.KEYS, [`k${i}`, `x${i}`]));
      await store.publish(BUS_CHANNEL, publisher.next(BUS_KIND.TAGS, ['t1']));
      await until(() => other.tags.length === 1);
      expect(other.keys.map((m) => m.items[0])).toEqual(Array.from({ length: 20 }, (_, i) => `k${i}`));
      expect(other.keys.every((m) => m.from === `${nodeA}/${publisher.stream}`)).toBe(true);
      expect(other.tags).toEqual([['t1']]);
      expect(other.gaps).toEqual([{ kind: 'subscribed' }]);
      // The publishing node's own subscriber skips its key messages and applies its tag messages.
      await until(() => self.tags.length === 1);
      expect(self.keys).toEqual([]);
      expect(self.tags).toEqual([['t1']]);
      expect(self.gaps).toEqual([{ kind: 'subscribed' }]);
    } finally {
      await Promise.all([subA.close(), subB.close(), store.close()]);
    }
  });

  it('a write’s message reaches another node only once the write can be read there (one round trip on a standalone Redis, two on a Cluster)', async () => {
    // On a standalone Redis, MONITOR lists the commands in the order Redis ran them: each key's SET must come before its PUBLISH.
    const monitor = _name === 'standalone' ? await new Redis({ port: env.rawPort, lazyConnect: true }).monitor() : null;
    const ran: string[][] = [];
    monitor?.on('monitor', (_time: string, args: string[]) => ran.push(args));
    const node = newNodeId();
    const writer = await RedisL2Store.connect({ ...env.target, commandTimeoutMs: 2000, connectTimeoutMs: 5000 });
    const reader = await RedisL2Store.connect({ ...env.target, commandTimeoutMs: 2000, connectTimeoutMs: 5000 });
    const publisher = new BusPublisher(node);
    const seen: Promise<[string, string | undefined]>[] = [];
    const other = recorder();
    const sub = BusSubscriber.start(
      env.target,
      newNodeId(),
      {
        ...other.handlers,
        onKeys: (items) => {
          // What the other node would do on hearing of it: read the key again at once.
          for (const key of items) seen.push(reader.get(key).then((hit) => [key, hit === null ? undefined : new TextDecoder().decode(hit.entry.value)]));
        },
      },
      1000,
    );
    const keys = Array.from({ length: 200 }, (_, i) => `o${i}x`);
    try {
      await until(() => sub.ready);
      await Promise.all(keys.map((key) => writer.set(key, textEntry('old'), 60_000)));
      // All at once: many writes in flight together, as under load.
      await Promise.all(keys.map((key) => writer.set(key, textEntry(`new ${key}`), 60_000, () => publisher.next(BUS_KIND.KEYS, [key]))));
      await until(() => seen.length === keys.length);
      const read = await Promise.all(seen);
      expect(read.filter(([key, value]) => value !== `new ${key}`)).toEqual([]);
      expect(other.gaps).toEqual([{ kind: 'subscribed' }]);
      if (monitor !== null) {
        const set = (key: string) => ran.findLastIndex((args) => args[0]?.toLowerCase() === 'set' && args[1] === valueKey(key));
        const published = (key: string) => ran.findIndex((args) => args[0]?.toLowerCase() === 'publish' && (args[2] ?? '').includes(key));
        await until(() => keys.every((key) => published(key) !== -1));
        expect(keys.filter((key) => !(set(key) !== -1 && set(key) < published(key)))).toEqual([]);
      }
    } finally {
      monitor?.disconnect();
      await Promise.all([sub.close(), writer.close(), reader.close()]);
    }
  });

  it('reports a gap when a stream’s numbers skip, or a new stream’s first message is missing; a late message is no gap', async () => {
    const b = recorder();
    const sub = BusSubscriber.start(env.target, newNodeId(), b.handlers, 1000);
    // A raw client publishes as streams whose messages go missing.
    const raw = new Redis(env.rawPort, '127.0.0.1');
    const send = (stream: string, streamStartedMs: number, seq: number) =>
      raw.publish(BUS_CHANNEL, encodeBusMessage({ kind: BUS_KIND.KEYS, node: 'feedfacefeedface', stream, streamStartedMs, seq, items: [`${stream}:${seq}`] }));
    try {
      await until(() => sub.ready);
      b.gaps.length = 0;
      // A stream older than the subscription may be seen first at any number; then 2 is missing.
      for (const seq of [7, 8, 10]) await send('cafebabe', 0, seq);
      // A late 9 is applied, and 11 after it is not taken for a gap.
      for (const seq of [9, 11]) await send('cafebabe', 0, seq);
      // A stream that began after the subscription must start at 1.
      await send('0badf00d', Date.now() + 1000, 2);
      await until(() => b.keys.length === 6);
      expect(b.gaps).toEqual([
        { kind: 'gap', from: 'feedfacefeedface/cafebabe', expected: 9, got: 10 },
        { kind: 'gap', from: 'feedfacefeedface/cafebabe', expected: 11, got: 9 },
        { kind: 'gap', from: 'feedfacefeedface/0badf00d', expected: 1, got: 2 },
      ]);
    } finally {
      raw.disconnect();
      await sub.close();
    }
  });
});

describe('bus heartbeats', () => {
  it('a stream repeats its last number twice after publishing, then stays silent', () => {
    const publisher = new BusPublisher(newNodeId());
    expect(publisher.heartbeat()).toBeNull();
    publisher.next(BUS_KIND.KEYS, ['a']);
    publisher.next(BUS_KIND.KEYS, ['b']);
    const beats = [publisher.heartbeat(), publisher.heartbeat(), publisher.heartbeat()];
    expect(beats.map((b) => (b === null ? null : decodeBusMessage(b)))).toMatchObject([
      { kind: BUS_KIND.HEARTBEAT, seq: 2, items: [] },
      { kind: BUS_KIND.HEARTBEAT, seq: 2 },
      null,
    ]);
  });

  it('reveal a lost last message, and are no gap themselves', async () => {
    const redis = await RedisServer.start();
    const b = recorder();
    const sub = BusSubscriber.start({ url: redis.url }, newNodeId(), b.handlers, 1000);
    const raw = new Redis(redis.port, '127.0.0.1');
    const send = (kind: (typeof BUS_KIND)[keyof typeof BUS_KIND], seq: number) =>
      raw.publish(
        BUS_CHANNEL,
        encodeBusMessage({ kind, node: 'feedfacefeedface', stream: 'cafebabe', streamStartedMs: 0, seq, items: kind === BUS_KIND.HEARTBEAT ? [] : ['k'] }),
      );
    try {
      await until(() => sub.ready);
      b.gaps.length = 0;
      await send(BUS_KIND.KEYS, 1);
      await send(BUS_KIND.HEARTBEAT, 1);
      // Message 2 is lost; only its heartbeats arrive.
      await send(BUS_KIND.HEARTBEAT, 2);
      await send(BUS_KIND.HEARTBEAT, 2);
      await send(BUS_KIND.KEYS, 3);
      await until(() => b.keys.length === 2);
      expect(b.gaps).toEqual([{ kind: 'gap', from: 'feedfacefeedface/cafebabe', expected: 1, got: 2 }]);
    } finally {
      raw.disconnect();
      await sub.close();
      await redis.stop();
    }
  });
});

describe('invalidation bus when Redis fails', () => {
  it('reports a gap when it subscribes again after a restart: what was published while away is lost', async () => {
    const redis = await RedisServer.start();
    const b = recorder();
    const sub = BusSubscriber.start({ url: redis.url }, newNodeId(), b.handlers, 300);
    try {
      await until(() => sub.ready);
      await redis.restart();
      await until(() => b.gaps.length === 2, 15_000, 50);
      expect(b.gaps).toEqual([{ kind: 'subscribed' }, { kind: 'subscribed' }]);
      expect(sub.ready).toBe(true);
    } finally {
      await sub.close();
      await redis.stop();
    }
  });

  it('notices a hung Redis (SIGSTOP) by its missed PING, and reports a gap once it answers again', async () => {
    const redis = await RedisServer.start();
    const b = recorder();
    const sub = BusSubscriber.start({ url: redis.url }, newNodeId(), b.handlers, 300);
    try {
      await until(() => sub.ready);
      redis.pause();
      await until(() => !sub.ready, 10_000, 20);
      expect(b.gaps).toEqual([{ kind: 'subscribed' }]);
      redis.resume();
      await until(() => sub.ready && b.gaps.length === 2, 15_000, 50);
    } finally {
      redis.resume();
      await sub.close();
      await redis.stop();
    }
  });
});

import { afterAll, describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../src/errors.js';
import type { BatchResult, OpWaiter } from '../../src/shards/client.js';
import { OP, STATUS } from '../../src/shards/protocol.js';
import { ROOT, until } from '../helpers/node.js';

const { ShardSupervisor } = (await import(`${ROOT}dist/src/shards/supervisor.js`)) as typeof import('../../src/shards/supervisor.js');
const { Counters } = (await import(`${ROOT}dist/src/counters/counters.js`)) as typeof import('../../src/counters/counters.js');

const pool = new ShardSupervisor({
  shards: 1,
  workerFile: new URL(`file://${ROOT}dist/test/helpers/hanging-worker.js`).href,
  workerData: {
    shards: 1,
    countersBuffer: new Counters(1).buffer,
    l1MaxBytesPerShard: 1 << 20,
    purgeIntervalMs: 1000,
    hotIndexShape: null,
    l2: null,
    origins: null,
    maxValueBytes: 1 << 20,
    coordination: { pollMs: 20, maxPollMs: 200, earlyRefreshBeta: 1, answerWithinMs: 240 },
  },
});
const client = pool.localClient(300);
afterAll(async () => {
  await client.close(0);
  await pool.close();
});

type Outcome = { status: number } | { code: ErrorCode };
function op(code: number, key: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const waiter: OpWaiter = {
      onResult: (result: BatchResult, index: number) => resolve({ status: result.status(index) }),
      onFail: (failure) => resolve({ code: failure }),
    };
    client.submit(0, code, key, null, waiter, 0);
  });
}

describe('a shard worker that hangs', () => {
  it('fails its ops with 503 E_SHARD_TIMEOUT after requestTimeoutMs, is replaced, and the shard serves again', async () => {
    await pool.ready();
    const before = pool.workerThreadIds()[0];
    expect(await op(OP.GET, 'fine')).toEqual({ status: STATUS.MISS });
    const [hung, sameBatch] = await Promise.all([op(OP.GET, '__hang__'), op(OP.GET, 'innocent')]);
    expect(hung).toEqual({ code: 'E_SHARD_TIMEOUT' });
    expect(sameBatch).toEqual({ code: 'E_SHARD_TIMEOUT' });
    await until(() => pool.isUp(0) && pool.workerThreadIds()[0] !== before);
    // isUp: the replacement has taken the shard (it said so), so it answers at once.
    expect(await op(OP.GET, 'fine')).toEqual({ status: STATUS.MISS });
  });
});

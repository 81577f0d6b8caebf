import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode } from '../helpers/node.js';

type Node = Awaited<ReturnType<typeof startTestNode>>;
let node: Node;
const TOKEN = 'test-token-0123456789';

beforeAll(async () => {
  node = await startTestNode({ shards: 1, tokens: [TOKEN, 'second-token-abcdef'] });
});
afterAll(async () => {
  await node?.close();
});

const call = (method: string, path: string, token?: string, body?: string) =>
  fetch(`${node.url}${path}`, { method, ...(body === undefined ? {} : { body }), headers: token === undefined ? {} : { authorization: `Bearer ${token}` } });

describe('bearer tokens', () => {
  it.each([
    ['PUT', '/v1/keys/a', 'v'],
    ['DELETE', '/v1/keys/a', undefined],
    ['POST', '/v1/invalidate', '{"keys":["a"]}'],
    ['GET', '/v1/stats', undefined],
    ['GET', '/metrics', undefined],
  ])('%s %s needs a valid token: 401 E_UNAUTHORIZED without, and nothing changes', async (method, path, body) => {
    for (const token of [undefined, 'wrong-token-0123456789']) {
      const res = await call(method, path, token, body);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="strata"');
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('E_UNAUTHORIZED');
    }
    expect((await call(method, path, TOKEN, body)).status).toBeLessThan(300);
  });

  it('a rejected PUT stores nothing; reads and health stay open', async () => {
    await call('PUT', '/v1/keys/guarded', undefined, 'x');
    expect((await call('GET', '/v1/keys/guarded')).status).toBe(404);
    expect((await call('PUT', '/v1/keys/guarded', 'second-token-abcdef', 'y')).status).toBe(204);
    expect(await (await call('GET', '/v1/keys/guarded')).text()).toBe('y');
    expect((await call('HEAD', '/v1/keys/guarded')).status).toBe(200);
    expect((await call('POST', '/v1/mget', undefined, '{"keys":["guarded"]}')).status).toBe(200);
    for (const path of ['/healthz', '/livez', '/readyz']) expect((await call('GET', path)).status).toBe(200);
  });
});

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestNode, until } from '../helpers/node.js';
import { rawRequest } from '../helpers/raw.js';
import { RedisServer } from '../helpers/redis.js';

// Defects found by a black-box probe (issue 6): each test failed before its fix.

type Node = Awaited<ReturnType<typeof startTestNode>>;
let redis: RedisServer;
let a: Node;
let b: Node;
let solo: Node;

beforeAll(async () => {
  redis = await RedisServer.start();
  [a, b, solo] = await Promise.all([
    startTestNode({ redisUrl: redis.url, shards: 2 }),
    startTestNode({ redisUrl: redis.url, shards: 2 }),
    startTestNode({ shards: 2 }),
  ]);
}, 60_000);
afterAll(async () => {
  await Promise.all([a?.close(), b?.close(), solo?.close()]);
  await redis?.stop();
});

const post = (node: Node, path: string, json: string) =>
  fetch(`${node.url}${path}`, { method: 'POST', body: json, headers: { 'content-type': 'application/json' } });
async function errorCode(res: Response): Promise<string> {
  return ((await res.json()) as { error: { code: string } }).error.code;
}
/** The status line and the error code of a raw HTTP reply. */
function statusOf(text: string): string {
  return `${/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 'none'} ${/"code":"(E_[A-Z_]+)"/.exec(text)?.[1] ?? ''}`.trim();
}

describe('one key identity everywhere', () => {
  // "sur\ud800x" as JSON text: a lone surrogate. Encoders would turn it into "sur\ufffdx", another key.
  const lone = '{"keys":["sur\\ud800x"]}';
  const replaced = 'sur\ufffdx';

  it.each([
    ['with an L2', () => a],
    ['L1 only', () => solo],
  ])('a JSON key that is not valid Unicode is refused with 400 E_INVALID_KEY by mget and invalidate (%s)', async (_, node) => {
    expect((await fetch(`${node().url}/v1/keys/${encodeURIComponent(replaced)}`, { method: 'PUT', body: 'v' })).status).toBe(204);
    for (const path of ['/v1/mget', '/v1/invalidate']) {
      const res = await post(node(), path, lone);
      expect(res.status).toBe(400);
      expect(await errorCode(res)).toBe('E_INVALID_KEY');
    }
    const tags = await post(node(), '/v1/invalidate', '{"tags":["t\\udc00"]}');
    expect(tags.status).toBe(400);
    expect(await errorCode(tags)).toBe('E_INVALID_TAGS');
    // Nothing was invalidated: the U+FFFD key is still there.
    expect((await fetch(`${node().url}/v1/keys/${encodeURIComponent(replaced)}`)).status).toBe(200);
  });

  it('U+FFFD itself is one key in the URL (percent-encoded), in JSON, in L1 and in Redis, on both nodes', async () => {
    const path = `/v1/keys/${encodeURIComponent(replaced)}`;
    expect((await fetch(`${a.url}${path}`, { method: 'PUT', body: 'fffd' })).status).toBe(204);
    expect((await fetch(`${a.url}${path}`)).headers.get('x-cache')).toBe('L1');
    expect(await (await fetch(`${b.url}${path}`)).text()).toBe('fffd');
    const mget = (await (await post(b, '/v1/mget', JSON.stringify({ keys: [replaced] }))).json()) as { values: Record<string, string | null> };
    expect(mget.values[replaced]).toBe(Buffer.from('fffd').toString('base64'));
    expect(await (await post(b, '/v1/invalidate', JSON.stringify({ keys: [replaced] }))).json()).toEqual({ invalidated: 1 });
    await until(async () => (await fetch(`${a.url}${path}`)).status === 404);
    expect((await fetch(`${b.url}${path}`)).status).toBe(404);
  });

  it('bytes that are not UTF-8 in the URL are refused, not read as U+FFFD', async () => {
    for (const node of [a, solo]) {
      const target = Buffer.concat([Buffer.from('GET /v1/keys/sur'), Buffer.from([0xff]), Buffer.from('x HTTP/1.1\r\nHost: x\r\n\r\n')]);
      expect(statusOf((await rawRequest(node.port, target)).text)).toBe('400 E_INVALID_KEY');
      const put = Buffer.concat([Buffer.from('PUT /v1/keys/k?tags=a'), Buffer.from([0xc3]), Buffer.from(' HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nv')]);
      expect(statusOf((await rawRequest(node.port, put)).text)).toBe('400 E_INVALID_QUERY');
    }
    // Raw UTF-8 (as curl sends it) is the same key as its percent-encoded form.
    expect((await fetch(`${a.url}/v1/keys/%C3%A9t%C3%A9`, { method: 'PUT', body: 'summer' })).status).toBe(204);
    const raw = await rawRequest(a.port, Buffer.from('GET /v1/keys/été HTTP/1.1\r\nHost: x\r\n\r\n', 'utf8'));
    expect(raw.text).toMatch(/^HTTP\/1\.1 200 /);
    expect(raw.text.endsWith('summer')).toBe(true);
  });
});

describe('headers', () => {
  const put = (headers: string, body = 'v') => `PUT /v1/keys/hdr HTTP/1.1\r\n${headers}Content-Length: ${body.length}\r\n\r\n${body}`;

  it('a Content-Type that is not a media type is refused, also when uWS cut a non-ASCII byte off its end', async () => {
    const res = await fetch(`${solo.url}/v1/keys/ct`, { method: 'PUT', body: 'v', headers: { 'content-type': 'text/é' } });
    expect(res.status).toBe(400);
    expect(await errorCode(res)).toBe('E_INVALID_CONTENT_TYPE');
    for (const bad of ['text', 'text/', 'text/plain; charset', '/plain', 'text/pl ain']) {
      expect(statusOf((await rawRequest(solo.port, put(`Host: x\r\nContent-Type: ${bad}\r\n`))).text)).toBe('400 E_INVALID_CONTENT_TYPE');
    }
    expect((await fetch(`${solo.url}/v1/keys/ct`)).status).toBe(404);
    const ok = await fetch(`${solo.url}/v1/keys/ct`, { method: 'PUT', body: 'v', headers: { 'content-type': 'application/json; charset="utf-8"' } });
    expect(ok.status).toBe(204);
    expect((await fetch(`${solo.url}/v1/keys/ct`)).headers.get('content-type')).toBe('application/json; charset="utf-8"');
  });

  it('two Host headers, or a bad Host, get 400 E_INVALID_HEADER on every route (RFC 9112 §3.2), and the connection closes', async () => {
    await fetch(`${solo.url}/v1/keys/hosted`, { method: 'PUT', body: 'v' });
    await fetch(`${solo.url}/v1/keys/hosted`); // published in the hot-read index: the fast path must check too
    for (const request of [
      'GET /v1/keys/hosted HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
      'GET /v1/keys/hosted HTTP/1.1\r\nHost: a b\r\n\r\n',
      'HEAD /v1/keys/hosted HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n',
      put('Host: a\r\nHost: b\r\n'),
      'DELETE /v1/keys/hosted HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
      'GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
      'GET /nowhere HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
    ]) {
      const reply = await rawRequest(solo.port, request);
      expect(statusOf(reply.text), request).toBe(request.startsWith('HEAD') ? '400' : '400 E_INVALID_HEADER');
      expect(reply.closedByServer).toBe(true);
    }
    expect(await (await fetch(`${solo.url}/v1/keys/hosted`)).text()).toBe('v');
    for (const host of ['example.com:8080', '[::1]:80', '10.0.0.1', 'a-b.c_d~']) {
      expect(statusOf((await rawRequest(solo.port, `GET /v1/keys/hosted HTTP/1.1\r\nHost: ${host}\r\n\r\n`)).text)).toBe('200');
    }
  });

  it('two Authorization headers are refused, whichever comes first', async () => {
    const guarded = await startTestNode({ shards: 1, tokens: ['good-token-1'] });
    try {
      for (const auth of [
        'Authorization: Bearer good-token-1\r\nAuthorization: Bearer wrong-token\r\n',
        'Authorization: Bearer wrong-token\r\nAuthorization: Bearer good-token-1\r\n',
      ]) {
        expect(statusOf((await rawRequest(guarded.port, put(`Host: x\r\n${auth}`))).text)).toBe('400 E_INVALID_HEADER');
      }
      expect((await fetch(`${guarded.url}/v1/keys/hdr`)).status).toBe(404);
      expect(statusOf((await rawRequest(guarded.port, put('Host: x\r\nAuthorization: Bearer good-token-1\r\n'))).text)).toBe('204');
    } finally {
      await guarded.close();
    }
  });

  it('a chunk extension is answered with 400 E_BAD_FRAMING, not held for the idle timeout; plain chunks are stored', async () => {
    const chunked = (chunks: string) => `PUT /v1/keys/ext HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}`;
    // rawRequest waits 2 s for a reply: uWS would hold the connection ~10 s.
    const reply = await rawRequest(solo.port, chunked('5;a=b\r\nhello\r\n0\r\n\r\n'), 2000);
    expect(statusOf(reply.text)).toBe('400 E_BAD_FRAMING');
    expect(reply.closedByServer).toBe(true);
    expect((await fetch(`${solo.url}/v1/keys/ext`)).status).toBe(404);
    expect(statusOf((await rawRequest(solo.port, chunked('5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n'))).text)).toBe('204');
    expect(await (await fetch(`${solo.url}/v1/keys/ext`)).text()).toBe('hello world');
    // An extension on a later chunk, whose terminator arrives in a packet of its own.
    const json = `POST /v1/mget HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`;
    expect(statusOf((await rawRequest(solo.port, `${json}2\r\n{"\r\n4;e=1\r\nkeys\r\n0\r\n\r\n`, 2000)).text)).toBe('400 E_BAD_FRAMING');
  });

  it('a chunked value that itself ends with the bytes of a terminator is stored, not taken for a mis-framed body', async () => {
    const value = 'ab\n0\r\n\r\n';
    const request = `PUT /v1/keys/ends-like-terminator HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${value.length.toString(16)}\r\n${value}\r\n0\r\n\r\n`;
    expect(statusOf((await rawRequest(solo.port, request, 2000)).text)).toBe('204');
    expect(await (await fetch(`${solo.url}/v1/keys/ends-like-terminator`)).text()).toBe(value);
  });

  it('what uWebSockets.js drops without calling Strata gets no answer, as docs/errors.md says', async () => {
    const dropped = [
      'GET /v1/keys/k HTTP/1.1\r\n\r\n', // no Host
      'GET /v1/keys/k HTTP/1.0\r\nHost: x\r\n\r\n',
      'GET /v1/keys/k HTTP/1.1\nHost: x\n\n',
      'GET /v1/keys/k HTTP/1.1\r\nHost: x\r\nNo-colon\r\n\r\n',
      'GET /v1/keys/k HTTP/1.1\r\nHost: x\r\nX: a\0b\r\n\r\n',
      `GET /v1/keys/k HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 60 }, (_, i) => `X-${i}: v\r\n`).join('')}\r\n`,
      'PUT /v1/keys/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n1\r\nv\r\n0\r\n\r\n',
    ];
    // None of these rows is one docs/errors.md says is closed at once: each is held until the idle timeout, so no close is asserted.
    // A valid request sent beside them, and one after, shows that an answer would have been seen: the node is alive, uWS dropped these.
    const control = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
    const [beside, ...replies] = await Promise.all([control, ...dropped].map((request) => rawRequest(solo.port, request)));
    for (const [i, reply] of replies.entries()) expect(reply.text, dropped[i]).toBe('');
    expect(statusOf(beside?.text ?? '')).toBe('200');
    expect(statusOf((await rawRequest(solo.port, control)).text)).toBe('200');
    // Strata never saw the PUT among them: nothing was stored.
    expect((await fetch(`${solo.url}/v1/keys/k`)).status).toBe(404);
  });
});

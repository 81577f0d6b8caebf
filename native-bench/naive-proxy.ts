/**
 * The "no protection" baseline of the stampede benchmark: a cache-aside proxy
 * as it is often written. GET /v1/keys/item:<id> answers from a Map while the
 * value is fresh (the origin's max-age), and otherwise asks the origin, once
 * per request: no single-flight, no lock, no stale serving, no early refresh.
 *
 *   node naive-proxy.js <port> <origin url>
 */
import { createServer } from 'node:http';
import { Agent, request } from 'undici';

const port = Number(process.argv[2] ?? 0);
const origin = process.argv[3] ?? 'http://127.0.0.1:3000';
const agent = new Agent({ connections: 256, keepAliveTimeout: 60_000 });
const cache = new Map<string, { value: Buffer; expiresAt: number }>();

const server = createServer(async (req, res) => {
  const key = decodeURIComponent((req.url ?? '').replace('/v1/keys/', ''));
  const hit = cache.get(key);
  if (hit !== undefined && hit.expiresAt > Date.now()) {
    res.writeHead(200, { 'x-cache': 'L1' }).end(hit.value);
    return;
  }
  try {
    const answer = await request(`${origin}/items/${encodeURIComponent(key.slice('item:'.length))}`, { dispatcher: agent });
    const value = Buffer.from(await answer.body.arrayBuffer());
    const maxAge = Number(/max-age=(\d+)/.exec(String(answer.headers['cache-control'] ?? ''))?.[1] ?? 0);
    cache.set(key, { value, expiresAt: Date.now() + maxAge * 1000 });
    res.writeHead(200, { 'x-cache': 'ORIGIN' }).end(value);
  } catch {
    res.writeHead(502).end();
  }
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`naive listening on http://127.0.0.1:${(server.address() as { port: number }).port}\n`);
});

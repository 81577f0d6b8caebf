/**
 * The baseline for L2 hits: a bare uWebSockets.js server that answers
 * GET /v1/keys/:key with one auto-pipelined ioredis GET of the key as Strata
 * lays it out, returning the stored bytes as they are, and PUT with one SET
 * of the body (PX 1 h; l2.ts section 4 writes `--put-share`, 5 % by default). No validation, no
 * threads, no L1: what a request that must go to Redis costs at least.
 *
 *   node dist/native-bench/bare-redis-server.js PORT REDIS_URL
 */
import { Redis } from 'ioredis';
import { loadNativeUws } from '../src/http/uws.js';
import { valueKey } from '../src/l2/keys.js';

const uws = loadNativeUws();
const redis = new Redis(process.argv[3] ?? 'redis://127.0.0.1:6379', { enableAutoPipelining: true });
const app = uws.App();
app.get('/v1/keys/:key', (res, req) => {
  const key = req.getParameter(0) ?? '';
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  redis.getBuffer(valueKey(key)).then(
    (value) => {
      if (aborted) return;
      res.cork(() => {
        if (value === null) res.writeStatus('404 Not Found').end();
        else res.writeHeader('content-type', 'application/octet-stream').end(value);
      });
    },
    () => {
      if (!aborted) res.cork(() => res.writeStatus('503 Service Unavailable').end());
    },
  );
});
app.put('/v1/keys/:key', (res, req) => {
  const key = req.getParameter(0) ?? '';
  let aborted = false;
  res.onAborted(() => {
    aborted = true;
  });
  const chunks: Buffer[] = [];
  res.onData((chunk, last) => {
    // uWS reuses the chunk's memory after the callback: copy it.
    chunks.push(Buffer.from(new Uint8Array(chunk)));
    if (!last) return;
    redis.set(valueKey(key), Buffer.concat(chunks), 'PX', 3_600_000).then(
      () => {
        if (!aborted) res.cork(() => res.writeStatus('204 No Content').endWithoutBody());
      },
      () => {
        if (!aborted) res.cork(() => res.writeStatus('503 Service Unavailable').end());
      },
    );
  });
});
const port = Number(process.argv[2] ?? 0);
app.listen('127.0.0.1', port, (socket) => {
  if (socket === false) {
    process.stderr.write(`bare-redis-server: cannot listen on ${port}\n`);
    process.exit(1);
  }
  process.stdout.write(`bare-redis listening on http://127.0.0.1:${uws.us_socket_local_port(socket)}\n`);
});

/**
 * The baseline: a bare uWebSockets.js server answering GET /v1/keys/:key from a
 * Map, with the same value sizes and a content-type header, and PUT storing
 * the body. No validation, no threads: what Strata's per-request cost is
 * measured against.
 */
import { loadNativeUws } from '../src/http/uws.js';

const uws = loadNativeUws();
const map = new Map<string, Uint8Array>();
const app = uws.App();
app.get('/v1/keys/:key', (res, req) => {
  const value = map.get(req.getParameter(0) ?? '');
  if (value === undefined) res.writeStatus('404 Not Found').end();
  else res.writeHeader('content-type', 'application/octet-stream').end(value);
});
app.put('/v1/keys/:key', (res, req) => {
  const key = req.getParameter(0) ?? '';
  const parts: Uint8Array[] = [];
  res.onAborted(() => {});
  res.onData((chunk, last) => {
    parts.push(new Uint8Array(chunk.slice(0)));
    if (last) {
      map.set(key, Buffer.concat(parts));
      res.cork(() => res.writeStatus('204 No Content').endWithoutBody());
    }
  });
});
const port = Number(process.argv[2] ?? 0);
app.listen('127.0.0.1', port, (socket) => {
  if (socket === false) {
    process.stderr.write(`bare-server: cannot listen on ${port}\n`);
    process.exit(1);
  }
  process.stdout.write(`bare listening on http://127.0.0.1:${uws.us_socket_local_port(socket)}\n`);
});

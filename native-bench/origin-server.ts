/**
 * The origin the stampede benchmark puts behind Strata: every GET
 * /items/:id answers after LATENCY_MS with a small JSON value and
 * `Cache-Control: max-age=<TTL_S>`; GET /__count answers (and with ?reset
 * resets) how many item requests it served, and its largest concurrency.
 *
 *   node origin-server.js <port> <latencyMs> <ttlS>
 */
import { createServer } from 'node:http';

const port = Number(process.argv[2] ?? 0);
const latencyMs = Number(process.argv[3] ?? 50);
const ttlS = Number(process.argv[4] ?? 2);
let served = 0;
let inFlight = 0;
let peak = 0;

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (url.startsWith('/__count')) {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ served, peak }));
    if (url.includes('reset')) {
      served = 0;
      peak = 0;
    }
    return;
  }
  served++;
  inFlight++;
  peak = Math.max(peak, inFlight);
  setTimeout(() => {
    inFlight--;
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': `max-age=${ttlS}` }).end(JSON.stringify({ url, at: Date.now() }));
  }, latencyMs);
});
server.keepAliveTimeout = 60_000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`origin listening on http://127.0.0.1:${(server.address() as { port: number }).port}\n`);
});

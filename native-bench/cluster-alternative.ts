/**
 * What a user would build instead of Strata: node:cluster with N worker
 * processes, each a plain node:http server with its own lru-cache L1 of
 * l1MaxBytes / N, cache-aside over Redis.
 *
 * - GET /v1/keys/:key: the worker's L1, else one Redis GET (auto-pipelined);
 *   the value goes into the worker's L1. No single-flight.
 * - PUT /v1/keys/:key?ttl=S: Redis SET with the TTL, then the worker's own L1.
 *   The other workers are not told: they may serve the old value until it is
 *   evicted (Strata's shards own each key once, and its bus drops other nodes'
 *   copies).
 * - The primary accepts connections and hands them out round-robin (node's
 *   default on Linux); uWebSockets.js cannot share a socket across cluster
 *   workers, hence node:http.
 * - GET /stats on the primary's admin port: each worker's counters (gets, hits,
 *   puts, L1 entries) and pid, for hit ratios and per-process CPU.
 *
 * Each entry is charged its key (2 bytes a character), its value and
 * --entry-overhead-bytes (default 0), so that a run can charge entries as
 * Strata's L1 does and give both the same number of entries for one budget.
 *
 *   node dist/native-bench/cluster-alternative.js --port P --admin-port A --workers 2 \
 *     --redis-url redis://127.0.0.1:6379 --l1-max-bytes 12800000 [--entry-overhead-bytes 950] [--key-prefix ca:]
 */
import cluster, { type Worker } from 'node:cluster';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';

/** One worker's counters. */
export interface WorkerCounters {
  pid: number;
  /** GET requests. */
  gets: number;
  /** GETs answered from the worker's L1. */
  hits: number;
  /** GETs that found nothing in Redis either. */
  notFound: number;
  /** PUT requests written to Redis. */
  puts: number;
  /** Entries in the worker's L1 now. */
  entries: number;
}

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    'admin-port': { type: 'string', default: '0' },
    workers: { type: 'string', default: '2' },
    'redis-url': { type: 'string', default: 'redis://127.0.0.1:6379' },
    'l1-max-bytes': { type: 'string', default: String(64 * 1024 * 1024) },
    'entry-overhead-bytes': { type: 'string', default: '0' },
    // Keys in Redis are this prefix and the key, apart from Strata's layout in the same server.
    'key-prefix': { type: 'string', default: 'ca:' },
  },
});
const WORKERS = Number(args.workers);
const PORT = Number(args.port);
const KEY_PREFIX = args['key-prefix'];

function primary(): void {
  const workers: Worker[] = [];
  let listening = 0;
  let stopping = false;
  for (let i = 0; i < WORKERS; i++) {
    const worker = cluster.fork();
    worker.on('listening', () => {
      if (++listening === WORKERS) process.stdout.write(`cluster-alternative listening on http://127.0.0.1:${PORT} with ${WORKERS} workers\n`);
    });
    worker.on('exit', (code, signal) => {
      if (!stopping) {
        process.stderr.write(`cluster-alternative: worker ${worker.process.pid} exited (${code ?? signal}); stopping\n`);
        process.exit(1);
      }
    });
    workers.push(worker);
  }
  let nextId = 0;
  const counters = (worker: Worker) =>
    new Promise<WorkerCounters>((resolve) => {
      const id = nextId++;
      const onMessage = (message: { id?: number; counters?: WorkerCounters }) => {
        if (message.id !== id || message.counters === undefined) return;
        worker.off('message', onMessage);
        resolve(message.counters);
      };
      worker.on('message', onMessage);
      worker.send({ id, want: 'counters' });
    });
  const admin = createServer((req, res) => {
    if (req.url !== '/stats') {
      res.writeHead(404).end();
      return;
    }
    Promise.all(workers.map(counters)).then(
      (all) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ workers: all })),
      () => res.writeHead(500).end(),
    );
  });
  admin.listen(Number(args['admin-port']), '127.0.0.1');
  const stopAll = () => {
    if (stopping) return;
    stopping = true;
    admin.close();
    let left = workers.length;
    for (const worker of workers) {
      worker.once('exit', () => {
        if (--left === 0) process.exit(0);
      });
      worker.kill('SIGTERM');
    }
  };
  process.on('SIGTERM', stopAll);
  process.on('SIGINT', stopAll);
}

function worker(): void {
  const overhead = Number(args['entry-overhead-bytes']);
  const l1 = new LRUCache<string, Buffer>({
    maxSize: Math.floor(Number(args['l1-max-bytes']) / WORKERS),
    sizeCalculation: (value, key) => key.length * 2 + value.length + overhead,
  });
  const redis = new Redis(args['redis-url'], { enableAutoPipelining: true });
  const counters: WorkerCounters = { pid: process.pid, gets: 0, hits: 0, notFound: 0, puts: 0, entries: 0 };
  const answer = (res: ServerResponse, value: Buffer) => res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(value);

  const get = (key: string, res: ServerResponse) => {
    counters.gets++;
    const cached = l1.get(key);
    if (cached !== undefined) {
      counters.hits++;
      answer(res, cached);
      return;
    }
    redis.getBuffer(KEY_PREFIX + key).then(
      (value) => {
        if (value === null) {
          counters.notFound++;
          res.writeHead(404).end();
          return;
        }
        l1.set(key, value);
        answer(res, value);
      },
      () => res.writeHead(503).end(),
    );
  };

  const put = (key: string, ttlSeconds: number, req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const value = Buffer.concat(chunks);
      redis.set(KEY_PREFIX + key, value, 'EX', ttlSeconds).then(
        () => {
          counters.puts++;
          l1.set(key, value);
          res.writeHead(204).end();
        },
        () => res.writeHead(503).end(),
      );
    });
  };

  const server = createServer((req, res) => {
    const url = req.url ?? '';
    if (!url.startsWith('/v1/keys/')) {
      res.writeHead(404).end();
      return;
    }
    const query = url.indexOf('?');
    const key = decodeURIComponent(url.slice('/v1/keys/'.length, query < 0 ? undefined : query));
    if (req.method === 'GET') get(key, res);
    else if (req.method === 'PUT') put(key, Number(/[?&]ttl=(\d+)/.exec(url)?.[1] ?? 300), req, res);
    else res.writeHead(405).end();
  });
  server.keepAliveTimeout = 60_000;
  server.listen(PORT, '127.0.0.1');
  process.on('message', (message: { id: number; want?: string }) => {
    if (message.want === 'counters') process.send?.({ id: message.id, counters: { ...counters, entries: l1.size } });
  });
  process.on('SIGTERM', () => {
    server.close();
    redis.disconnect();
    process.exit(0);
  });
  process.on('disconnect', () => process.exit(0));
}

if (cluster.isPrimary) primary();
else worker();

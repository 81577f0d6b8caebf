/**
 * A front thread: one uWebSockets.js app listening on the node's port beside
 * the other fronts (SO_REUSEPORT: the kernel spreads connections). It answers
 * GET hits from the shards' hot-read indexes, sends everything else to the
 * shards over its own ports, and asks the supervisor (the main thread) for
 * the answers that need the whole node: /readyz, /metrics, /v1/stats.
 */
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { Forwarder } from '../cluster/forward.js';
import { FrontCounters } from '../counters/counters.js';
import { createApp } from '../http/app.js';
import { setNodeId } from '../http/respond.js';
import { loadNativeUws, type us_listen_socket } from '../http/uws.js';
import { HotIndexReader } from '../l1/hot-index.js';
import { ShardClient } from '../shards/client.js';
import { linuxThreadId } from '../thread-id.js';
import { type FromFront, type FrontWorkerData, internalAnswer, type Question, type SupervisorAnswer, type ToFront } from './messages.js';

/** How often the front publishes its event-loop utilization and delay, and its heap, ms. */
const UTILIZATION_INTERVAL_MS = 1000;
/** How often the event-loop delay is sampled, ms. */
const LOOP_DELAY_RESOLUTION_MS = 10;

const data = workerData as FrontWorkerData;
const port = parentPort;
if (port === null) throw new Error('src/front/thread.ts runs as a worker thread');
const post = (message: FromFront): void => port.postMessage(message);
const { config } = data;
const uws = loadNativeUws();
const counters = new FrontCounters(data.frontCounters, data.front, config.shards);
counters.started(linuxThreadId());

const shards = new ShardClient({
  shards: config.shards,
  requestTimeoutMs: config.requestTimeoutMs,
  onTimeout: (shard, threadId) => post({ type: 'timeout', shard, threadId }),
});

const asks = new Map<number, (answer: SupervisorAnswer) => void>();
let lastAsk = 0;
/** Asks the supervisor; a supervisor that does not answer in time gets a 500 in its place. */
function ask(question: Question): Promise<SupervisorAnswer> {
  const id = ++lastAsk;
  return new Promise<SupervisorAnswer>((resolve) => {
    const timer = setTimeout(() => {
      asks.delete(id);
      resolve(internalAnswer(`the node's supervisor did not answer within ${config.requestTimeoutMs} ms`));
    }, config.requestTimeoutMs);
    asks.set(id, (answer) => {
      clearTimeout(timer);
      asks.delete(id);
      resolve(answer);
    });
    post({ type: 'ask', id, question });
  });
}

setNodeId(data.nodeId);
// A forward gets half the request's deadline, so that a node that does not answer leaves time to serve the key here.
const forwarder = config.routing === 'owner' ? new Forwarder(data.nodeId, Math.floor(config.requestTimeoutMs / 2)) : null;

let draining = false;
const app = createApp(uws, { config, shards, counters, draining: () => draining, ask, forwarder });
let appClosed = false;
/** Closes every socket of the app. Required before the thread ends: uWS's handles left open abort the process. */
function closeApp(): void {
  if (appClosed) return;
  appClosed = true;
  (app as unknown as { close(): void }).close();
}
// An uncaught exception ends the thread through here as well: the node loses this front's connections, nothing else.
process.on('exit', closeApp);

let listenSocket: us_listen_socket | null = null;
/** Listens on the node's port; the supervisor says when (after it has sent every shard's port). */
function listen(): void {
  app.listen(config.host, data.port, (socket) => {
    if (socket === false) {
      post({ type: 'listenFailed', message: `cannot listen on ${config.host}:${data.port} (in use or not permitted)` });
      return;
    }
    listenSocket = socket;
    post({ type: 'listening' });
  });
}

let lastElu = performance.eventLoopUtilization();
// Event-loop delay sampled by a libuv timer every LOOP_DELAY_RESOLUTION_MS (no cost per request); reset each period.
const loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
loopDelay.enable();
const utilization = setInterval(() => {
  const elu = performance.eventLoopUtilization();
  // The histogram holds the time between the timer's runs: the resolution itself plus the delay.
  const delayP99Seconds = loopDelay.count === 0 ? 0 : Math.max(0, loopDelay.percentile(99) / 1e6 - LOOP_DELAY_RESOLUTION_MS) / 1e3;
  loopDelay.reset();
  counters.setLoop(performance.eventLoopUtilization(elu, lastElu).utilization, delayP99Seconds);
  lastElu = elu;
  // This isolate's heap only (process.memoryUsage() would also read the process's RSS from /proc).
  const heap = getHeapStatistics();
  counters.setHeap(heap.used_heap_size, heap.total_heap_size, heap.external_memory);
}, UTILIZATION_INTERVAL_MS);
utilization.unref();

async function drain(deadlineMs: number): Promise<void> {
  draining = true;
  if (listenSocket !== null) uws.us_listen_socket_close(listenSocket);
  listenSocket = null;
  // In-flight requests (a body still arriving, ops at a shard) finish before the shards stop.
  while (counters.active > 0 && Date.now() < deadlineMs) await new Promise((r) => setTimeout(r, 5));
  post({ type: 'drained' });
}

async function close(): Promise<void> {
  clearInterval(utilization);
  loopDelay.disable();
  await shards.close(0);
  await forwarder?.close();
  // Give responses corked in the last turn a chance to flush before sockets close.
  await new Promise((r) => setImmediate(r));
  closeApp();
  port?.close();
  process.exit(0);
}

port.on('message', (message: ToFront) => {
  switch (message.type) {
    case 'shard':
      shards.connect(
        message.shard,
        message.threadId,
        message.port,
        message.hotIndex === null || data.hotIndexShape === null ? null : new HotIndexReader(message.hotIndex, data.hotIndexShape, data.front),
      );
      return;
    case 'shardDown':
      shards.disconnect(message.shard, message.threadId, message.code, message.message);
      return;
    case 'answer':
      asks.get(message.id)?.(message.answer);
      return;
    case 'ring':
      forwarder?.update(message.members);
      return;
    case 'listen':
      listen();
      return;
    case 'drain':
      void drain(message.deadlineMs);
      return;
    case 'close':
      void close();
      return;
    case 'crash':
      setImmediate(() => {
        throw new Error(`front ${data.front} crashed on request (test)`);
      });
      return;
  }
});

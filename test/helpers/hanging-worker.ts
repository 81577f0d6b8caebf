import type { AttachTask, Batch, ConnectMessage } from '../../src/shards/protocol.js';
import attach from '../../src/shards/worker.js';

/** The real shard worker, except that a batch carrying the key "__hang__" makes it spin forever. */
export default function hangingAttach(task: AttachTask): Promise<void> {
  task.control.on('message', ({ port }: ConnectMessage) => {
    port.on('message', (batch: Batch) => {
      if (batch.keys.includes('__hang__')) for (;;);
    });
  });
  return attach(task);
}

import { connect } from 'node:net';

/** What came back on a raw connection: the bytes, and whether the server closed it. */
export interface RawReply {
  readonly text: string;
  readonly closedByServer: boolean;
}

/**
 * Sends bytes on a fresh TCP connection and collects the reply until the
 * server closes or `idleMs` pass with nothing more (then we close).
 */
export function rawRequest(port: number, payload: string | Buffer, idleMs = 300): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ text, closedByServer });
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(false), idleMs);
    };
    socket.on('connect', () => {
      socket.write(payload);
      arm();
    });
    socket.on('data', (d) => {
      text += d.toString('latin1');
      arm();
    });
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('error', (err) => (done ? undefined : reject(err)));
  });
}

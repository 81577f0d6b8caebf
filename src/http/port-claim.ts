import { connect, createServer, isIPv6, type Server } from 'node:net';
import { PortInUseError } from '../errors.js';

/**
 * Makes host:port this node's alone before uWebSockets.js listens on it.
 *
 * uWS binds its listen socket with SO_REUSEPORT, which lets several sockets
 * of one node (one per front thread) share the port; but Linux grants the
 * same to any other process of the same user, and two Strata nodes started
 * on one port would both listen while the kernel splits connections between
 * them. So, before listening:
 *
 * 1. a lock: an abstract Unix socket named after host:port (Linux; it
 *    vanishes with the process, even on SIGKILL, so nothing stale is left). A
 *    second Strata node on the same host:port finds it taken;
 * 2. a probe: a connection to host:port (to loopback for a wildcard host).
 *    It is accepted while anything listens there: another program, or another
 *    Strata node on an overlapping address (0.0.0.0 and 127.0.0.1). A bind
 *    without SO_REUSEPORT would say the same but also fail for a minute after
 *    a node on that port exits (its connections in TIME_WAIT), so the probe
 *    asks whether anyone answers instead.
 *
 * The lock stays held until release(). For port 0 the node first asks the
 * kernel for a free port (pickPort) and claims that: this uWS build sets
 * SO_REUSEPORT only on a socket bound to a given port, so every front must
 * listen on the number, not on 0.
 */
export interface PortClaim {
  release(): void;
}

/** Claims host:port, a port number other than 0 (see the file comment); rejects with PortInUseError when another process holds it. */
export async function claimPort(host: string, port: number): Promise<PortClaim> {
  const lock = await lockOf(host, port);
  if (lock instanceof Error) throw new PortInUseError(host, port, 'another Strata node listens there', lock);
  if (await answers(host, port)) {
    lock?.close();
    throw new PortInUseError(host, port, 'another process listens there');
  }
  lock?.unref();
  return { release: () => lock?.close() };
}

/** A port free on host now, as the kernel picks one for port 0 (claimed next with claimPort). */
export async function pickPort(host: string): Promise<number> {
  const server = await listenOn({ host, port: 0 });
  if (server instanceof Error) throw server;
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error(`no TCP port free on ${host}`);
  return address.port;
}

/** The lock (an abstract Unix socket; Linux only), or the error when another process has it. */
async function lockOf(host: string, port: number): Promise<Server | Error | null> {
  return process.platform === 'linux' ? await listenOn({ path: `\0strata:listen:${host}:${port}` }) : null;
}

/** How long the probe waits for a connection to be accepted or refused (loopback answers at once). */
const PROBE_TIMEOUT_MS = 1000;

/** True when a connection to host:port is accepted. */
function answers(host: string, port: number): Promise<boolean> {
  const target = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return new Promise((resolve) => {
    const socket = connect({ host: target, port, family: isIPv6(target) ? 6 : 0 });
    const done = (accepted: boolean) => {
      socket.destroy();
      resolve(accepted);
    };
    socket.setTimeout(PROBE_TIMEOUT_MS, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** A listening server, or the error that stopped it. */
function listenOn(options: { path: string } | { host: string; port: number }): Promise<Server | Error> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err) => resolve(err));
    server.listen(options, () => resolve(server));
  });
}

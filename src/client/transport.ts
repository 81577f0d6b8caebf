/**
 * How the client talks HTTP. On Node.js: undici's `request` over a
 * keep-alive Agent, about a third of the CPU of `fetch`, whose web streams
 * and per-call AbortSignal dominate a cache client's cost
 * (native-bench/README.md, "Serialization"). Elsewhere: `fetch`. Either
 * way an answer is read whole: cache values are small, and a whole body
 * is what a codec decodes.
 */

/** An HTTP answer, read whole. */
export interface Answer {
  readonly status: number;
  readonly ok: boolean;
  /** A response header (lower-case name), or null. */
  header(name: string): string | null;
  readonly bytes: Uint8Array;
  text(): string;
  json(): unknown;
}

/** Sends one request with a deadline; rejects with TransportError when there is no answer. */
export type Transport = (method: string, url: string, headers: Record<string, string>, body: Uint8Array | string | null, timeoutMs: number) => Promise<Answer>;

/** No answer: the deadline passed, or the node could not be reached. */
export class TransportError extends Error {
  constructor(
    readonly timedOut: boolean,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const decoder = new TextDecoder();

function answer(status: number, header: (name: string) => string | null, bytes: Uint8Array): Answer {
  return {
    status,
    ok: status >= 200 && status < 300,
    header,
    bytes,
    text: () => decoder.decode(bytes),
    json: () => JSON.parse(decoder.decode(bytes)) as unknown,
  };
}

/** `fetch`, for runtimes other than Node.js. */
export const fetchTransport: Transport = async (method, url, headers, body, timeoutMs) => {
  let res: Response;
  try {
    res = await fetch(url, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
    const bytes = new Uint8Array(await res.arrayBuffer());
    return answer(res.status, (name) => res.headers.get(name), bytes);
  } catch (err) {
    const timedOut = (err as Error).name === 'TimeoutError';
    throw new TransportError(timedOut, timedOut ? `no answer within ${timeoutMs} ms` : (err as Error).message, { cause: err });
  }
};

/** undici's keep-alive Agent and `request`, on Node.js: one Agent per client. */
export async function undiciTransport(): Promise<Transport & { close(): Promise<void> }> {
  const undici = await import('undici');
  const agent = new undici.Agent({ keepAliveTimeout: 30_000, connections: 64 });
  const send: Transport = async (method, url, headers, body, timeoutMs) => {
    const ms = Math.max(1, Math.floor(timeoutMs));
    try {
      const res = await undici.request(url, {
        method: method as 'GET',
        headers,
        body,
        dispatcher: agent,
        headersTimeout: ms,
        bodyTimeout: ms,
      });
      const bytes = new Uint8Array(await res.body.arrayBuffer());
      const header = (name: string): string | null => {
        const v = res.headers[name];
        return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
      };
      return answer(res.statusCode, header, bytes);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      const timedOut = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
      throw new TransportError(timedOut, timedOut ? `no answer within ${timeoutMs} ms` : (err as Error).message, { cause: err });
    }
  };
  return Object.assign(send, { close: () => agent.close() });
}

/** The transport for this runtime: undici on Node.js, fetch elsewhere. */
export async function defaultTransport(): Promise<Transport & { close?(): Promise<void> }> {
  const node = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions?.node;
  return node === undefined ? fetchTransport : undiciTransport();
}

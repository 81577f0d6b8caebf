import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** How the test origin answers a path: status, body, headers, and whether to hold the answer. */
export interface Route {
  status?: number;
  /** A fixed body, or one made per request (its number for this path, from 1). */
  body?: string | ((n: number) => string);
  headers?: Record<string, string>;
  /** ETag: a conditional GET with a matching If-None-Match is answered 304. */
  etag?: string;
  /** Latency of every answer, ms (a slow origin). */
  delayMs?: number;
}

/** What the origin received. */
export interface Received {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/**
 * A real HTTP origin for the tests: answers each path as told, counts what
 * it received, and can hold answers until the test releases them (to put
 * many readers in flight behind one load, or to keep a lock holder busy).
 */
export class TestOrigin {
  readonly received: Received[] = [];
  readonly #routes = new Map<string, Route>();
  readonly #held: (() => void)[] = [];
  #holding = 0;
  #holdAll = false;
  #arrived: (() => void)[] = [];
  readonly #server: Server;
  port = 0;

  private constructor() {
    this.#server = createServer((req, res) => this.#handle(req, res));
    this.#server.keepAliveTimeout = 30_000;
  }

  static async start(): Promise<TestOrigin> {
    const origin = new TestOrigin();
    await new Promise<void>((resolve) => origin.#server.listen(0, '127.0.0.1', resolve));
    origin.port = (origin.#server.address() as { port: number }).port;
    return origin;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Sets how a path is answered (unset paths: 404). */
  route(path: string, route: Route): void {
    this.#routes.set(path, route);
  }

  /** Requests received for path (by method, GET by default). */
  hits(path: string, method = 'GET'): number {
    return this.received.filter((r) => r.path === path && r.method === method).length;
  }

  /** Holds the next n answers (every answer with Infinity) until release(). */
  hold(n = 1): void {
    if (n === Number.POSITIVE_INFINITY) this.#holdAll = true;
    else this.#holding += n;
  }

  /** Answers held so far. */
  get held(): number {
    return this.#held.length;
  }

  /**
   * Sends the oldest held answer (all of them with `all`); later ones are no
   * longer held after `all`. When none has arrived yet, the next one to
   * arrive is not held.
   */
  release(all = false): void {
    if (all) {
      this.#holdAll = false;
      this.#holding = 0;
      for (const send of this.#held.splice(0)) send();
    } else {
      const send = this.#held.shift();
      // The held request has not arrived yet (it is still on its way from a node): it is no longer held when it does.
      if (send === undefined) this.#holding = Math.max(0, this.#holding - 1);
      else send();
    }
  }

  /** Resolves once `count` requests have been received in all. */
  async arrived(count: number): Promise<void> {
    while (this.received.length < count) await new Promise<void>((r) => this.#arrived.push(r));
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = (req.url ?? '/').split('?')[0] as string;
      const method = req.method ?? 'GET';
      this.received.push({ method, path, headers: req.headers, body: Buffer.concat(chunks).toString() });
      for (const wake of this.#arrived.splice(0)) wake();
      const n = this.hits(path, method);
      const delay = this.#routes.get(path)?.delayMs ?? 0;
      const send = delay > 0 ? () => setTimeout(() => this.#answer(req, res, path, method, n), delay) : () => this.#answer(req, res, path, method, n);
      if (this.#holdAll || this.#holding > 0) {
        if (!this.#holdAll) this.#holding--;
        this.#held.push(send);
      } else {
        send();
      }
    });
  }

  #answer(req: IncomingMessage, res: ServerResponse, path: string, method: string, n: number): void {
    if (res.destroyed || req.socket.destroyed) return;
    const route = this.#routes.get(path);
    if (route === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('no such path');
      return;
    }
    const headers: Record<string, string> = { ...route.headers };
    if (route.etag !== undefined) headers.etag = route.etag;
    if (method === 'GET' && route.etag !== undefined && req.headers['if-none-match'] === route.etag) {
      res.writeHead(304, headers).end();
      return;
    }
    const body = method === 'GET' ? (typeof route.body === 'function' ? route.body(n) : (route.body ?? '')) : '';
    res.writeHead(route.status ?? 200, { 'content-type': 'text/plain', ...headers }).end(body);
  }

  async stop(): Promise<void> {
    this.release(true);
    this.#server.closeAllConnections();
    await new Promise((r) => this.#server.close(r));
  }
}

/**
 * The message format between a shard client (a front, or the main thread)
 * and a shard worker: one Batch per shard per client event-loop turn over the
 * client's own MessagePort to that worker. The answer
 * is an ArrayBuffer that is transferred, not copied, and names its batch. Ops
 * the shard can finish at once (L1 hits, L1-only writes) are answered in the
 * first buffer; ops that wait (for the L2, an origin, a lease) are marked
 * PENDING there and answered in later buffers for the same batch, one per
 * event-loop turn in which some of them finish, so an L2 round trip never
 * holds up the L1 hits batched with it, nor an origin load the L2 hits.
 * Batches may therefore finish out of order.
 */

/** Operation codes in BatchTask.ops. */
export const OP = {
  /** Look up a key; the answer carries the value. */
  GET: 1,
  /** Look up a key; the answer carries only the value's length. */
  HEAD: 2,
  /** Store puts[i] under keys[i]. */
  PUT: 3,
  /** Remove keys[i]; the answer's COUNT is 1 when it was present. */
  DELETE: 4,
  /**
   * keys[i] is a tag: remove every entry carrying it. Sent first to the tag's
   * own shard, which also sweeps the L2 and tells the other nodes, then
   * (INVALIDATE_TAG_L1) to every shard of the node, so that nothing read
   * from the L2 before the sweep stays in an L1.
   */
  INVALIDATE_TAG: 5,
  /** Remove keys[i] from this L1 only (another node changed it). */
  DROP: 6,
  /** Remove entries tagged keys[i] from this L1 only (another node invalidated the tag). */
  DROP_TAG: 7,
  /** Empty this L1 (the bus may have lost messages: nothing here can be trusted). */
  CLEAR: 8,
  /** This node's invalidation of tag keys[i], second step: remove its entries from this L1; COUNT is L1's count without an L2, else 0. */
  INVALIDATE_TAG_L1: 9,
  /** Give back the lease args[i].lease holds on keys[i] without storing (its holder's load failed); the value is left alone. */
  RELEASE: 10,
} as const;
export type OpCode = (typeof OP)[keyof typeof OP];

/** What a PUT carries besides its key. */
export interface PutArgs {
  readonly kind: 'put';
  readonly value: Uint8Array;
  readonly contentType: string;
  readonly ttlMs: number;
  /** After ttlMs, how long the value may still be served stale (`?swr=`), ms. */
  readonly swrMs: number;
  readonly tags: readonly string[] | null;
  /** A lease token (`strata-lease`): store only while it holds the key's lease. */
  readonly lease: string | null;
  /**
   * Whether this node keeps the value in its L1 once it is in the L2. False
   * when another node owns the key (docs/cluster.md): reads go there, and
   * a copy here would take L1 space that no read uses.
   */
  readonly keep: boolean;
}

/** What a lease's give-back carries: the token. */
export interface ReleaseArgs {
  readonly kind: 'release';
  readonly lease: string;
}

/** What a GET (or HEAD) may carry besides its key; ops without args are plain reads. */
export interface GetArgs {
  readonly kind: 'get';
  /** `?lease=`: on a miss, hand this caller the lease for this long, ms (0 = no lease). */
  readonly leaseMs: number;
  /** `?wait=`: how long a caller without the lease waits for the fill, ms. */
  readonly waitMs: number;
  /** Answer from the cache only, never load from an origin (mget). */
  readonly cacheOnly: boolean;
}

/** An op's arguments. */
export type OpArgs = PutArgs | GetArgs | ReleaseArgs;

/**
 * The piscina task that hands a worker its shard and its control port: the
 * supervisor sends a ConnectMessage there for every shard client (each front,
 * and the main thread), whose batches then arrive on the port it carries.
 */
export interface AttachTask {
  readonly shard: number;
  readonly control: import('node:worker_threads').MessagePort;
  /** A fresh hot-read index for this worker (shared, not copied), or null when it is off. */
  readonly hotIndex: SharedArrayBuffer | null;
  /** This worker's row of origin slots (OriginSlots.newRow), or null without origins. */
  readonly originRow: SharedArrayBuffer | null;
}

/** On a worker's control port: a client's port; batches arrive there and their answers go back on it. */
export interface ConnectMessage {
  readonly port: import('node:worker_threads').MessagePort;
}

/** One batch for one shard. `args` is indexed like `ops`, null where an op has none (or for all). */
export interface Batch {
  /** Names the batch in its answers (unique per shard link). */
  readonly id: number;
  /** Epoch ms (performance.timeOrigin + now) when the front closed the batch. */
  readonly sentAtMs: number;
  readonly ops: number[];
  readonly keys: string[];
  readonly args: (OpArgs | null)[] | null;
}

/** Where an answer's value came from: the `x-cache` header (NEGATIVE answers give its index as ARG). */
export const LEVELS = ['L1', 'L2', 'ORIGIN', 'STALE'] as const;
export type Level = (typeof LEVELS)[number];

/**
 * Result status per op. Every status answers with the fields below; where a
 * status uses the data area, it says which part.
 */
export const STATUS = {
  /** Not cached (404 E_KEY_NOT_FOUND). */
  MISS: 0,
  /** A value: head block and (GET) value bytes; the head's x-cache says from where (L1, L2, ORIGIN, STALE). DETAIL: a lease token, when the caller got the lease with a stale value. */
  HIT: 1,
  STORED: 2,
  /** Done; ARG: how many it removed (DELETE, invalidate). */
  DONE: 3,
  /** The value cannot fit in this partition even when empty. */
  TOO_LARGE: 4,
  /** Not answered in this buffer: a later buffer for the same batch answers it. */
  PENDING: 5,
  /** The L2 could not serve it; ARG is the index of the kind in L2_ERROR_KINDS. */
  L2_ERROR: 6,
  /** The origin has no such value (cached for negativeTtl): 404; ARG: where the answer came from (its index in LEVELS). */
  NEGATIVE: 7,
  /** Not cached, and this caller holds the lease: 404 with DETAIL = the token. */
  LEASED: 8,
  /** Not cached, and the wait for another caller's fill ended: 404 with Retry-After = ARG seconds. */
  WAIT_TIMEOUT: 9,
  /** The origin failed: 502; ARG = its status (0: no answer), DETAIL = why. */
  ORIGIN_ERROR: 10,
  /** The origin (or a load by another node) did not answer in time: 504; DETAIL = why. */
  ORIGIN_TIMEOUT: 11,
  /** maxConcurrent origin requests are in flight: 503 with Retry-After = ARG seconds. */
  ORIGIN_BUSY: 12,
  /** The lease no longer holds: 409, nothing stored; DETAIL = why. */
  LEASE_LOST: 13,
} as const;

/**
 * Fields per op in the result header (Float64). The data area after the
 * header holds, per op, a detail text (UTF-8), its head block, then (GET
 * only) the value, each as long as its field says.
 *
 * The head block is the response's content-type value followed by the other
 * per-entry headers, CRLF-joined (`text/plain\r\netag: "…"\r\nx-cache: L1`),
 * so the front writes them with one uWS call. Safe because a stored
 * content-type is checked to be printable ASCII (no CR or LF).
 */
export const FIELD = {
  STATUS: 0,
  CREATED_MS: 1,
  /** Offset in the result buffer of this op's data: detail, head block, then (GET) value. */
  OFFSET: 2,
  HEAD_LEN: 3,
  /** Value length (HEAD: the length of the value not sent). */
  VALUE_LEN: 4,
  DETAIL_LEN: 5,
  /** A number whose meaning the status gives (a count, a status code, seconds, an error kind). */
  ARG: 6,
} as const;
export const FIELDS = 7;

/** Bytes before the per-op fields: the batch id (Float64). */
export const RESULT_PREFIX_BYTES = 8;

/** Bytes of the header for n ops (batch id, then the fields); the data area starts here. */
export function headerBytes(n: number): number {
  return RESULT_PREFIX_BYTES + n * FIELDS * 8;
}

const decoder = new TextDecoder();

/**
 * A shard's answer to a batch, read op by op: the one place that knows the
 * layout above on the reading side (the HTTP code asks it, never indexes).
 */
export class BatchResult {
  readonly header: Float64Array;
  readonly bytes: Uint8Array;

  constructor(buffer: ArrayBuffer, ops: number) {
    this.header = new Float64Array(buffer, RESULT_PREFIX_BYTES, ops * FIELDS);
    this.bytes = new Uint8Array(buffer);
  }

  /** The batch id a result buffer names. */
  static idOf(buffer: ArrayBuffer): number {
    return new Float64Array(buffer, 0, 1)[0] as number;
  }

  #field(i: number, field: number): number {
    return this.header[i * FIELDS + field] as number;
  }

  status(i: number): number {
    return this.#field(i, FIELD.STATUS);
  }

  createdMs(i: number): number {
    return this.#field(i, FIELD.CREATED_MS);
  }

  /** The numeric argument of the status (see STATUS). */
  arg(i: number): number {
    return this.#field(i, FIELD.ARG);
  }

  /** The head block, as a view into the buffer. */
  head(i: number): Uint8Array {
    const at = this.#field(i, FIELD.OFFSET) + this.#field(i, FIELD.DETAIL_LEN);
    return this.bytes.subarray(at, at + this.#field(i, FIELD.HEAD_LEN));
  }

  /** The value's length (also for HEAD, which carries no bytes). */
  valueLength(i: number): number {
    return this.#field(i, FIELD.VALUE_LEN);
  }

  /** The value, as a view into the buffer (GET only: a HEAD answer carries its length, not its bytes). */
  value(i: number): Uint8Array {
    const at = this.#field(i, FIELD.OFFSET) + this.#field(i, FIELD.DETAIL_LEN) + this.#field(i, FIELD.HEAD_LEN);
    return this.bytes.subarray(at, at + this.#field(i, FIELD.VALUE_LEN));
  }

  /** The detail text, '' when there is none. */
  detail(i: number): string {
    const length = this.#field(i, FIELD.DETAIL_LEN);
    if (length === 0) return '';
    const at = this.#field(i, FIELD.OFFSET);
    return decoder.decode(this.bytes.subarray(at, at + length));
  }
}

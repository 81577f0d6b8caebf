/**
 * The message format between the front and a shard worker: one Batch per
 * shard per front event-loop turn over the shard's own MessagePort. The answer
 * is an ArrayBuffer that is transferred, not copied, and names its batch. Ops
 * the shard can finish at once (L1 hits, L1-only writes) are answered in the
 * first buffer; ops that wait for the L2 are marked PENDING there and answered
 * by one later buffer for the same batch, so an L2 round trip never holds up
 * the L1 hits batched with it. Batches may therefore finish out of order.
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
} as const;
export type OpCode = (typeof OP)[keyof typeof OP];

/** What a PUT carries besides its key. */
export interface PutArgs {
  readonly value: Uint8Array;
  readonly contentType: string;
  readonly ttlMs: number;
  readonly tags: readonly string[] | null;
}

/** The piscina task that hands a worker its shard and the port batches arrive on. */
export interface AttachTask {
  readonly shard: number;
  readonly port: import('node:worker_threads').MessagePort;
  /** A fresh hot-read index for this worker (shared, not copied), or null when it is off. */
  readonly hotIndex: SharedArrayBuffer | null;
}

/** One batch for one shard. `puts` is indexed like `ops`, null where the op is not a PUT. */
export interface Batch {
  /** Names the batch in its answers (unique per shard link). */
  readonly id: number;
  /** Epoch ms (performance.timeOrigin + now) when the front closed the batch. */
  readonly sentAtMs: number;
  readonly ops: number[];
  readonly keys: string[];
  readonly puts: (PutArgs | null)[] | null;
}

/** Result status per op. */
export const STATUS = {
  MISS: 0,
  HIT: 1,
  STORED: 2,
  DONE: 3,
  /** The value cannot fit in this partition even when empty. */
  TOO_LARGE: 4,
  /** Not answered in this buffer: a later buffer for the same batch answers it. */
  PENDING: 5,
  /** The L2 could not serve it; VALUE_LEN is the index of the kind in L2_ERROR_KINDS. */
  L2_ERROR: 6,
} as const;

/**
 * Fields per op in the result header (Float64). The data area after the header
 * holds, per hit: the header block, then (GET only) the value.
 *
 * The header block is the response's content-type value followed by the other
 * per-entry headers, CRLF-joined (`text/plain\r\netag: "…"\r\nx-cache: L1`),
 * so the front writes them with one uWS call. Safe because a stored
 * content-type is checked to be printable ASCII (no CR or LF).
 */
export const FIELD = {
  STATUS: 0,
  CREATED_MS: 1,
  /** Offset in the result buffer of this op's header block. */
  OFFSET: 2,
  HEAD_LEN: 3,
  /** Value length (HEAD: length of the value not sent); DELETE/INVALIDATE_TAG: removed count. */
  VALUE_LEN: 4,
} as const;
export const FIELDS = 5;

/** Bytes before the per-op fields: the batch id (Float64). */
export const RESULT_PREFIX_BYTES = 8;

/** Bytes of the header for n ops (batch id, then the fields); the data area starts here. */
export function headerBytes(n: number): number {
  return RESULT_PREFIX_BYTES + n * FIELDS * 8;
}

import { FIELD, FIELDS, headerBytes, OP, RESULT_PREFIX_BYTES, STATUS } from './protocol.js';

/**
 * A value as an answer carries it: the pre-rendered head block, the value,
 * and when it was stored. An L1 entry is one as it is.
 */
export interface Found {
  readonly head: Uint8Array;
  readonly value: Uint8Array;
  readonly createdMs: number;
}

const encoder = new TextEncoder();

/**
 * The answers of one batch (or of the part of it that is ready), filled op
 * by op, then packed into one transferable buffer in the layout protocol.ts
 * describes. The one place that writes that layout.
 */
export class Answers {
  readonly #header: Float64Array;
  readonly #found: (Found | undefined)[];
  readonly #suffixes: (Uint8Array | undefined)[];
  readonly #details: (Uint8Array | undefined)[];
  #dataBytes = 0;

  /** With `pending`, every op starts as PENDING (a later part); otherwise as MISS. */
  constructor(
    readonly id: number,
    readonly ops: readonly number[],
    pending: boolean,
  ) {
    const n = ops.length;
    this.#header = new Float64Array(n * FIELDS);
    if (pending) for (let i = 0; i < n; i++) this.#header[i * FIELDS + FIELD.STATUS] = STATUS.PENDING;
    this.#found = new Array(n);
    this.#suffixes = new Array(n);
    this.#details = new Array(n);
  }

  /**
   * Op i answers HIT with a value, its head block followed by `suffix` (the
   * x-cache line: written after the head, not copied onto it), and
   * optionally a detail (a lease token).
   */
  hit(i: number, found: Found, suffix: Uint8Array, detail = ''): void {
    this.#header[i * FIELDS + FIELD.STATUS] = STATUS.HIT;
    this.#found[i] = found;
    this.#suffixes[i] = suffix;
    this.#dataBytes += found.head.byteLength + suffix.byteLength + (this.ops[i] === OP.GET ? found.value.byteLength : 0);
    this.#detail(i, detail);
  }

  /** Op i answers with a status, its numeric argument and a detail text. */
  set(i: number, status: number, arg = 0, detail = ''): void {
    this.#header[i * FIELDS + FIELD.STATUS] = status;
    this.#header[i * FIELDS + FIELD.ARG] = arg;
    this.#detail(i, detail);
  }

  #detail(i: number, detail: string): void {
    if (detail === '') return;
    const bytes = encoder.encode(detail);
    this.#details[i] = bytes;
    this.#dataBytes += bytes.byteLength;
  }

  /** The status op i has now. */
  status(i: number): number {
    return this.#header[i * FIELDS + FIELD.STATUS] as number;
  }

  /** Packs the batch id, the fields and the data into one buffer. */
  pack(): ArrayBuffer {
    const header = this.#header;
    const n = this.ops.length;
    const headerSize = headerBytes(n);
    const buffer = new ArrayBuffer(headerSize + this.#dataBytes);
    const bytes = new Uint8Array(buffer);
    let offset = headerSize;
    for (let i = 0; i < n; i++) {
      const entry = this.#found[i];
      const detail = this.#details[i];
      if (entry === undefined && detail === undefined) continue;
      const base = i * FIELDS;
      header[base + FIELD.OFFSET] = offset;
      if (detail !== undefined) {
        header[base + FIELD.DETAIL_LEN] = detail.byteLength;
        bytes.set(detail, offset);
        offset += detail.byteLength;
      }
      if (entry === undefined) continue;
      const suffix = this.#suffixes[i] as Uint8Array;
      header[base + FIELD.CREATED_MS] = entry.createdMs;
      header[base + FIELD.HEAD_LEN] = entry.head.byteLength + suffix.byteLength;
      header[base + FIELD.VALUE_LEN] = entry.value.byteLength;
      bytes.set(entry.head, offset);
      offset += entry.head.byteLength;
      bytes.set(suffix, offset);
      offset += suffix.byteLength;
      if (this.ops[i] === OP.GET) {
        bytes.set(entry.value, offset);
        offset += entry.value.byteLength;
      }
    }
    new Float64Array(buffer, 0, 1)[0] = this.id;
    bytes.set(new Uint8Array(header.buffer), RESULT_PREFIX_BYTES);
    return buffer;
  }
}

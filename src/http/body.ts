import type { HeaderScan } from './headers.js';
import type { HttpResponse } from './uws.js';

/** How to read one request body. */
export interface BodyReader {
  /** Largest body accepted; past it the rest is read and dropped (up to TOO_LARGE_DRAIN_BYTES more), then onTooLarge is called. */
  readonly maxBytes: number;
  /** The whole body, in its own ArrayBuffer (so it can be transferred). */
  readonly onBody: (body: Uint8Array) => void;
  /** The body is over maxBytes: `announced` is its Content-Length when that said so, else null. */
  readonly onTooLarge: (announced: number | null) => void;
  /** uWS mis-read the chunked framing; the request must be refused and the connection closed. */
  readonly onBadFraming: (why: string) => void;
}

/**
 * Bodies announced at up to this many bytes get their whole buffer at the
 * first chunk: one allocation and no final copy. Larger ones grow with what
 * arrives, so that a client announcing a large body and sending little
 * cannot make the node reserve it.
 */
const PREALLOCATE_MAX_BYTES = 64 * 1024;

/**
 * A body over the limit is read to its end and dropped, up to this many
 * bytes past the limit, before the 413 goes out: a client still sending
 * when the answer and the close came would get a reset (EPIPE) instead of
 * the answer. Past it (or when the announced length is past it), the 413
 * goes out at once and the connection closes.
 */
export const TOO_LARGE_DRAIN_BYTES = 1024 * 1024;

/**
 * How long a body whose bytes end like a chunked terminator waits for more
 * before it is refused as mis-framed: uWS delivers the real end of a message
 * (an empty last chunk) right after the data, so a value that merely ends
 * with those bytes is not refused.
 */
export const MISFRAMED_GRACE_MS = 250;

// The last-chunk line and the empty line that end a chunked body (RFC 9112 §7.1), after a chunk's CRLF.
const TERMINATOR = [0x0a, 0x30, 0x0d, 0x0a, 0x0d, 0x0a]; // "\n0\r\n\r\n"

/**
 * Reads a request body. Chunks are copied as they arrive (uWS reuses their
 * memory after the callback).
 *
 * Chunked bodies: uWebSockets.js 20.30 reads a chunk extension (`5;a=b`,
 * RFC 9112 §7.1.1) as more hexadecimal digits of the chunk size (`;` and `=`
 * count as digits), so it waits for bytes that never come and hands the rest
 * of the message, terminator included, over as body data. A correct parse
 * never delivers the terminator as data, so a body that ends with
 * `\n0\r\n\r\n` and is still not complete MISFRAMED_GRACE_MS later was
 * mis-framed: refused then, instead of waiting for the idle timeout. Extensions that uWS rejects outright close the
 * connection without an answer (docs/errors.md).
 */
export function readBody(res: HttpResponse, h: HeaderScan, reader: BodyReader): void {
  const { maxBytes, onBody, onTooLarge, onBadFraming } = reader;
  const chunked = h.codings > 0;
  // The header checks allow one Content-Length at most (see headers.ts); -1: none (chunked, or no body).
  const length = h.contentLengths === 1 ? Number(h.contentLength) : -1;
  if (length > maxBytes + TOO_LARGE_DRAIN_BYTES) {
    onTooLarge(length);
    return;
  }
  if (length >= 0 && length <= PREALLOCATE_MAX_BYTES && length <= maxBytes) {
    readKnownLength(res, length, onBody);
    return;
  }
  let parts: Uint8Array[] | null = null;
  let size = 0;
  let over = false;
  /** Armed when the bytes so far end like a terminator; more data (the real end) disarms it. */
  let misframed: NodeJS.Timeout | undefined;
  res.onData((chunk, isLast) => {
    if (over) return;
    clearTimeout(misframed);
    size += chunk.byteLength;
    if (size > maxBytes) {
      // Dropped as it comes; answered at its end, or once it is past the drain allowance.
      parts = null;
      if (isLast || size > maxBytes + TOO_LARGE_DRAIN_BYTES) {
        over = true;
        onTooLarge(length >= 0 ? length : null);
      }
      return;
    }
    if (isLast && parts === null) {
      onBody(new Uint8Array(chunk.slice(0)));
      return;
    }
    if (chunk.byteLength > 0) (parts ??= []).push(new Uint8Array(chunk.slice(0)));
    if (!isLast) {
      // A value may itself end with those bytes: then its real framing follows at once, and uWS says it is complete.
      if (chunked && endsWithTerminator(parts, size)) {
        misframed = setTimeout(() => {
          over = true;
          parts = null;
          onBadFraming('a chunk-size line this server cannot read (chunk extensions are not supported); send Content-Length');
        }, MISFRAMED_GRACE_MS);
      }
      return;
    }
    const body = new Uint8Array(size);
    let offset = 0;
    for (const part of parts ?? []) {
      body.set(part, offset);
      offset += part.byteLength;
    }
    onBody(body);
  });
}

/** A body of a known, small length: copied straight into its one buffer as it arrives (uWS enforces the length). */
function readKnownLength(res: HttpResponse, length: number, onBody: (body: Uint8Array) => void): void {
  let body: Uint8Array | null = null;
  let offset = 0;
  res.onData((chunk, isLast) => {
    body ??= new Uint8Array(length);
    body.set(new Uint8Array(chunk), offset);
    offset += chunk.byteLength;
    if (isLast) onBody(offset === length ? body : body.subarray(0, offset));
  });
}

/** True when the bytes received so far end with the chunked terminator (or are exactly `0\r\n\r\n`). */
function endsWithTerminator(parts: readonly Uint8Array[] | null, size: number): boolean {
  if (parts === null || size < TERMINATOR.length - 1) return false;
  // Walk back over the parts: the terminator may be split across them.
  let p = parts.length - 1;
  let i = (parts[p] as Uint8Array).byteLength - 1;
  for (let t = TERMINATOR.length - 1; t >= 0; t--) {
    while (i < 0) {
      if (--p < 0) return t === 0; // the body is exactly "0\r\n\r\n"
      i = (parts[p] as Uint8Array).byteLength - 1;
    }
    if ((parts[p] as Uint8Array)[i--] !== TERMINATOR[t]) return false;
  }
  return true;
}

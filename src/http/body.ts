import type { HttpResponse } from './uws.js';

/**
 * Reads a request body up to maxBytes. Chunks are copied as they arrive (uWS
 * reuses their memory after the callback). Calls onTooLarge as soon as the
 * limit is passed, without buffering the rest; onBody with the whole body
 * otherwise. The result owns its own ArrayBuffer, so it can be transferred.
 */
export function readBody(res: HttpResponse, maxBytes: number, onBody: (body: Uint8Array) => void, onTooLarge: () => void): void {
  let parts: Uint8Array[] | null = null;
  let size = 0;
  let over = false;
  res.onData((chunk, isLast) => {
    if (over) return;
    size += chunk.byteLength;
    if (size > maxBytes) {
      over = true;
      parts = null;
      onTooLarge();
      return;
    }
    if (isLast && parts === null) {
      onBody(new Uint8Array(chunk.slice(0)));
      return;
    }
    if (chunk.byteLength > 0) (parts ??= []).push(new Uint8Array(chunk.slice(0)));
    if (isLast) {
      const body = new Uint8Array(size);
      let offset = 0;
      for (const part of parts ?? []) {
        body.set(part, offset);
        offset += part.byteLength;
      }
      onBody(body);
    }
  });
}

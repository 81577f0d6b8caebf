/**
 * The bytes stored in Redis for one value: a compact header (metadata) then
 * the value itself, so one GET returns both.
 *
 *   u8  version (1)
 *   u8  tag count
 *   u16 content-type length   | content-type (ASCII)
 *   u8  etag length           | etag (ASCII)
 *   f64 created (epoch ms)
 *   f64 expires (epoch ms; Redis drops the key then too, by PX)
 *   per tag: u8 length | tag (UTF-8)
 *   value (the rest)
 */
export const ENVELOPE_VERSION = 2;

/** A value with the metadata Strata answers with. */
export interface L2Entry {
  readonly value: Uint8Array;
  readonly contentType: string;
  readonly etag: string;
  readonly createdMs: number;
  /** When it expires, epoch ms by the writer's clock; readers derive the L1 TTL from it. */
  readonly expiresMs: number;
  readonly tags: readonly string[] | null;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes an entry into one Buffer. */
export function encodeEnvelope(entry: L2Entry): Buffer {
  const ct = Buffer.from(entry.contentType, 'latin1');
  const etag = Buffer.from(entry.etag, 'latin1');
  const tags = (entry.tags ?? []).map((t) => encoder.encode(t));
  if (ct.length > 0xffff || etag.length > 0xff || tags.length > 0xff || tags.some((t) => t.length > 0xff)) {
    throw new RangeError('envelope field too long');
  }
  const size = 1 + 1 + 2 + ct.length + 1 + etag.length + 16 + tags.reduce((n, t) => n + 1 + t.length, 0) + entry.value.length;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  out[at++] = ENVELOPE_VERSION;
  out[at++] = tags.length;
  out.writeUInt16LE(ct.length, at);
  at += 2;
  ct.copy(out, at);
  at += ct.length;
  out[at++] = etag.length;
  etag.copy(out, at);
  at += etag.length;
  out.writeDoubleLE(entry.createdMs, at);
  at += 8;
  out.writeDoubleLE(entry.expiresMs, at);
  at += 8;
  for (const tag of tags) {
    out[at++] = tag.length;
    out.set(tag, at);
    at += tag.length;
  }
  out.set(entry.value, at);
  return out;
}

/** Decodes what encodeEnvelope wrote; throws on anything else (a foreign or corrupt value). */
export function decodeEnvelope(bytes: Uint8Array): L2Entry {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (why: string): never => {
    throw new RangeError(`not a Strata L2 envelope: ${why}`);
  };
  if (buf.length < 21) fail('too short');
  if (buf[0] !== ENVELOPE_VERSION) fail(`version ${buf[0]}`);
  const tagCount = buf[1] as number;
  let at = 2;
  const ctLength = buf.readUInt16LE(at);
  at += 2;
  if (at + ctLength + 1 > buf.length) fail('content-type overruns');
  const contentType = buf.toString('latin1', at, at + ctLength);
  at += ctLength;
  const etagLength = buf[at++] as number;
  if (at + etagLength + 16 > buf.length) fail('etag overruns');
  const etag = buf.toString('latin1', at, at + etagLength);
  at += etagLength;
  const createdMs = buf.readDoubleLE(at);
  at += 8;
  const expiresMs = buf.readDoubleLE(at);
  at += 8;
  const tags: string[] = [];
  for (let i = 0; i < tagCount; i++) {
    if (at >= buf.length) fail('tags overrun');
    const length = buf[at++] as number;
    if (at + length > buf.length) fail('tag overruns');
    tags.push(decoder.decode(buf.subarray(at, at + length)));
    at += length;
  }
  return { value: new Uint8Array(buf.subarray(at)), contentType, etag, createdMs, expiresMs, tags: tagCount === 0 ? null : tags };
}

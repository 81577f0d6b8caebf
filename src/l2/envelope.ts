/**
 * The bytes stored in Redis for one value: a compact header (metadata) then
 * the value itself, so one GET returns both.
 *
 * Version 3 (written):
 *   u8  version (3)
 *   u8  flags: bit 0 = negative (the origin said it has no such value)
 *   u8  tag count
 *   u16 content-type length   | content-type (ASCII)
 *   u8  etag length           | etag (ASCII)
 *   f64 created (epoch ms)
 *   f64 fresh until (epoch ms)
 *   f64 stale-while-revalidate until (epoch ms; ≥ fresh until)
 *   f64 stale until (epoch ms; ≥ both: stale-if-error ends; Redis drops the key then, by PX)
 *   f64 load duration δ (ms; 0 for a value a client PUT): XFetch's δ
 *   u8  origin ETag length        | origin ETag (ASCII)      (for If-None-Match)
 *   u8  origin Last-Modified length | Last-Modified (ASCII)  (for If-Modified-Since)
 *   per tag: u8 length | tag (UTF-8)
 *   value (the rest)
 *
 * Version 2 (still read, from nodes not yet upgraded): as 3 without flags,
 * the stale windows, δ and the validators (never stale).
 */
export const ENVELOPE_VERSION = 3;

/** What an origin said about a value, so a refresh can ask "changed since?" (RFC 9110 §13.1). */
export interface Validators {
  readonly etag: string;
  readonly lastModified: string;
}

/** A value with the metadata Strata answers with. */
export interface L2Entry {
  readonly value: Uint8Array;
  readonly contentType: string;
  readonly etag: string;
  readonly createdMs: number;
  /** Until when it is fresh, epoch ms by the writer's clock (the `expires` of a PUT). */
  readonly expiresMs: number;
  /** Until when it may be served stale while one reader refreshes it (stale-while-revalidate), epoch ms; ≥ expiresMs. */
  readonly swrUntilMs: number;
  /** Until when it is kept at all: served stale only if a refresh fails (stale-if-error) past swrUntilMs; ≥ swrUntilMs. */
  readonly staleUntilMs: number;
  /** How long the origin load that produced it took, ms (0 for a PUT): XFetch refreshes early by it. */
  readonly deltaMs: number;
  /** The origin answered 404: a cached absence (negativeTtl), not a value. */
  readonly negative: boolean;
  /** The origin's validators, or null. */
  readonly validators: Validators | null;
  readonly tags: readonly string[] | null;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const FLAG_NEGATIVE = 1;

/** Encodes an entry into one Buffer. */
export function encodeEnvelope(entry: L2Entry): Buffer {
  const ct = Buffer.from(entry.contentType, 'latin1');
  const etag = Buffer.from(entry.etag, 'latin1');
  const originEtag = Buffer.from(entry.validators?.etag ?? '', 'latin1');
  const lastModified = Buffer.from(entry.validators?.lastModified ?? '', 'latin1');
  const tags = (entry.tags ?? []).map((t) => encoder.encode(t));
  if (
    ct.length > 0xffff ||
    etag.length > 0xff ||
    originEtag.length > 0xff ||
    lastModified.length > 0xff ||
    tags.length > 0xff ||
    tags.some((t) => t.length > 0xff)
  ) {
    throw new RangeError('envelope field too long');
  }
  const size =
    3 +
    2 +
    ct.length +
    1 +
    etag.length +
    40 +
    1 +
    originEtag.length +
    1 +
    lastModified.length +
    tags.reduce((n, t) => n + 1 + t.length, 0) +
    entry.value.length;
  const out = Buffer.allocUnsafe(size);
  let at = 0;
  out[at++] = ENVELOPE_VERSION;
  out[at++] = entry.negative ? FLAG_NEGATIVE : 0;
  out[at++] = tags.length;
  out.writeUInt16LE(ct.length, at);
  at += 2;
  at += ct.copy(out, at);
  out[at++] = etag.length;
  at += etag.copy(out, at);
  at = out.writeDoubleLE(entry.createdMs, at);
  at = out.writeDoubleLE(entry.expiresMs, at);
  const swrUntilMs = Math.max(entry.swrUntilMs, entry.expiresMs);
  at = out.writeDoubleLE(swrUntilMs, at);
  at = out.writeDoubleLE(Math.max(entry.staleUntilMs, swrUntilMs), at);
  at = out.writeDoubleLE(entry.deltaMs, at);
  out[at++] = originEtag.length;
  at += originEtag.copy(out, at);
  out[at++] = lastModified.length;
  at += lastModified.copy(out, at);
  for (const tag of tags) {
    out[at++] = tag.length;
    out.set(tag, at);
    at += tag.length;
  }
  out.set(entry.value, at);
  return out;
}

/** Decodes what encodeEnvelope wrote (version 3, or 2); throws on anything else (a foreign or corrupt value). */
export function decodeEnvelope(bytes: Uint8Array): L2Entry {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const fail = (why: string): never => {
    throw new RangeError(`not a Strata L2 envelope: ${why}`);
  };
  if (buf.length < 21) fail('too short');
  const version = buf[0];
  if (version !== 3 && version !== 2) fail(`version ${version}`);
  let at = 1;
  const flags = version === 3 ? (buf[at++] as number) : 0;
  const tagCount = buf[at++] as number;
  const ctLength = buf.readUInt16LE(at);
  at += 2;
  if (at + ctLength + 1 > buf.length) fail('content-type overruns');
  const contentType = buf.toString('latin1', at, at + ctLength);
  at += ctLength;
  const etagLength = buf[at++] as number;
  const fixed = version === 3 ? 40 : 16;
  if (at + etagLength + fixed > buf.length) fail('etag overruns');
  const etag = buf.toString('latin1', at, at + etagLength);
  at += etagLength;
  const createdMs = buf.readDoubleLE(at);
  const expiresMs = buf.readDoubleLE(at + 8);
  at += 16;
  let swrUntilMs = expiresMs;
  let staleUntilMs = expiresMs;
  let deltaMs = 0;
  let validators: Validators | null = null;
  if (version === 3) {
    swrUntilMs = buf.readDoubleLE(at);
    staleUntilMs = buf.readDoubleLE(at + 8);
    deltaMs = buf.readDoubleLE(at + 16);
    at += 24;
    const text = (): string => {
      if (at >= buf.length) fail('validators overrun');
      const length = buf[at++] as number;
      if (at + length > buf.length) fail('validator overruns');
      const value = buf.toString('latin1', at, at + length);
      at += length;
      return value;
    };
    const originEtag = text();
    const lastModified = text();
    if (originEtag !== '' || lastModified !== '') validators = { etag: originEtag, lastModified };
  }
  const tags: string[] = [];
  for (let i = 0; i < tagCount; i++) {
    if (at >= buf.length) fail('tags overrun');
    const length = buf[at++] as number;
    if (at + length > buf.length) fail('tag overruns');
    tags.push(decoder.decode(buf.subarray(at, at + length)));
    at += length;
  }
  return {
    // A view, not a copy: an answer copies it into its message, and L1 into an entry of its own (ownedEntry).
    value: new Uint8Array(buf.buffer, buf.byteOffset + at, buf.byteLength - at),
    contentType,
    etag,
    createdMs,
    expiresMs,
    swrUntilMs,
    staleUntilMs,
    deltaMs,
    negative: (flags & FLAG_NEGATIVE) !== 0,
    validators,
    tags: tagCount === 0 ? null : tags,
  };
}

/** The fields a plain PUT does not set: fresh until it expires, never stale, no origin. */
export const PLAIN: Pick<L2Entry, 'deltaMs' | 'negative' | 'validators'> = { deltaMs: 0, negative: false, validators: null };

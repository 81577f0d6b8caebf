/**
 * What a key is, at every boundary: a sequence of 1–512 bytes of valid UTF-8
 * without control characters. A key reaches Strata as a URL path segment
 * (percent-encoded or raw UTF-8) or as a JSON string; both forms are checked
 * here so that one key has one identity in L1, in Redis and on the bus (all of
 * which hold its UTF-8 bytes). Two ways a text could name bytes it does not
 * have are refused rather than repaired:
 *
 * - a JSON string with a lone surrogate (`"\ud800"`): it has no UTF-8 form,
 *   and encoders would silently turn it into U+FFFD, another key;
 * - a raw (not percent-encoded) U+FFFD in a URL: uWebSockets.js decodes the
 *   request target as UTF-8 and turns invalid bytes into U+FFFD, so a raw
 *   U+FFFD may stand for bytes that were never valid UTF-8. Percent-encoded
 *   (`%EF%BF%BD`) it is an ordinary character.
 */

/** Largest key in UTF-8 bytes. */
export const MAX_KEY_BYTES = 512;

const REPLACEMENT_CHARACTER = 0xfffd;

/** Why a text is not an acceptable key, or null when it is. */
export function keyProblem(key: string): string | null {
  return problemOf(key, false);
}

/**
 * A key from a raw URL path segment, or why it is refused. The common case (no
 * `%`) is checked in one pass over the text, U+FFFD included.
 */
export function keyFromSegment(raw: string): string | { readonly message: string } {
  if (raw.indexOf('%') === -1) {
    const problem = problemOf(raw, true);
    return problem === null ? raw : { message: problem };
  }
  const rawProblem = rawUrlTextProblem(raw);
  if (rawProblem !== null) return { message: rawProblem };
  const key = decodeSegment(raw);
  if (key === undefined) return { message: 'the key has bad percent-encoding or is not UTF-8' };
  const problem = problemOf(key, false);
  return problem === null ? key : { message: problem };
}

/** keyProblem; with `raw`, a U+FFFD is refused too (see the file comment). */
function problemOf(key: string, raw: boolean): string | null {
  const n = key.length;
  if (n === 0) return 'the key is empty';
  // A UTF-16 unit is 1 to 3 UTF-8 bytes: only count bytes when the answer is in doubt.
  if (n > MAX_KEY_BYTES || (n * 3 > MAX_KEY_BYTES && Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES)) {
    return `the key is longer than ${MAX_KEY_BYTES} bytes`;
  }
  for (let i = 0; i < n; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x7f) {
      if (c < 0x20) return 'the key contains control characters';
      continue;
    }
    // DEL and C1 controls.
    if (c <= 0x9f) return 'the key contains control characters';
    if (raw && c === REPLACEMENT_CHARACTER) return RAW_REPLACEMENT;
    if (c >= 0xd800 && c <= 0xdfff) {
      // A high surrogate followed by a low one is one code point; anything else has no UTF-8 form.
      const next = i + 1 < n ? key.charCodeAt(i + 1) : 0;
      if (c > 0xdbff || next < 0xdc00 || next > 0xdfff) return 'the key is not valid Unicode (a lone surrogate has no UTF-8 form)';
      i++;
    }
  }
  return null;
}

const RAW_REPLACEMENT = 'the URL has bytes that are not UTF-8 (or a raw U+FFFD: percent-encode it as %EF%BF%BD)';

/** Why a raw (not yet percent-decoded) URL text is refused, or null: see the file comment on U+FFFD. */
export function rawUrlTextProblem(raw: string): string | null {
  return raw.indexOf('\ufffd') === -1 ? null : RAW_REPLACEMENT;
}

/**
 * Percent-decodes one raw URL path segment. Returns undefined for bad
 * percent-encoding or bytes that are not UTF-8 (encoded surrogates included).
 */
export function decodeSegment(raw: string): string | undefined {
  if (raw.indexOf('%') === -1) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/** Largest key in UTF-8 bytes. */
export const MAX_KEY_BYTES = 512;

/** Why a decoded key is not acceptable, or null when it is. */
export function keyProblem(key: string): string | null {
  const n = key.length;
  if (n === 0) return 'the key is empty';
  // A UTF-16 unit is 1 to 3 UTF-8 bytes: only count bytes when the answer is in doubt.
  if (n > MAX_KEY_BYTES || (n * 3 > MAX_KEY_BYTES && Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES)) {
    return `the key is longer than ${MAX_KEY_BYTES} bytes`;
  }
  for (let i = 0; i < n; i++) {
    const c = key.charCodeAt(i);
    // C0 controls, DEL and C1 controls.
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return 'the key contains control characters';
  }
  return null;
}

/**
 * Percent-decodes one raw URL path segment. Returns undefined for bad
 * percent-encoding or bytes that are not UTF-8.
 */
export function decodeSegment(raw: string): string | undefined {
  if (raw.indexOf('%') === -1) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

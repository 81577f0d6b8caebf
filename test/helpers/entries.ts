import { type L2Entry, PLAIN } from '../../src/l2/envelope.js';

/** A plain-text L2 entry written now, fresh (and kept) for freshMs. */
export function textEntry(text: string, freshMs = 60_000): L2Entry {
  const now = Date.now();
  return {
    ...PLAIN,
    value: new TextEncoder().encode(text),
    contentType: 'text/plain',
    etag: '"e"',
    createdMs: now,
    expiresMs: now + freshMs,
    swrUntilMs: now + freshMs,
    staleUntilMs: now + freshMs,
    tags: null,
  };
}

import { randomBytes } from 'node:crypto';

/**
 * A lock token, which is also a lease handed to a cache-aside client: the
 * lease epoch it was taken in, a dot, and 16 random bytes in hex. The epoch
 * lets a fill be refused when a tag invalidation came after the lease
 * (docs/leases.md); the random part makes the token the holder's alone.
 */
export function newToken(epoch: number): string {
  return `${epoch}.${randomBytes(16).toString('hex')}`;
}

const TOKEN = /^(\d{1,15})\.[0-9a-f]{32}$/;

/** The epoch of a well-formed token, or null for anything else. */
export function tokenEpoch(token: string): number | null {
  const m = TOKEN.exec(token);
  return m === null ? null : Number(m[1]);
}

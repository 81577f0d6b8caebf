/**
 * Where Strata's data lives in Redis (docs/redis-layout.md). Every key starts
 * with the prefix and layout version, then the user key escaped so that a
 * `{…}` in it can never act as a Redis Cluster hash tag: all of a user's keys
 * spread over the slots by their whole text, none pins one slot.
 */
export const L2_PREFIX = 'strata:v1:';

/** Escapes `%`, `{` and `}` (percent-encoding), so the result has no braces and is reversible. */
export function escapeKey(key: string): string {
  if (!/[%{}]/.test(key)) return key;
  return key.replace(/[%{}]/g, (c) => (c === '%' ? '%25' : c === '{' ? '%7B' : '%7D'));
}

/** Inverse of escapeKey. */
export function unescapeKey(escaped: string): string {
  if (escaped.indexOf('%') === -1) return escaped;
  return escaped.replace(/%(25|7B|7D)/g, (_, hex: string) => (hex === '25' ? '%' : hex === '7B' ? '{' : '}'));
}

/** The Redis key of a value. */
export function valueKey(key: string): string {
  return `${L2_PREFIX}k:${escapeKey(key)}`;
}

/** The Redis set of the keys written with a tag (swept by invalidate). */
export function tagKey(tag: string): string {
  return `${L2_PREFIX}t:${escapeKey(tag)}`;
}

/**
 * The Redis key of a value's lock (stampede lock and lease). Its hash tag is
 * the whole value key (which has no braces), so in a Cluster it lives in the
 * value's slot: a Lua script can read and write both, and DEL can take both.
 */
export function lockKey(key: string): string {
  return `${L2_PREFIX}lock:{${valueKey(key)}}`;
}

/** Counts tag invalidations: a lease taken before one may no longer fill (docs/leases.md). */
export const LEASE_EPOCH_KEY = `${L2_PREFIX}lease-epoch`;

import type { OriginRule } from './rules.js';

/** How long a loaded value may be kept and served, from the origin's answer and the rule. */
export interface Freshness {
  /** false: do not cache it at all (no-store, private): answer it and forget it. */
  readonly store: boolean;
  /** Fresh for this long. */
  readonly freshMs: number;
  /** Then served stale while one reader refreshes it, for this long. */
  readonly swrMs: number;
  /** Then (from the end of freshness) served stale when a refresh fails, up to this long. */
  readonly sieMs: number;
}

/**
 * Reads the directives of a Cache-Control response header (RFC 9111 §5.2.2,
 * RFC 5861). Strata is a shared cache: `s-maxage` wins over `max-age`;
 * `no-store` and `private` mean not to store; `no-cache` means the value must
 * be revalidated before each use, which Strata does by treating it as stale
 * at once. `stale-while-revalidate` and `stale-if-error` widen or narrow the
 * rule's defaults for this response. `Age` (RFC 9111 §4.2.3) is subtracted
 * from the lifetime: a value that sat in an upstream cache is that much
 * older. What the origin does not say comes from the rule.
 */
export function freshnessOf(cacheControl: string, ageHeader: string, rule: OriginRule): Freshness {
  const directives = parseCacheControl(cacheControl);
  if (directives.has('no-store') || directives.has('private')) return { store: false, freshMs: 0, swrMs: 0, sieMs: 0 };
  const seconds = (name: string): number | null => {
    const v = directives.get(name);
    return v !== undefined && /^\d{1,10}$/.test(v) ? Number(v) : null;
  };
  const age = /^\d{1,10}$/.test(ageHeader.trim()) ? Number(ageHeader.trim()) : 0;
  const lifetime = seconds('s-maxage') ?? seconds('max-age') ?? rule.ttl;
  const freshS = directives.has('no-cache') ? 0 : Math.max(0, lifetime - age);
  return {
    store: true,
    freshMs: freshS * 1000,
    swrMs: (seconds('stale-while-revalidate') ?? rule.staleWhileRevalidate) * 1000,
    sieMs: (seconds('stale-if-error') ?? rule.staleIfError) * 1000,
  };
}

/** Directive name (lower case) → value ('' when it has none), from a Cache-Control header. */
export function parseCacheControl(header: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of header.split(',')) {
    const item = part.trim();
    if (item === '') continue;
    const eq = item.indexOf('=');
    const name = (eq === -1 ? item : item.slice(0, eq)).trim().toLowerCase();
    let value = eq === -1 ? '' : item.slice(eq + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    // A repeated directive: the first counts (RFC 9111 §4.2.1 leaves it to the cache; first is the common choice).
    if (!out.has(name)) out.set(name, value);
  }
  return out;
}

/**
 * The cluster options' values: node ids, member lists and peer URLs, as the
 * config checks them (src/config/schema.ts) and membership uses them.
 */
import { ConfigError } from '../errors.js';
import { MAX_WEIGHT } from './ring.js';

/** A node id: what the ring hashes and `x-strata-node` shows. */
const NODE_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** A node as the config lists it. */
export interface MemberConfig {
  readonly id: string;
  /** Where peers reach it: `http://host:port`. */
  readonly url: string;
  /** Its share of the keys relative to the others. @default 1 */
  readonly weight: number;
}

/** Most members a static list may name. */
export const MAX_MEMBERS = 1024;

export function checkNodeId(option: string, value: unknown): string {
  if (typeof value !== 'string' || !NODE_ID.test(value)) {
    throw new ConfigError(option, value, 'must be 1–64 characters of A–Z, a–z, 0–9, ".", "_" or "-"');
  }
  return value;
}

/** A peer's base URL: http(s), a host and a port, nothing after them; returned without a trailing slash. */
export function checkPeerUrl(option: string, value: unknown): string {
  let url: URL | null = null;
  try {
    url = typeof value === 'string' ? new URL(value) : null;
  } catch {
    url = null;
  }
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    throw new ConfigError(option, value, 'must be an http:// or https:// URL with a host (and port)');
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    throw new ConfigError(option, value, 'must be only scheme, host and port (no path, query or credentials)');
  }
  return url.origin;
}

/** A member list from the config file (objects) or from STRATA_MEMBERS (`id=url,id=url`), checked as a whole. */
export function checkMembers(value: unknown): readonly MemberConfig[] {
  if (!Array.isArray(value)) throw new ConfigError('members', '(not a list)', 'must be a list of { id, url, weight? }');
  if (value.length > MAX_MEMBERS) throw new ConfigError('members', `${value.length} members`, `must name at most ${MAX_MEMBERS} members`);
  const ids = new Set<string>();
  const urls = new Set<string>();
  const out = value.map((item: unknown, i): MemberConfig => {
    if (typeof item !== 'object' || item === null) throw new ConfigError(`members[${i}]`, item, 'must be { id, url, weight? }');
    const { id, url, weight = 1, ...rest } = item as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) throw new ConfigError(`members[${i}]`, unknown.join(','), 'unknown field (id, url and weight are known)');
    const member = {
      id: checkNodeId(`members[${i}].id`, id),
      url: checkPeerUrl(`members[${i}].url`, url),
      weight: checkWeight(`members[${i}].weight`, weight),
    };
    if (ids.has(member.id)) throw new ConfigError(`members[${i}].id`, member.id, 'names a member twice');
    if (urls.has(member.url)) throw new ConfigError(`members[${i}].url`, member.url, 'is the URL of another member too');
    ids.add(member.id);
    urls.add(member.url);
    return Object.freeze(member);
  });
  return Object.freeze(out);
}

export function checkWeight(option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_WEIGHT) {
    throw new ConfigError(option, value, `must be an integer in [1, ${MAX_WEIGHT}]`);
  }
  return value;
}

/** STRATA_MEMBERS / --members: `id=url` items, comma-separated (weights only in the config file). */
export function parseMembers(raw: string): readonly MemberConfig[] {
  const items = raw
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');
  if (items.length === 0) throw new ConfigError('members', raw, 'lists no member; unset it to run without static members');
  return checkMembers(
    items.map((item) => {
      const eq = item.indexOf('=');
      if (eq <= 0) throw new ConfigError('members', item, 'each member must be id=url');
      return { id: item.slice(0, eq).trim(), url: item.slice(eq + 1).trim() };
    }),
  );
}

/** Where the L2 is: a standalone server's URL, or a Redis Cluster's seeds. */
export type L2Target = { readonly url: string } | { readonly cluster: readonly string[] };

/** A Redis Cluster's seeds as ioredis takes them, with what every node shares. */
export interface ClusterSeeds {
  readonly nodes: readonly { readonly host: string; readonly port: number }[];
  readonly username?: string;
  readonly password?: string;
  /** True for `rediss://` seeds: TLS to every node. */
  readonly tls: boolean;
}

/**
 * Parses Redis Cluster seeds: each `host:port` (`[v6]:port` for IPv6), or
 * each `redis://[user:password@]host:port` (`rediss://` for TLS). URL seeds
 * must agree on scheme and credentials, which apply to every node the client
 * discovers. Throws RangeError naming the rule (never the password).
 */
export function parseClusterSeeds(seeds: readonly string[]): ClusterSeeds {
  if (seeds.length === 0) throw new RangeError('lists no seed');
  const nodes: { host: string; port: number }[] = [];
  let shared: { scheme: string; username: string; password: string } | null = null;
  let plain = 0;
  for (const seed of seeds) {
    let host: string;
    let port: number;
    if (/^rediss?:\/\//.test(seed)) {
      let url: URL;
      try {
        url = new URL(seed);
      } catch {
        throw new RangeError('a seed is not a valid URL');
      }
      if (url.pathname !== '' && url.pathname !== '/') throw new RangeError('a Cluster seed has no database path');
      const mine = { scheme: url.protocol, username: decodeURIComponent(url.username), password: decodeURIComponent(url.password) };
      if (shared !== null && (shared.scheme !== mine.scheme || shared.username !== mine.username || shared.password !== mine.password)) {
        throw new RangeError('all seed URLs must have the same scheme, user and password');
      }
      shared = mine;
      host = url.hostname.replace(/^\[(.*)\]$/, '$1');
      port = url.port === '' ? 6379 : Number(url.port);
    } else {
      plain++;
      const at = seed.lastIndexOf(':');
      host = at > 0 ? seed.slice(0, at).replace(/^\[(.*)\]$/, '$1') : '';
      port = at > 0 ? Number(seed.slice(at + 1)) : Number.NaN;
    }
    if (host === '' || /\s/.test(host) || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new RangeError('each seed must be host:port or redis[s]://[user:password@]host:port, with a port in [1, 65535]');
    }
    nodes.push({ host, port });
  }
  if (shared !== null && plain > 0) throw new RangeError('seeds must be all host:port or all URLs');
  return {
    nodes,
    ...(shared?.username ? { username: shared.username } : {}),
    ...(shared?.password ? { password: shared.password } : {}),
    tls: shared?.scheme === 'rediss:',
  };
}

/** The connection options every node of a Cluster shares: user, password, TLS. */
export function clusterAuth(seeds: ClusterSeeds): { username?: string; password?: string; tls?: object } {
  return {
    ...(seeds.username === undefined ? {} : { username: seeds.username }),
    ...(seeds.password === undefined ? {} : { password: seeds.password }),
    ...(seeds.tls ? { tls: {} } : {}),
  };
}

/** `host:port` seeds as ioredis takes them (kept for callers that only need addresses). */
export function clusterNodes(seeds: readonly string[]): { host: string; port: number }[] {
  return parseClusterSeeds(seeds).nodes.map((n) => ({ ...n }));
}

/**
 * A URL, seed, or comma-separated list of them with every password replaced
 * by ***: the one in the user info, and a URL's whole query (ioredis takes
 * options from it, `?password=` among them).
 */
export function redactPasswords(text: string): string {
  return text.replace(/(\w+:\/\/[^:@/,\s]*:)[^@/,\s]*@/g, '$1***@').replace(/(\w+:\/\/[^?,\s]*)\?[^,\s]*/g, '$1?***');
}

/** Where the L2 is: a standalone server's URL, or a Redis Cluster's `host:port` seeds. */
export type L2Target = { readonly url: string } | { readonly cluster: readonly string[] };

/** `host:port` seeds as ioredis takes them (`[v6]:port` unbracketed). */
export function clusterNodes(seeds: readonly string[]): { host: string; port: number }[] {
  return seeds.map((seed) => {
    const at = seed.lastIndexOf(':');
    return { host: seed.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(seed.slice(at + 1)) };
  });
}

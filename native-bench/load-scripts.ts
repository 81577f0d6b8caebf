/**
 * wrk Lua scripts the benchmarks share, written into a directory of the
 * caller's. Keys are `k0` … `k{keys − 1}`; every script seeds its own random
 * generator so that runs draw the same sequence.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { entryBytes } from '../src/l1/partition.js';

/** GET of a key drawn uniformly. */
export function uniformGetScript(dir: string, keys: number): string {
  const path = join(dir, `uniform-get-${keys}.lua`);
  writeFileSync(path, `math.randomseed(42)\nrequest = function()\n  return wrk.format("GET", "/v1/keys/k" .. math.random(0, ${keys - 1}))\nend\n`);
  return path;
}

/** PUT of `valueBytes` bytes with a one-hour TTL to a key drawn uniformly. */
export function uniformPutScript(dir: string, keys: number, valueBytes: number): string {
  const path = join(dir, `uniform-put-${keys}-${valueBytes}.lua`);
  writeFileSync(
    path,
    `math.randomseed(7)\nlocal body = string.rep("y", ${valueBytes})\nrequest = function()\n  return wrk.format("PUT", "/v1/keys/k" .. math.random(0, ${keys - 1}) .. "?ttl=3600", nil, body)\nend\n`,
  );
  return path;
}

/**
 * Zipf(s) over `keys` ranks by inverse CDF (binary search); a share
 * `putShare` of the requests are PUTs of `valueBytes` bytes, the rest GETs.
 * Rank 0 (`k0`) is the most frequent key.
 */
export function zipfScript(dir: string, options: { keys: number; s: number; putShare: number; valueBytes: number }): string {
  const { keys, s, putShare, valueBytes } = options;
  const path = join(dir, `zipf-${keys}-${s}-${putShare}.lua`);
  writeFileSync(
    path,
    `local n, s = ${keys}, ${s}
local cdf, sum = {}, 0
for i = 1, n do sum = sum + 1 / (i ^ s); cdf[i] = sum end
for i = 1, n do cdf[i] = cdf[i] / sum end
local body = string.rep("z", ${valueBytes})
math.randomseed(1234)
local function rank()
  local u, lo, hi = math.random(), 1, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo - 1
end
request = function()
  local k = rank()
  if math.random() < ${putShare} then
    return wrk.format("PUT", "/v1/keys/k" .. k .. "?ttl=3600", nil, body)
  end
  return wrk.format("GET", "/v1/keys/k" .. k)
end
`,
  );
  return path;
}

/** The head Strata keeps with a value read from Redis: its content type and etag. */
export const L2_VALUE_HEAD_BYTES = 'application/octet-stream\r\netag: "0123456789abcdef0123456789abcdef"'.length;

/**
 * The L1 budget of the Zipf benchmarks: 10 % of the keyspace's entries as
 * the L1 charges them (keys like `k50000`), and how many entries that is.
 */
export function zipfL1Budget(keys: number, valueBytes: number): { l1Bytes: number; capacity: number } {
  const perEntry = entryBytes('k50000', valueBytes, L2_VALUE_HEAD_BYTES);
  const l1Bytes = Math.round((keys * perEntry) / 10);
  return { l1Bytes, capacity: Math.floor(l1Bytes / perEntry) };
}

/** Share of reads the best static choice of `capacity` keys would serve under Zipf(s) over `keys` (the top ranks). */
export function zipfStaticOptimum(keys: number, capacity: number, s: number): number {
  let top = 0;
  let all = 0;
  for (let i = 1; i <= keys; i++) {
    const w = 1 / i ** s;
    all += w;
    if (i <= capacity) top += w;
  }
  return top / all;
}

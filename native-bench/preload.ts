/** Values written straight into Redis before a benchmark, in Strata's layout or as plain bytes. */
import { Redis } from 'ioredis';
import { encodeEnvelope, PLAIN } from '../src/l2/envelope.js';
import { valueKey } from '../src/l2/keys.js';

const BATCH = 5000;
const TTL_MS = 3_600_000;

/** Writes keys `k0` … `k{keys − 1}` of `valueBytes` bytes as Strata stores them (what a PUT through Strata would leave there). */
export async function preloadStrataLayout(url: string, keys: number, valueBytes: number): Promise<void> {
  const now = Date.now();
  const value = new Uint8Array(valueBytes).fill(120);
  await inBatches(url, keys, (pipeline, k) =>
    pipeline.set(
      valueKey(`k${k}`),
      encodeEnvelope({
        ...PLAIN,
        value,
        contentType: 'application/octet-stream',
        etag: `"${k}"`,
        createdMs: now,
        expiresMs: now + TTL_MS,
        swrUntilMs: now + TTL_MS,
        staleUntilMs: now + TTL_MS,
        tags: null,
      }),
      'PX',
      TTL_MS,
    ),
  );
}

/** Writes keys `${prefix}k0` … of `valueBytes` bytes as they are (a plain cache-aside layout). */
export async function preloadPlain(url: string, prefix: string, keys: number, valueBytes: number): Promise<void> {
  const value = Buffer.alloc(valueBytes, 120);
  await inBatches(url, keys, (pipeline, k) => pipeline.set(`${prefix}k${k}`, value, 'PX', TTL_MS));
}

async function inBatches(url: string, keys: number, add: (pipeline: ReturnType<Redis['pipeline']>, k: number) => void): Promise<void> {
  const redis = new Redis(url);
  try {
    for (let start = 0; start < keys; start += BATCH) {
      const pipeline = redis.pipeline();
      for (let k = start; k < Math.min(keys, start + BATCH); k++) add(pipeline, k);
      await pipeline.exec();
    }
  } finally {
    redis.disconnect();
  }
}

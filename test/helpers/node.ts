import { fileURLToPath } from 'node:url';
import type { StrataFileConfig } from '../../src/config/schema.js';
import type { StrataNode } from '../../src/node.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = `${ROOT}dist/src/cli.js`;

/**
 * Starts a real node in this process from the compiled build (its shard
 * workers run dist/ JavaScript), on 127.0.0.1 and a free port.
 */
export async function startTestNode(options: StrataFileConfig = {}): Promise<StrataNode & { url: string }> {
  const { resolveConfig } = (await import(`${ROOT}dist/src/config/load.js`)) as typeof import('../../src/config/load.js');
  const { startNode } = (await import(`${ROOT}dist/src/node.js`)) as typeof import('../../src/node.js');
  const config = resolveConfig(new Map(), {}, { port: 0, shards: 3, l1MaxBytes: 64 * 1024 * 1024, ...options });
  const node = await startNode(config);
  return Object.assign(node, { url: `http://127.0.0.1:${node.port}` });
}

/** Polls `check` every `everyMs` until it returns true; throws after `timeoutMs`. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

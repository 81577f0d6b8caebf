import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/node.js';

/**
 * The layers of src/, lowest first (docs/architecture.md, "Layout"): a module
 * may import from its own layer and the layers below it, never above. The
 * modules at the top of src/ are the process's entry (node.ts, cli.ts) and
 * leaves every layer may use (errors.ts, hash.ts, thread-id.ts, version.ts, log.ts).
 */
const LAYERS = [
  'api',
  'counters',
  'l2',
  'l1',
  'coordination',
  'origin',
  'cluster',
  'config',
  'shards',
  'invalidation',
  'metrics',
  'dashboard',
  'http',
  'front',
  'client',
];
const LEAVES = new Set(['errors.ts', 'hash.ts', 'thread-id.ts', 'version.ts', 'log.ts']);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('layers of src/', () => {
  it('no module imports from a layer above its own', () => {
    const src = join(ROOT, 'src');
    const upward: string[] = [];
    for (const file of sources(src)) {
      const from = relative(src, file);
      const layer = from.includes('/') ? (from.split('/')[0] as string) : null;
      if (layer === null) continue; // node.ts, cli.ts and the leaves sit outside the layers
      expect(LAYERS, `${from} is in no known layer`).toContain(layer);
      for (const [, spec] of readFileSync(file, 'utf8').matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
        const target = relative(src, resolve(dirname(file), (spec as string).replace(/\.js$/, '.ts')));
        if (!target.includes('/')) {
          if (!LEAVES.has(target)) upward.push(`${from} -> ${target}`);
          continue;
        }
        const to = target.split('/')[0] as string;
        if (LAYERS.indexOf(to) > LAYERS.indexOf(layer)) upward.push(`${from} -> ${target}`);
      }
    }
    expect(upward).toEqual([]);
  });
});

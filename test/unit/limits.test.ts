import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as load from '../../src/config/load.js';
import * as app from '../../src/http/app.js';
import * as input from '../../src/http/input.js';
import * as key from '../../src/http/key.js';
import * as postgres from '../../src/invalidation/postgres.js';
import * as bus from '../../src/l2/bus.js';
import * as node from '../../src/node.js';
import * as pool from '../../src/shards/pool.js';
import * as shard from '../../src/shards/shard.js';
import { ROOT } from '../helpers/node.js';

const modules: Record<string, Record<string, unknown>> = {
  'src/config/load.ts': load,
  'src/http/app.ts': app,
  'src/http/input.ts': input,
  'src/http/key.ts': key,
  'src/l2/bus.ts': bus,
  'src/node.ts': node,
  'src/shards/pool.ts': pool,
  'src/shards/shard.ts': shard,
  'src/invalidation/postgres.ts': postgres,
};

describe('docs/limits.md', () => {
  const doc = readFileSync(join(ROOT, 'docs/limits.md'), 'utf8');
  // Rows whose third column names one constant and its file: `NAME` (src/…).
  const rows = [...doc.matchAll(/^\|[^|]*\|([^|]*)\|\s*`([A-Z_0-9]+)`\s*\((src\/[^)]+)\)\s*\|/gm)].map((m) => ({
    value: (m[1] as string).trim(),
    name: m[2] as string,
    file: m[3] as string,
  }));

  it('names constants that exist, with the values the code has', () => {
    expect(rows.length).toBeGreaterThanOrEqual(9);
    for (const { value, name, file } of rows) {
      const actual = modules[file]?.[name];
      expect(actual, `${name} in ${file}`).toBeTypeOf('number');
      // The value column's first number, without thousands separators.
      const stated = Number(/[\d,.]+/.exec(value)?.[0]?.replaceAll(',', ''));
      expect(stated, `${name}: the table says ${value}`).toBe(actual);
    }
  });

  it('lists every request limit the input checks enforce', () => {
    for (const name of ['MAX_KEY_BYTES', 'MAX_TAGS', 'MAX_TAG_BYTES', 'MAX_CONTENT_TYPE_LENGTH', 'MAX_BATCH_KEYS', 'MAX_JSON_BODY_BYTES']) {
      expect(rows.map((r) => r.name)).toContain(name);
    }
  });
});

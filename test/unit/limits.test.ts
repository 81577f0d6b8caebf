import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as apiInput from '../../src/api/input.js';
import * as key from '../../src/api/key.js';
import * as load from '../../src/config/load.js';
import * as frontSupervisor from '../../src/front/supervisor.js';
import * as app from '../../src/http/app.js';
import * as body from '../../src/http/body.js';
import * as input from '../../src/http/input.js';
import * as postgres from '../../src/invalidation/postgres.js';
import * as hotIndex from '../../src/l1/hot-index.js';
import * as partition from '../../src/l1/partition.js';
import * as bus from '../../src/l2/bus.js';
import * as node from '../../src/node.js';
import * as shard from '../../src/shards/shard.js';
import * as supervisor from '../../src/shards/supervisor.js';
import { ROOT } from '../helpers/node.js';

const modules: Record<string, Record<string, unknown>> = {
  'src/config/load.ts': load,
  'src/http/app.ts': app,
  'src/http/body.ts': body,
  'src/http/input.ts': input,
  'src/api/key.ts': key,
  'src/api/input.ts': apiInput,
  'src/l2/bus.ts': bus,
  'src/node.ts': node,
  'src/shards/supervisor.ts': supervisor,
  'src/front/supervisor.ts': frontSupervisor,
  'src/l1/hot-index.ts': hotIndex,
  'src/l1/partition.ts': partition,
  'src/shards/shard.ts': shard,
  'src/invalidation/postgres.ts': postgres,
};

/** Bytes in one of the units the table writes sizes in. */
const UNIT_BYTES: Record<string, number> = { byte: 1, bytes: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** The numbers a value column states, in order, with their size unit if any; a digit inside a word (`L1`) is not a number. */
function statedNumbers(value: string): { number: number; unit: string }[] {
  return [...value.matchAll(/(?<![\w.])(\d[\d,]*(?:\.\d+)?)(?:\s*(bytes?|KiB|MiB|GiB)\b)?/g)].map((m) => ({
    number: Number((m[1] as string).replaceAll(',', '')),
    unit: m[2] ?? '',
  }));
}
/** A stated number in what the constant `name` counts: bytes for a `_BYTES` one (`64 MiB` is 67108864), MiB for an `_MB` one, else as written. */
function inUnitsOf(name: string, { number, unit }: { number: number; unit: string }): number {
  if (name.endsWith('_BYTES')) return number * (UNIT_BYTES[unit] ?? 1);
  if (name.endsWith('_MB') && unit !== '') return (number * (UNIT_BYTES[unit] as number)) / 1024 ** 2;
  return number;
}

describe('docs/limits.md', () => {
  const doc = readFileSync(join(ROOT, 'docs/limits.md'), 'utf8');
  // Table rows (not the separator) as their cells.
  const cells = doc
    .split('\n')
    .filter((line) => line.startsWith('|') && !/^\|[\s|:-]+\|$/.test(line))
    .map((line) =>
      line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim()),
    );
  // Rows whose third column names constants and their file: `NAME` (src/…), or `A`, `B` (src/…).
  const withConstants = cells.filter((row) => /`[A-Z][A-Z_0-9]*`/.test(row[2] ?? ''));
  const rows = withConstants.flatMap((row) => {
    const m = /^((?:`[A-Z][A-Z_0-9]*`\s*,\s*)*`[A-Z][A-Z_0-9]*`)\s*\((src\/[^)]+)\)$/.exec(row[2] as string);
    if (m === null) return [];
    return [
      {
        column: row[2] as string,
        value: row[1] as string,
        names: [...(m[1] as string).matchAll(/`([A-Z_0-9]+)`/g)].map((n) => n[1] as string),
        file: m[2] as string,
      },
    ];
  });

  it('names constants that exist, with the values the code has', () => {
    expect(rows.length).toBeGreaterThanOrEqual(9);
    // No row that names a constant is left out because its column has another shape.
    expect(rows.map((r) => r.column)).toEqual(withConstants.map((row) => row[2]));
    let checked = 0;
    for (const { value, names, file } of rows) {
      const stated = statedNumbers(value);
      expect(stated.length, `${names.join(', ')}: the table says ${value}`).toBeGreaterThanOrEqual(names.length);
      names.forEach((name, i) => {
        const actual = modules[file]?.[name];
        expect(actual, `${name} in ${file}`).toBeTypeOf('number');
        // The i-th constant is the value column's i-th number, without thousands separators.
        expect(inUnitsOf(name, stated[i] as { number: number; unit: string }), `${name}: the table says ${value}`).toBe(actual);
        checked++;
      });
    }
    expect(checked).toBe(withConstants.reduce((n, row) => n + ((row[2] as string).match(/`[A-Z][A-Z_0-9]*`/g)?.length ?? 0), 0));
  });

  it('lists every request limit the input checks enforce', () => {
    for (const name of ['MAX_KEY_BYTES', 'MAX_TAGS', 'MAX_TAG_BYTES', 'MAX_CONTENT_TYPE_LENGTH', 'MAX_BATCH_KEYS', 'MAX_JSON_BODY_BYTES']) {
      expect(rows.flatMap((r) => r.names)).toContain(name);
    }
  });
});

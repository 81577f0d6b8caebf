import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLIENT_ERROR_CODES } from '../../src/client/errors.js';
import { ConfigError, ERROR_CODES, StrataError } from '../../src/errors.js';
import { ROOT } from '../helpers/node.js';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
  });
}

describe('error codes', () => {
  const doc = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');
  const documented = new Map([...doc.matchAll(/^\|\s*`(E_[A-Z0-9_]+)`\s*\|\s*(\d+)\s*\|/gm)].map((m) => [m[1] as string, Number(m[2])]));

  it('docs/errors.md lists exactly the codes of src/errors.ts, with their statuses', () => {
    const inCode = new Map(Object.entries(ERROR_CODES).map(([code, { status }]) => [code, status]));
    expect(documented).toEqual(inCode);
  });

  it('every E_ code the source uses is a declared code', () => {
    const used = new Set<string>();
    for (const file of sources(join(ROOT, 'src'))) {
      for (const m of readFileSync(file, 'utf8').matchAll(/'(E_[A-Z0-9_]+)'/g)) used.add(m[1] as string);
    }
    expect(used.size).toBeGreaterThan(10);
    // The typed client's own codes (no server answer to take one from) are declared beside it and in docs/client.md.
    const declared = [...Object.keys(ERROR_CODES), ...CLIENT_ERROR_CODES];
    for (const code of used) expect(declared).toContain(code);
    const clientDoc = readFileSync(join(ROOT, 'docs/client.md'), 'utf8');
    for (const code of CLIENT_ERROR_CODES) expect(clientDoc).toContain(`\`${code}\``);
  });

  it('errors carry code and status, and ConfigError names option and value', () => {
    const err = new ConfigError('port', 'abc', 'must be an integer');
    expect(err).toBeInstanceOf(StrataError);
    expect(err.code).toBe('E_CONFIG');
    expect(err.option).toBe('port');
    expect(err.message).toContain('port="abc"');
  });
});

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { helpText, optionsTable } from '../../src/config/load.js';
import { OPTIONS } from '../../src/config/schema.js';
import { ROOT } from '../helpers/node.js';

/** Every Markdown file of the repository (node_modules and build output aside). */
function markdownFiles(dir = ROOT): string[] {
  return readdirSync(dir).flatMap((name) => {
    if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) return [];
    const path = join(dir, name);
    return statSync(path).isDirectory() ? markdownFiles(path) : name.endsWith('.md') ? [path] : [];
  });
}

/** A Markdown text with table rows normalized: cells trimmed, separator cells as `---` (formatters pad tables). */
function normalizeTables(markdown: string): string {
  return markdown
    .split('\n')
    .map((line) =>
      line.startsWith('|')
        ? line
            .split('|')
            .map((cell) => (/^\s*:?-+:?\s*$/.test(cell) ? '---' : cell.trim()))
            .join('|')
        : line,
    )
    .join('\n');
}

describe('README and docs', () => {
  it('every relative link resolves to a file inside the repository, and nothing points outside it', () => {
    const files = markdownFiles();
    expect(files.map((f) => relative(ROOT, f))).toEqual(expect.arrayContaining(['README.md', 'docs/errors.md', 'docs/memory.md', 'docs/limits.md']));
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = (m[1] as string).split('#')[0] as string;
        if (/^[a-z]+:/.test(target) || target === '') continue;
        const path = resolve(dirname(file), target);
        expect(relative(ROOT, path).startsWith('..'), `${relative(ROOT, file)} links outside the repository: ${target}`).toBe(false);
        expect(existsSync(path), `${relative(ROOT, file)} links to a missing ${target}`).toBe(true);
      }
      expect(text, `${relative(ROOT, file)} names a path outside the repository`).not.toMatch(/\.\.\/shared\b/);
    }
  });

  it('the README carries the configuration table made from the option specs, and --help the same texts', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(normalizeTables(readme)).toContain(normalizeTables(optionsTable()));
    const help = helpText();
    for (const option of OPTIONS) {
      expect(help).toContain(option.flag);
      expect(help).toContain(option.env);
      expect(help).toContain(`default ${option.defaultText}`);
      expect(help).toContain(option.doc);
    }
    // Shutdown and the shard range, as the README promises them.
    expect(help).toContain('SIGTERM or SIGINT');
    expect(help).toContain('1–256');
  });

  it('the README names the uWebSockets.js package package.json installs', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    expect(readme).toContain(`"uWebSockets.js": "${pkg.dependencies['uWebSockets.js']}"`);
  });
});

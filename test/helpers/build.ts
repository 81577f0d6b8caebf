import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** vitest globalSetup: compiles src/ to dist/ once, because shard workers and the CLI run compiled JS. */
export default function build(): void {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  execFileSync(process.execPath, [fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url)), '-p', root], {
    cwd: root,
    stdio: 'inherit',
  });
}

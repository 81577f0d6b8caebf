import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** vitest globalSetup: builds as `npm run build` does, once, because shard workers and the CLI run compiled JS (and fronts serve the bundled dashboard). */
export default function build(): void {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  execFileSync(process.execPath, [fileURLToPath(new URL('../../node_modules/typescript/bin/tsc', import.meta.url)), '-p', root], {
    cwd: root,
    stdio: 'inherit',
  });
  execFileSync(process.execPath, [fileURLToPath(new URL('../../dist/src/dashboard/bundle.js', import.meta.url))], { cwd: root, stdio: 'inherit' });
}

import { existsSync, readFileSync } from 'node:fs';

/** The repository's package.json: this file runs as dist/src/version.js (the node) or src/version.ts (tests). */
const PACKAGE = [new URL('../../package.json', import.meta.url), new URL('../package.json', import.meta.url)].find((url) => existsSync(url));
if (PACKAGE === undefined) throw new Error(`no package.json above ${import.meta.url}`);

/** Strata's version, from its package.json. */
export const VERSION: string = (JSON.parse(readFileSync(PACKAGE, 'utf8')) as { version: string }).version;

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ROOT, until } from '../helpers/node.js';
import { freePort } from '../helpers/redis.js';

/** Every process below pid, from /proc (children of each thread, recursively). */
function descendants(pid: number): number[] {
  let children: number[] = [];
  try {
    const tasks = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8');
    children = tasks.split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
  return children.flatMap((child) => [child, ...descendants(child)]);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// As a process manager or a container runtime does: the signal goes to the PID it started (npm), not to the group.
describe('npm start', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)(
    '%s to npm’s PID alone drains and stops the node, and npm exits',
    async (signal) => {
      const port = await freePort();
      // --ignore-scripts skips prestart (the build): tsc rewriting dist/ would race the test files running beside this one.
      const npm = spawn('npm', ['start', '--ignore-scripts', '--', '--port', String(port), '--shards', '1'], {
        cwd: ROOT,
        env: { ...process.env, STRATA_CONFIG: '' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      npm.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
      });
      npm.stderr?.on('data', (d: Buffer) => {
        out += d.toString();
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        npm.on('exit', (code, signal) => resolve({ code, signal })),
      );
      try {
        await until(() => out.includes('strata listening'), 60_000, 50);
        const below = descendants(npm.pid as number);
        expect(below.length).toBeGreaterThan(0);
        expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
        process.kill(npm.pid as number, signal);
        // README: npm exits 0 once the node has drained and stopped (not killed by the signal, not with an error code).
        expect(await exited).toEqual({ code: 0, signal: null });
        await until(() => below.every((pid) => !alive(pid)));
        expect(out).toContain(`strata: ${signal}: draining`);
        expect(out).toContain('strata: stopped');
        await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
      } finally {
        for (const pid of descendants(npm.pid as number)) process.kill(pid, 'SIGKILL');
        npm.kill('SIGKILL');
      }
    },
    90_000,
  );
});

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, ROOT, until } from '../helpers/node.js';

const MiB = 1024 * 1024;

/** The bound docs/memory.md states: RSS ≤ a · l1MaxBytes + b MiB + c MiB · (shards − 1) + d MiB · (fronts − 1). */
function statedBound(): { a: number; bMiB: number; perShardMiB: number; perFrontMiB: number } {
  const doc = readFileSync(join(ROOT, 'docs/memory.md'), 'utf8');
  const m = /\*\*RSS ≤ ([\d.]+) · l1MaxBytes \+ (\d+) MiB \+ (\d+) MiB · \(shards − 1\) \+ (\d+) MiB · \(fronts − 1\)\*\*/.exec(doc);
  if (m === null) throw new Error('docs/memory.md does not state the bound in the expected form');
  return { a: Number(m[1]), bMiB: Number(m[2]), perShardMiB: Number(m[3]), perFrontMiB: Number(m[4]) };
}

const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) * 1024;

describe('memory', () => {
  it('a node that took 10× its L1 budget in writes, then reads, stays within the bound docs/memory.md states', async () => {
    const budget = 64 * MiB;
    const shards = 2;
    const fronts = 2;
    // As `npm start` and the strata executable run it (docs/memory.md).
    const child = spawn(
      process.execPath,
      ['--max-semi-space-size=2', CLI, '--port', '0', '--shards', String(shards), '--fronts', String(fronts), '--l1-max-bytes', '64m'],
      {
        cwd: ROOT,
        env: { ...process.env, STRATA_CONFIG: '', REDIS_URL: '' },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    try {
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
      });
      await until(() => out.includes('listening'), 15_000);
      const url = `http://127.0.0.1:${/:(\d+) /.exec(out)?.[1]}`;
      // 64 KiB values keep the request count (and the test) small; the bound does not depend on the value size.
      const value = new Uint8Array(64 * 1024).map((_, i) => i & 0xff);
      const writes = (10 * budget) / value.byteLength;
      let next = 0;
      let peak = 0;
      const writer = async () => {
        while (next < writes) {
          const k = next++;
          const res = await fetch(`${url}/v1/keys/m${k}`, { method: 'PUT', body: value });
          expect(res.status).toBe(204);
          if (k % 256 === 0) peak = Math.max(peak, rssOf(child.pid as number));
        }
      };
      await Promise.all(Array.from({ length: 16 }, writer));
      // Reads of what is still held, twice, so the hot-read arenas fill too.
      for (let round = 0; round < 2; round++) {
        for (let k = writes - 1; k >= writes - 900; k--) await (await fetch(`${url}/v1/keys/m${k}`)).arrayBuffer();
      }
      const stats = (await (await fetch(`${url}/v1/stats`)).json()) as { levels: { L1: { bytes: number; evictions: number } }; memory: { rssBytes: number } };
      expect(stats.levels.L1.bytes).toBeLessThanOrEqual(budget);
      expect(stats.levels.L1.evictions).toBeGreaterThan(0);
      const { a, bMiB, perShardMiB, perFrontMiB } = statedBound();
      const bound = a * budget + (bMiB + perShardMiB * (shards - 1) + perFrontMiB * (fronts - 1)) * MiB;
      const rss = Math.max(peak, rssOf(child.pid as number), stats.memory.rssBytes);
      expect(rss, `RSS ${(rss / MiB).toFixed(0)} MiB against the bound ${(bound / MiB).toFixed(0)} MiB`).toBeLessThanOrEqual(bound);
    } finally {
      child.kill('SIGKILL');
    }
  }, 120_000);
});

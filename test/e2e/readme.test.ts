import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, ROOT, until } from '../helpers/node.js';
import { freePort, RedisServer } from '../helpers/redis.js';

// The README's examples, run as written (only the addresses changed to this test's), top to bottom,
// each block against the node its `<!-- example: … -->` line names; output compared with the `#` lines.

const run = promisify(execFile);

interface Example {
  readonly command: string;
  readonly expected: string[];
}

interface Block {
  readonly setup: string;
  readonly examples: Example[];
}

/** The README's example blocks: commands (with `\` continuations) and the `#` lines right under each. */
function exampleBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  for (const m of markdown.matchAll(/<!-- example: (.+?) -->\n```sh\n([\s\S]*?)```/g)) {
    const examples: Example[] = [];
    let current: { command: string; expected: string[] } | null = null;
    let continued = false;
    for (const line of (m[2] as string).split('\n')) {
      if (continued && current !== null) {
        current.command += `\n${line}`;
        continued = line.endsWith('\\');
      } else if (line.trim() === '') {
        current = null;
      } else if (line.startsWith('#')) {
        // Under a command: its expected output. Elsewhere: a description.
        if (current !== null) current.expected.push(line.replace(/^# ?/, ''));
      } else {
        current = { command: line, expected: [] };
        examples.push(current);
        continued = line.endsWith('\\');
      }
    }
    blocks.push({ setup: m[1] as string, examples });
  }
  return blocks;
}

/** Whether `actual` lines match `expected`, where an expected `...` stands for any number of lines. */
function matches(expected: readonly string[], actual: readonly string[]): boolean {
  if (expected.length === 0) return actual.length === 0;
  const [head, ...rest] = expected;
  if (head === '...') {
    for (let skip = 0; skip <= actual.length; skip++) if (matches(rest, actual.slice(skip))) return true;
    return false;
  }
  return actual.length > 0 && actual[0] === head && matches(rest, actual.slice(1));
}

const children: ChildProcess[] = [];
let redis: RedisServer | null = null;
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await redis?.stop();
});

/** Starts the CLI as the setup line says (`npm start -- …` runs exactly this after its build). */
async function startNode(env: Record<string, string>): Promise<number> {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, '--fronts', '1', '--shards', '1', '--port', String(port)], {
    cwd: ROOT,
    env: { ...process.env, STRATA_CONFIG: '', REDIS_URL: '', STRATA_TOKENS: '', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  await until(() => out.includes('strata listening'), 15_000);
  return port;
}

async function runBlock(block: Block, addresses: Record<string, string>): Promise<void> {
  for (const { command, expected } of block.examples) {
    let text = command;
    for (const [from, to] of Object.entries(addresses)) text = text.replaceAll(from, to);
    const { stdout } = await run('sh', ['-c', text], { timeout: 10_000 });
    let output = stdout.replaceAll('\r\n', '\n').replace(/\n$/, '');
    for (const [from, to] of Object.entries(addresses)) output = output.replaceAll(to, from);
    const lines = output === '' ? [] : output.split('\n');
    expect(matches(expected, lines), `${command}\nprinted:\n${output}\nREADME shows:\n${expected.join('\n')}`).toBe(true);
  }
}

describe('README examples', () => {
  const blocks = exampleBlocks(readFileSync(join(ROOT, 'README.md'), 'utf8'));

  it('has the three example blocks, with output shown for the commands', () => {
    expect(blocks.map((b) => b.setup)).toEqual([
      'npm start -- --fronts 1 --shards 1 --node-id node-a',
      'REDIS_URL=redis://127.0.0.1:6379 npm start -- --shards 1, then Redis stopped',
      'STRATA_TOKENS=s3cret-token-1 npm start -- --shards 1',
    ]);
    expect(blocks[0]?.examples.filter((e) => e.expected.length > 0).length).toBeGreaterThanOrEqual(10);
  });

  it('an L1-only node prints what the README shows', async () => {
    const port = await startNode({ STRATA_NODE_ID: 'node-a' });
    await runBlock(blocks[0] as Block, { '127.0.0.1:8080': `127.0.0.1:${port}` });
  });

  it('a node whose Redis was stopped prints what the README shows', async () => {
    redis = await RedisServer.start();
    const port = await startNode({ REDIS_URL: redis.url });
    const readyz = async () => (await fetch(`http://127.0.0.1:${port}/readyz`)).text();
    await until(async () => (await readyz()).includes('"ready"'));
    await redis.stop();
    // The state the README shows: every shard's client has noticed, the bus has given up (under load that takes a moment).
    await until(async () => {
      const text = await readyz();
      return text.includes('ECONNREFUSED') && text.includes('"shardsReady":0') && text.includes('"busSubscribed":false');
    });
    await runBlock(blocks[1] as Block, { '127.0.0.1:8080': `127.0.0.1:${port}`, '127.0.0.1:6379': `127.0.0.1:${redis.port}` });
  });

  it('a node with tokens prints what the README shows', async () => {
    const port = await startNode({ STRATA_TOKENS: 's3cret-token-1' });
    await runBlock(blocks[2] as Block, { '127.0.0.1:8080': `127.0.0.1:${port}` });
  });
});

import { type ChildProcess, spawn } from 'node:child_process';
import { CLI, ROOT } from './node.js';

/** A CLI process with its output kept by stream. */
export interface SpawnedCli {
  readonly child: ChildProcess;
  readonly out: () => string;
  readonly err: () => string;
  /** Its exit code (null when a signal ended it). */
  readonly exit: Promise<number | null>;
}

/**
 * Starts the compiled CLI with `args` and `env` over this process's
 * environment, minus what would leak a developer's setup into a test (config
 * file, Redis, tokens, log format). Every process started goes on `children`,
 * for the caller's afterEach to kill.
 */
export function spawnCli(children: ChildProcess[], args: readonly string[], env: Readonly<Record<string, string>> = {}): SpawnedCli {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, STRATA_CONFIG: '', REDIS_URL: '', STRATA_TOKENS: '', STRATA_LOG_FORMAT: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, out: () => out, err: () => err, exit };
}

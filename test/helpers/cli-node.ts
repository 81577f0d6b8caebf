import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { StrataFileConfig } from '../../src/config/schema.js';
import { CLI, ROOT, until } from './node.js';
import { freePort } from './redis.js';

/** A node in a process of its own (the CLI, with a config file), for tests that kill or freeze it. */
export class CliNode {
  readonly #child: ChildProcess;
  #out = '';

  private constructor(
    child: ChildProcess,
    readonly port: number,
  ) {
    this.#child = child;
    child.stdout?.on('data', (d: Buffer) => {
      this.#out += d.toString();
    });
    child.stderr?.on('data', (d: Buffer) => {
      this.#out += d.toString();
    });
  }

  /** Starts a node with `config` (written to a config file) on a free port; resolves once it listens. */
  static async start(config: StrataFileConfig, args: string[] = []): Promise<CliNode> {
    const dir = mkdtempSync(join(tmpdir(), 'strata-node-'));
    const file = join(dir, 'strata.json');
    writeFileSync(file, JSON.stringify(config));
    const port = await freePort();
    const child = spawn(process.execPath, [CLI, '--port', String(port), ...args], {
      cwd: ROOT,
      env: { ...process.env, STRATA_CONFIG: file, REDIS_URL: '', STRATA_REDIS_CLUSTER: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const node = new CliNode(child, port);
    await until(() => node.#out.includes('strata listening') || child.exitCode !== null, 20_000);
    if (child.exitCode !== null) throw new Error(`node did not start: ${node.#out}`);
    return node;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get output(): string {
    return this.#out;
  }

  signal(signal: NodeJS.Signals): void {
    this.#child.kill(signal);
  }

  /** Kills the process (if it still runs) and waits for it to go. */
  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#child.kill('SIGCONT');
    this.#child.kill('SIGKILL');
    await new Promise((r) => this.#child.once('exit', r));
  }
}

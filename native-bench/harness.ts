/**
 * What the HTTP benchmarks share: wrk (installed when missing), servers started
 * pinned to a CPU, per-thread CPU and RSS from /proc, and number formatting.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { freePort } from '../test/helpers/redis.js';

export const SERVER_CPU = '0';
export const WRK_CPU = availableParallelism() > 1 ? '1' : '0';
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

export function requireWrk(): void {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return; // wrk --version exits 1 but exists
    if (process.getuid?.() === 0) {
      console.log('wrk not found; installing the Debian package');
      execFileSync('apt-get', ['install', '-y', '-qq', 'wrk'], { stdio: 'inherit' });
    } else {
      console.error('wrk is required: apt-get install wrk');
      process.exit(1);
    }
  }
}

/** A server process started by a benchmark, and the port it listens on. */
export interface Server {
  child: ChildProcess;
  port: number;
}

/**
 * Starts `node argv…` (each '$PORT' replaced by a free port), pinned to `cpu` unless it is null, with
 * no config file, and waits for a line with 'listening' on its stdout.
 */
export async function startProcess(argv: string[], env: Record<string, string>, cpu: string | null): Promise<Server> {
  const port = await freePort();
  const full = argv.map((a) => (a === '$PORT' ? String(port) : a));
  const options = { stdio: ['ignore', 'pipe', 'inherit'] as ['ignore', 'pipe', 'inherit'], cwd: tmpdir(), env: { ...process.env, STRATA_CONFIG: '', ...env } };
  const child = cpu === null ? spawn(process.execPath, full, options) : spawn('taskset', ['-c', cpu, process.execPath, ...full], options);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('listening')) resolve();
    });
    child.on('exit', (code) => reject(new Error(`${argv.find((a) => !a.startsWith('-')) ?? argv[0]} exited with ${code}`)));
  });
  return { child, port };
}

/** SIGTERM, and resolves when the process has exited. */
export async function stop(server: Server): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return;
  const exited = new Promise((r) => server.child.once('exit', r));
  server.child.kill('SIGTERM');
  await exited;
}

/** Resident memory of a process in bytes (VmRSS), 0 if it has gone. */
export function rssOf(pid: number): number {
  try {
    const kib = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return Number(kib ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** CPU seconds of every thread of pid so far, and per thread (tid → [name, seconds]). */
export function cpuOf(pid: number): { total: number; threads: Map<number, [string, number]> } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the comm field: state is index 0, utime 11, stime 12.
  const total = (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  const threads = new Map<number, [string, number]>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const t = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = t.slice(t.indexOf('(') + 1, t.lastIndexOf(')'));
      const f = t.slice(t.lastIndexOf(')') + 2).split(' ');
      threads.set(Number(tid), [name, (Number(f[11]) + Number(f[12])) / CLK_TCK]);
    } catch {
      // thread exited
    }
  }
  return { total, threads };
}

/** GET JSON; retried once because uWS closes keep-alive connections idle for 10 s, which fetch may reuse. */
export async function getJson<T>(url: string): Promise<T> {
  try {
    return (await (await fetch(url)).json()) as T;
  } catch {
    return (await (await fetch(url)).json()) as T;
  }
}

export interface WrkResult {
  requests: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  errors: number;
}

export function parseLatency(text: string, pct: string): number {
  const m = new RegExp(`^\\s*${pct}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(text);
  if (m === null) return Number.NaN;
  const v = Number(m[1]);
  return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
}

/** What every measured wrk run reports: its wrk figures and the server CPU they cost. */
export interface Measured {
  requests: number;
  rps: number;
  p50ms: number;
  p99ms: number;
  errors: number;
  cpuSeconds: number;
  perCpuSecond: number;
}

/** The shared fields of a measured run from wrk's result and the server's CPU-seconds. */
export function measured(wrk: WrkResult, cpuSeconds: number): Measured {
  return { requests: wrk.requests, rps: wrk.rps, p50ms: wrk.p50ms, p99ms: wrk.p99ms, errors: wrk.errors, cpuSeconds, perCpuSecond: wrk.requests / cpuSeconds };
}

export function runWrk(port: number, script: string, seconds: number, connections: number): WrkResult {
  const out = execFileSync(
    'taskset',
    ['-c', WRK_CPU, 'wrk', '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', script, `http://127.0.0.1:${port}`],
    { encoding: 'utf8' },
  );
  const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sockErr = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (sockErr ? sockErr.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { requests, rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]), p50ms: parseLatency(out, '50'), p99ms: parseLatency(out, '99'), errors };
}

export const fmt = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

/** A share as a percentage with one decimal, '–' when there is none. */
export const pct = (x: number | null | undefined) => (x == null ? '–' : `${(x * 100).toFixed(1)}%`);

/** The median (the upper one of an even count); NaN for none (a figure leaves that bar out). */
export const median = (xs: readonly number[]): number => (xs.length === 0 ? Number.NaN : ([...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number));

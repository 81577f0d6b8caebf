/**
 * What every benchmark script reports besides its tables:
 *
 * - `Progress`: the script declares its steps up front (name and planned
 *   seconds each) and marks each one as it starts; on a terminal
 *   (stderr a TTY) one status line on stderr says which step of how many is
 *   running, what it is, the time elapsed and the time left (the planned
 *   seconds of the steps to come, scaled by how long the finished steps took
 *   against their plan). Anything the script prints meanwhile clears the line
 *   first. When stderr is not a terminal it prints nothing; `NO_COLOR` turns
 *   its colours off.
 * - `Report`: the run's context (date, Node.js version, the command line, the
 *   CPU model) and its results, written to native-bench/results/<script>.json
 *   (git-ignored), and its figures, drawn with plot.ts, to
 *   native-bench/results/<name>.svg and, except in a quick (smoke) run, to
 *   native-bench/figures/<name>.svg, the copy the README shows.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { figure, type Panel } from './plot.js';

// ---------------------------------------------------------------- progress

/** A step as the script plans it: its name, and how long it should take. */
export interface PlannedStep {
  name: string;
  seconds: number;
}

/** Where the status line goes: process.stderr, or a fake one in tests. */
export interface StatusStream {
  isTTY?: boolean;
  columns?: number;
  write(chunk: string): boolean;
}

export interface ProgressOptions {
  /** @default process.stderr */
  stream?: StatusStream;
  /** Milliseconds, monotonic. @default performance.now */
  now?: () => number;
  /** Colours (bold, dim) in the status line. @default on unless NO_COLOR is set to something */
  color?: boolean;
  /** How often the line is redrawn, ms; 0: only when a step starts or the detail changes. @default 1000 */
  intervalMs?: number;
  /**
   * Whether the script's own writes to process.stdout and process.stderr
   * clear the status line first (and redraw it after a complete line).
   * @default true when `stream` is process.stderr
   */
  interceptOutput?: boolean;
}

interface StepState {
  name: string;
  planned: number;
  /** ms, from `now`. */
  startedAt: number | null;
  finishedAt: number | null;
  /** Planned but passed over: no longer counted in the time left. */
  skipped: boolean;
}

/** A snapshot of where the run is, as the status line shows it. */
export interface ProgressState {
  /** 1-based; 0 before the first step. */
  index: number;
  count: number;
  name: string;
  detail: string;
  elapsedSeconds: number;
  leftSeconds: number;
}

const ERASE_LINE = '\r\x1b[2K';

/** m:ss, or h:mm:ss from an hour. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** Whether NO_COLOR asks for no colour (https://no-color.org: set and not empty). */
export function noColor(env: NodeJS.ProcessEnv = process.env): boolean {
  return env.NO_COLOR !== undefined && env.NO_COLOR !== '';
}

/**
 * The status line of a long benchmark (see the file's comment). Steps are
 * started by name, in the order planned; starting a step finishes the one
 * running, and passes over planned steps between them. A name that was not
 * planned runs as an extra step planned at 0 s.
 */
export class Progress {
  readonly #steps: StepState[];
  readonly #stream: StatusStream;
  readonly #now: () => number;
  readonly #color: boolean;
  readonly #tty: boolean;
  readonly #began: number;
  readonly #restore: (() => void)[] = [];
  /** Writes to the stream that bypass the interception. */
  readonly #write: (chunk: string) => void;
  #timer: NodeJS.Timeout | null = null;
  #current = -1;
  #detail = '';
  #fraction: number | null = null;
  /** Whether the status line is on the screen. */
  #shown = false;
  /** The script's last write did not end its line: drawing now would append to it. */
  #midLine = false;
  #ended = false;

  constructor(steps: readonly PlannedStep[], options: ProgressOptions = {}) {
    this.#steps = steps.map((s) => ({ name: s.name, planned: Math.max(0, s.seconds), startedAt: null, finishedAt: null, skipped: false }));
    const stream = options.stream ?? process.stderr;
    this.#stream = stream;
    this.#now = options.now ?? (() => performance.now());
    this.#tty = stream.isTTY === true;
    this.#color = options.color ?? !noColor();
    this.#began = this.#now();
    const write = stream.write;
    this.#write = (chunk) => {
      write.call(stream, chunk);
    };
    if (!this.#tty) return;
    if (options.interceptOutput ?? stream === process.stderr) {
      this.#intercept(process.stderr);
      if (process.stdout.isTTY) this.#intercept(process.stdout);
      process.once('exit', () => this.#clear());
    }
    const interval = options.intervalMs ?? 1000;
    if (interval > 0) {
      this.#timer = setInterval(() => this.#draw(), interval);
      this.#timer.unref();
    }
  }

  /** Whether a status line is shown at all (stderr is a terminal). */
  get active(): boolean {
    return this.#tty;
  }

  /** Finishes the running step and starts `name`. */
  start(name: string): void {
    if (this.#ended) return;
    const now = this.#now();
    this.#finishCurrent(now);
    let next = this.#steps.findIndex((s, i) => i > this.#current && s.name === name && s.startedAt === null && !s.skipped);
    if (next === -1) {
      next = this.#current + 1;
      this.#steps.splice(next, 0, { name, planned: 0, startedAt: null, finishedAt: null, skipped: false });
    }
    for (let i = this.#current + 1; i < next; i++) (this.#steps[i] as StepState).skipped = true;
    const step = this.#steps[next] as StepState;
    step.startedAt = now;
    this.#current = next;
    this.#detail = '';
    this.#fraction = null;
    this.#draw();
  }

  /** Finishes the running step (the next start() does it too). */
  finish(): void {
    this.#finishCurrent(this.#now());
    this.#draw();
  }

  /** Runs `fn` as the step `name`. */
  async run<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.start(name);
    try {
      return await fn();
    } finally {
      this.finish();
    }
  }

  /**
   * What the running step is doing now ("42 % of 163,840 PUTs"), shown after
   * its name; `fraction` (0–1) of the step done, when the step knows it,
   * estimates the step's time left from its own pace instead of its plan.
   */
  update(detail: string, fraction?: number): void {
    this.#detail = detail;
    this.#fraction = fraction === undefined || !Number.isFinite(fraction) ? null : Math.min(1, Math.max(0, fraction));
    this.#draw();
  }

  /** Finishes the last step, removes the status line and stops redrawing it: call before printing the results. */
  end(): void {
    if (this.#ended) return;
    this.#finishCurrent(this.#now());
    this.#clear();
    this.#ended = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    for (const restore of this.#restore.splice(0)) restore();
  }

  /** Where the run is: step, elapsed, and the estimated time left. */
  state(): ProgressState {
    const now = this.#now();
    const counted = this.#steps.filter((s) => !s.skipped);
    const step = this.#steps[this.#current];
    let plannedDone = 0;
    let actualDone = 0;
    for (const s of this.#steps) {
      if (s.startedAt !== null && s.finishedAt !== null) {
        plannedDone += s.planned;
        actualDone += s.finishedAt - s.startedAt;
      }
    }
    // How long steps take against their plan so far: 1 until a planned step has finished.
    const scale = plannedDone > 0 ? actualDone / 1000 / plannedDone : 1;
    let left = 0;
    if (step !== undefined && step.startedAt !== null && step.finishedAt === null) {
      const inStep = (now - step.startedAt) / 1000;
      left += this.#fraction !== null && this.#fraction > 0 ? inStep * (1 / this.#fraction - 1) : Math.max(0, step.planned * scale - inStep);
    }
    for (let i = this.#current + 1; i < this.#steps.length; i++) {
      const s = this.#steps[i] as StepState;
      if (!s.skipped && s.startedAt === null) left += s.planned * scale;
    }
    return {
      index: step === undefined ? 0 : counted.indexOf(step) + 1,
      count: counted.length,
      name: step?.name ?? 'starting',
      detail: this.#detail,
      elapsedSeconds: (now - this.#began) / 1000,
      leftSeconds: left,
    };
  }

  /** The status line's text, without control characters other than colours, cut to `columns`. */
  line(columns = (this.#stream.columns ?? 0) > 0 ? (this.#stream.columns as number) : 100): string {
    const s = this.state();
    const counter = `[${s.index}/${s.count}]`;
    const name = s.detail === '' ? s.name : `${s.name}: ${s.detail}`;
    // The line must fit one row, or \r would not bring the cursor back to its start: the name is cut, then the elapsed time dropped.
    let times = ` · ${formatDuration(s.elapsedSeconds)} elapsed · ~${formatDuration(s.leftSeconds)} left`;
    if (columns - 1 - counter.length - 1 - times.length < 12) times = ` · ~${formatDuration(s.leftSeconds)} left`;
    const room = Math.max(2, columns - 1 - counter.length - 1 - times.length);
    const chars = [...name];
    const shown = chars.length > room ? `${chars.slice(0, room - 1).join('')}…` : name;
    if (!this.#color) return `${counter} ${shown}${times}`;
    return `\x1b[1m${counter}\x1b[22m ${shown}\x1b[2m${times}\x1b[22m`;
  }

  #finishCurrent(now: number): void {
    const step = this.#steps[this.#current];
    if (step !== undefined && step.startedAt !== null && step.finishedAt === null) step.finishedAt = now;
  }

  #draw(): void {
    if (!this.#tty || this.#ended || this.#midLine) return;
    this.#write(`${ERASE_LINE}${this.line()}`);
    this.#shown = true;
  }

  #clear(): void {
    if (!this.#shown) return;
    this.#write(ERASE_LINE);
    this.#shown = false;
  }

  /** Makes every write to `target` clear the status line first, and redraw it once a line is complete. */
  #intercept(target: NodeJS.WriteStream): void {
    const original = target.write;
    const wrapped = (...args: unknown[]): boolean => {
      this.#clear();
      const ok = (original as (...a: unknown[]) => boolean).apply(target, args);
      const chunk = args[0];
      const text = typeof chunk === 'string' ? chunk : chunk instanceof Uint8Array ? Buffer.from(chunk).toString('utf8') : '';
      if (text.length > 0) this.#midLine = !text.endsWith('\n');
      this.#draw();
      return ok;
    };
    target.write = wrapped as typeof target.write;
    this.#restore.push(() => {
      target.write = original;
    });
  }
}

// ---------------------------------------------------------------- results

/** Where the bench's sources and its results and figures live (native-bench/, from its compiled copy in dist/ too). */
function benchDir(): string {
  const here = fileURLToPath(new URL('.', import.meta.url));
  return /[\\/]dist[\\/]native-bench[\\/]?$/.test(here) ? join(here, '..', '..', 'native-bench') : here;
}

/** The context of one run, at the top of its JSON. */
export interface RunInfo {
  script: string;
  /** ISO 8601, when the run started. */
  date: string;
  node: string;
  /** How to run it again: `npm run bench:<script> -- …` when npm started it, else the node command line. */
  command: string;
  argv: string[];
  cpu: string;
  cores: number;
  platform: string;
  /** The checked-out commit, when git can say; `dirty` when the tree had changes. */
  commit: string | null;
  loadAverage: { start: number; end: number | null };
  /** A smoke run: its figures stay in results/. */
  quick: boolean;
}

export interface ReportOptions {
  /** A smoke run: figures are not written to figures/. @default false */
  quick?: boolean;
  /** @default native-bench/results */
  resultsDir?: string;
  /** @default native-bench/figures */
  figuresDir?: string;
  /** The command line to record. @default from npm's environment, else process.argv */
  command?: string;
  /** @default now */
  date?: Date;
}

function gitCommit(): string | null {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: benchDir(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: benchDir(),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    return dirty.trim() === '' ? head : `${head} (dirty)`;
  } catch {
    return null;
  }
}

/** `npm run bench:http -- --seconds 2` when npm ran the script, else `node [flags] dist/native-bench/http.js --seconds 2`. */
export function commandLine(
  argv: readonly string[] = process.argv,
  execArgv: readonly string[] = process.execArgv,
  env: NodeJS.ProcessEnv = process.env,
): string {
  const args = argv.slice(2);
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`);
  const event = env.npm_lifecycle_event;
  if (event?.startsWith('bench:')) return [`npm run ${event}`, ...(args.length > 0 ? ['--', ...args.map(quote)] : [])].join(' ');
  const script = argv[1] === undefined ? '' : relative(process.cwd(), argv[1]) || argv[1];
  return ['node', ...execArgv.map(quote), quote(script), ...args.map(quote)].join(' ');
}

/**
 * One run's results: its context (RunInfo), a JSON file of everything it
 * measured, and its figures. Paths printed by `written()`.
 */
export class Report {
  readonly info: RunInfo;
  readonly #resultsDir: string;
  readonly #figuresDir: string;
  readonly #written: string[] = [];

  constructor(script: string, options: ReportOptions = {}) {
    this.#resultsDir = options.resultsDir ?? join(benchDir(), 'results');
    this.#figuresDir = options.figuresDir ?? join(benchDir(), 'figures');
    this.info = {
      script,
      date: (options.date ?? new Date()).toISOString(),
      node: process.version,
      command: options.command ?? commandLine(),
      argv: [process.execPath, ...process.execArgv, ...process.argv.slice(1)],
      cpu: cpus()[0]?.model.trim() ?? '?',
      cores: availableParallelism(),
      platform: `${process.platform} ${process.arch}`,
      commit: gitCommit(),
      loadAverage: { start: loadavg()[0] as number, end: null },
      quick: options.quick ?? false,
    };
  }

  /** The caption's first line: the command, the date, the machine. */
  caption(): string {
    const { command, date, cpu, cores, node } = this.info;
    return `${command} · ${date.slice(0, 16).replace('T', ' ')} UTC · ${cpu} ×${cores} · Node.js ${node}`;
  }

  /**
   * Writes `results` under the run's context to results/<script>.json
   * (<script>-quick.json in a quick run); returns the path.
   */
  json(results: object): string {
    this.info.loadAverage.end = loadavg()[0] as number;
    mkdirSync(this.#resultsDir, { recursive: true });
    const path = join(this.#resultsDir, `${this.info.script}${this.info.quick ? '-quick' : ''}.json`);
    writeFileSync(path, `${JSON.stringify({ ...this.info, results }, jsonReplacer, 2)}\n`);
    this.#written.push(path);
    return path;
  }

  /**
   * Draws `panels` as one figure titled `title`, the caption's first line
   * the command and date, `notes` after it; writes it to results/<name>.svg
   * and, unless the run is quick, figures/<name>.svg. Returns the SVG.
   */
  figure(name: string, title: string, panels: Panel[], options: { notes?: string[]; columns?: number } = {}): string {
    const svg = figure(title, panels, [this.caption(), ...(options.notes ?? [])], options.columns === undefined ? {} : { columns: options.columns });
    const quick = this.info.quick;
    mkdirSync(this.#resultsDir, { recursive: true });
    const paths = [join(this.#resultsDir, `${name}${quick ? '-quick' : ''}.svg`)];
    if (!quick) {
      mkdirSync(this.#figuresDir, { recursive: true });
      paths.push(join(this.#figuresDir, `${name}.svg`));
    }
    for (const path of paths) {
      writeFileSync(path, svg);
      this.#written.push(path);
    }
    return svg;
  }

  /** Every file written so far, relative to the working directory. */
  written(): string[] {
    return this.#written.map((p) => relative(process.cwd(), p) || p);
  }

  /** One line naming the files written, for the end of the script's output. */
  summary(): string {
    return `\nwrote ${this.written().join(', ')}`;
  }
}

/** Maps become objects, and numbers that are not finite strings ('NaN', 'Infinity'), so that nothing measured is lost as null. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  return value;
}

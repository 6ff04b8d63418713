/**
 * Runs the compiled CLI (`node dist/src/cli/main.js …`) as a child process for integration tests,
 * collecting its output and killing it if the test process exits first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Compiled to dist/test/integration/harness/, four levels below the repository root. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..', '..', '..');
/** Whether a process of this PID still exists (signal 0 checks without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export const CLI_PATH = path.join(REPO_ROOT, 'dist', 'src', 'cli', 'main.js');

/**
 * Settings the product reads from the environment; not inherited from the shell running the
 * tests, so a developer's own DATABASE_URL or K_SINK never leaks into a test.
 */
const PRODUCT_ENV = [
  'DATABASE_URL',
  'K_SINK',
  'K_CE_OVERRIDES',
  'K_CA_CERTS',
  'K_SINK_TIMEOUT',
  'K_SOURCE',
  'CLOUDEVENTS_HANDLER',
  'PG_CLOUDEVENTS_CONFIG',
  'PG_CLOUDEVENTS_TABLES',
  'PG_CLOUDEVENTS_SLOT',
  'PG_CLOUDEVENTS_PUBLICATION',
  'PORT',
  'LOG_LEVEL',
  'ADMIN_TOKEN',
  'REDIS_URL',
];

export interface SpawnOptions {
  /** Working directory; default the repository root. */
  cwd?: string;
  /**
   * An executable to run instead of `node <repo>/dist/src/cli/main.js` (e.g. an installed
   * package's `node_modules/.bin/pg-cloudevents`, which then needs its shebang and mode).
   */
  command?: string;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface CliProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /**
   * Resolves with the first output line (stdout or stderr, seen already or later) matching `re`
   * (no /g flag); rejects on timeout or when the process exits first, showing its output.
   */
  waitForLine(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Resolves when the process has exited and its output is fully read. */
  exit(): Promise<ExitStatus>;
  kill(signal?: NodeJS.Signals): void;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function killLeftovers(): void {
  for (const child of live) child.kill('SIGKILL');
}

function tail(text: string, lines = 20): string {
  return text.split('\n').slice(-lines).join('\n');
}

/** The image's NODE_OPTIONS (heap limit), read from the Dockerfile: tests run the process as it ships. */
export const SHIPPED_NODE_OPTIONS = (() => {
  const dockerfile = fs.readFileSync(path.join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const m = /^ENV .*NODE_OPTIONS=(\S+)/m.exec(dockerfile);
  if (!m) throw new Error('Dockerfile sets no NODE_OPTIONS');
  return m[1];
})();

export function spawnCli(args: string[], env: Record<string, string>, opts: SpawnOptions = {}): CliProcess {
  if (!exitHookInstalled) {
    // 'exit' handlers must be synchronous: kill() is. Mocha's --exit ends through process.exit.
    process.on('exit', killLeftovers);
    exitHookInstalled = true;
  }
  const inherited = { ...process.env };
  for (const name of PRODUCT_ENV) delete inherited[name];

  const [file, argv] = opts.command ? [opts.command, args] : [process.execPath, [CLI_PATH, ...args]];
  const child = spawn(file, argv, {
    cwd: opts.cwd ?? REPO_ROOT,
    env: { ...inherited, LOG_LEVEL: 'debug', NODE_OPTIONS: SHIPPED_NODE_OPTIONS, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(child);

  let out = '';
  let err = '';
  const lines: string[] = [];
  const lineWaiters = new Set<(line: string) => void>();
  const partial = { stdout: '', stderr: '' };

  const addLine = (line: string) => {
    lines.push(line);
    for (const waiter of lineWaiters) waiter(line);
  };
  const onChunk = (stream: 'stdout' | 'stderr', chunk: string) => {
    if (stream === 'stdout') out += chunk;
    else err += chunk;
    const parts = (partial[stream] + chunk).split('\n');
    partial[stream] = parts.pop() ?? '';
    parts.forEach(addLine);
  };
  child.stdout!.setEncoding('utf8').on('data', (c: string) => onChunk('stdout', c));
  child.stderr!.setEncoding('utf8').on('data', (c: string) => onChunk('stderr', c));

  const exited = new Promise<ExitStatus>((resolve) => {
    child.on('close', (code, signal) => {
      live.delete(child);
      // A last line without a newline still counts.
      for (const stream of ['stdout', 'stderr'] as const) {
        if (partial[stream]) addLine(partial[stream]);
        partial[stream] = '';
      }
      resolve({ code, signal });
    });
  });

  const describe = () =>
    `${opts.command ?? `node ${path.relative(REPO_ROOT, CLI_PATH)}`} ${args.join(' ')}\n--- stdout (tail) ---\n${tail(out)}\n--- stderr (tail) ---\n${tail(err)}`;

  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exit: () => exited,
    kill: (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    waitForLine(re: RegExp, timeoutMs = 15_000): Promise<string> {
      const seen = lines.find((line) => re.test(line));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise<string>((resolve, reject) => {
        const done = () => {
          clearTimeout(timer);
          lineWaiters.delete(onLine);
        };
        const onLine = (line: string) => {
          if (!re.test(line)) return;
          done();
          resolve(line);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no output line matched ${re} within ${timeoutMs} ms: ${describe()}`));
        }, timeoutMs);
        lineWaiters.add(onLine);
        void exited.then(({ code, signal }) => {
          if (!lineWaiters.has(onLine)) return;
          done();
          reject(new Error(`process exited (code ${code}, signal ${signal}) before a line matched ${re}: ${describe()}`));
        });
      });
    },
  };
}

/** The exit status, or a failure naming the output when the process is still running at the deadline (it is then killed). */
export async function exitWithin(p: CliProcess, ms: number) {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`still running after ${ms} ms:\n${p.stdout()}\n${p.stderr()}`));
    }, ms);
  });
  try {
    return await Promise.race([p.exit(), late]);
  } finally {
    clearTimeout(timer);
  }
}

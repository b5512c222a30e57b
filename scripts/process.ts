/**
 * A Node.js script run as a child process, as the tests, the benchmark and `npm start` watch one:
 * its output, a line it prints, its exit, and an end that never hangs.
 */
import { spawn, type ChildProcess } from 'node:child_process';

export interface NodeProcess {
  readonly child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** Its exit code once it exited (null: a signal ended it). */
  readonly exited: Promise<number | null>;
  /**
   * Resolves with the match once its output matches `pattern` (what it printed before counts);
   * rejects, with its output, if it exits first or `timeoutMs` passes. `what` names the wait.
   */
  waitFor(pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpExecArray>;
  /** Sends `signal` (default SIGTERM) and waits for the exit; SIGKILL after `graceMs` (default 10 s). */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | null>;
  /** SIGKILL, as a crash or a power cut ends it; waits for the exit. */
  kill(): Promise<number | null>;
}

export interface RunOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Pinned to these CPUs with taskset (e.g. "0,1"). */
  cpus?: string;
  /** An IPC channel, as `fork` opens: child.send() and the 'message' event. */
  ipc?: boolean;
}

/** A command line run on the given CPUs (taskset), or as it is: [program, args] for spawn. */
export function pinned(cpus: string | undefined, command: string[]): [string, string[]] {
  const [program, ...args] = cpus ? ['taskset', '-c', cpus, ...command] : command;
  return [program, args];
}

export function runNode(script: string, args: string[], options: RunOptions = {}): NodeProcess {
  const child = spawn(...pinned(options.cpus, [process.execPath, script, ...args]), {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe', ...(options.ipc ? (['ipc'] as const) : [])],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // After the exit, once its output is all read: a line printed just before the end still counts.
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  // A child that could not be started never exits: its error ends the waits instead.
  const failed = new Promise<Error>((resolve) => child.once('error', resolve));
  const watchers = new Set<() => void>();
  for (const stream of [child.stdout, child.stderr]) {
    stream?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      for (const watcher of watchers) watcher();
    });
  }
  const running = () => child.exitCode === null && child.signalCode === null;

  function waitFor(pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const end = (outcome: () => void) => {
        clearTimeout(timer);
        watchers.delete(check);
        outcome();
      };
      const fail = (why: string) => end(() => reject(new Error(`${what}: ${why}. Its output:\n${output}`)));
      const check = () => {
        const match = pattern.exec(output);
        if (match) end(() => resolve(match));
      };
      const timer = setTimeout(() => fail(`not within ${timeoutMs} ms`), timeoutMs);
      watchers.add(check);
      check();
      void closed.then((code) => fail(`it exited (${code})`));
      void failed.then((err) => fail(`it could not be started (${err.message})`));
    });
  }

  return {
    child,
    output: () => output,
    exited,
    waitFor,
    async stop(signal = 'SIGTERM', graceMs = 10_000) {
      if (running()) {
        child.kill(signal);
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
    async kill() {
      if (running()) child.kill('SIGKILL');
      return exited;
    },
  };
}

import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { guardChildProcess } from './orphan-guard.ts';

/** How a server process ended. */
export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Options of {@link spawnServer}. */
export interface ServerProcessOptions {
  command: string;
  args: readonly string[];
  cwd: string;
  /** File that receives the server's stdout and stderr (appended). */
  logFile: string;
  /** Run as this user and group; default: the current ones. */
  uid?: number;
  gid?: number;
  /** Environment; default: this process's. */
  env?: NodeJS.ProcessEnv;
  /** Sent if the server still runs when this process exits. Default `SIGKILL`. */
  exitSignal?: NodeJS.Signals;
  /** Directory removed by the orphan watchdog if this process dies. Default none. */
  dir?: string;
}

/** A long-running child process whose output goes to a log file. */
export interface ServerProcess {
  readonly pid: number;
  readonly logFile: string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ExitStatus>;
  /** The exit status, or `undefined` while it runs. */
  exitStatus(): ExitStatus | undefined;
  /** Sends `signal`, waits up to `timeoutMs`, then SIGKILLs. Resolves once it has exited. */
  stop(signal: NodeJS.Signals, timeoutMs: number): Promise<ExitStatus>;
  /** The last `maxChars` characters of the log, for error messages. */
  logTail(maxChars?: number): Promise<string>;
}

/** Waits for `promise` at most `ms`; the timer is cleared so it never holds the event loop. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Spawns a server process for tests. Its output goes to a file rather than pipes, and the child
 * is unref'd, so that it holds no handle in this process: the leak guard then never sees it, and
 * it never keeps the test runner alive. It is guarded so it cannot outlive the runner.
 */
export async function spawnServer(options: ServerProcessOptions): Promise<ServerProcess> {
  const logFd = openSync(options.logFile, 'a');
  let child;
  try {
    child = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', logFd, logFd],
      ...(options.uid === undefined ? {} : { uid: options.uid }),
      ...(options.gid === undefined ? {} : { gid: options.gid }),
    });
  } finally {
    closeSync(logFd);
  }
  let status: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      status = { code, signal };
      resolve(status);
    });
  });
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${options.command} did not start`);
  child.unref();
  guardChildProcess(child, {
    ...(options.exitSignal === undefined ? {} : { exitSignal: options.exitSignal }),
    ...(options.dir === undefined ? {} : { dir: options.dir }),
  });

  return {
    pid,
    logFile: options.logFile,
    exited,
    exitStatus: () => status,
    async stop(signal, timeoutMs) {
      if (status) return status;
      child.kill(signal);
      const first = await within(exited, timeoutMs);
      if (first !== 'timeout') return first;
      child.kill('SIGKILL');
      return exited;
    },
    async logTail(maxChars = 4000) {
      try {
        const text = await readFile(options.logFile, 'utf8');
        return text.slice(-maxChars);
      } catch {
        return '';
      }
    },
  };
}

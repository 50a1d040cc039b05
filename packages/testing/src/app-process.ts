import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { guardChildProcess } from './orphan-guard.ts';
import { repoRoot } from './repo-root.ts';

/** Options of {@link startAppProcess}. */
export interface AppProcessOptions {
  /**
   * The app's environment, on top of a minimal base (PATH, HOME, TMPDIR, LANG, TZ) so that
   * whatever happens to be exported in the developer's shell cannot change what a test sees.
   */
  env: Record<string, string>;
  /** Names the process in error messages and echoed output. */
  name: string;
  /** Command-line arguments after the entry (e.g. a CLI's subcommand). Default none. */
  args?: string[];
  /** Start from this process's whole environment instead of the minimal base. Default `false`. */
  inheritEnv?: boolean;
  /** Node's own options, before the entry (e.g. {@link SERVICE_NODE_ARGS}). Default none. */
  nodeArgs?: readonly string[];
}

/**
 * The Node options the API, the worker and the reader run with, as scripts/start.sh and
 * docker/entrypoint.sh start them: a young generation of 32 MB semi-spaces instead of V8's 16 MB,
 * so the short-lived objects of each request and drain are collected in half as many scavenges.
 */
export const SERVICE_NODE_ARGS: readonly string[] = ['--max-semi-space-size=32'];

/** A memfleet app (api, worker, ...) running as a child process of the test. */
export interface AppProcess {
  readonly name: string;
  readonly pid: number;
  /** Every stdout and stderr line so far, in arrival order. */
  lines(): string[];
  /**
   * Resolves with the first line (from index `fromLine`, default 0, so lines already printed
   * count) that matches `re`. Rejects after `timeoutMs` (default 30000), or as soon as the
   * process exits without printing one, with its last lines in the message.
   */
  waitForLine(re: RegExp, timeoutMs?: number, fromLine?: number): Promise<string>;
  /**
   * Resolves with the exit code (`null` if killed by a signal) once the process has exited and
   * its output is read. Rejects after `timeoutMs` (default 10000).
   */
  waitForExit(timeoutMs?: number): Promise<number | null>;
  signal(sig: NodeJS.Signals): void;
  /** SIGKILLs the process (a crash) and resolves once it is gone. */
  kill9(): Promise<void>;
  /** SIGTERM, then SIGKILL if still running after `timeoutMs` (default 10000). Resolves the exit code. */
  stop(timeoutMs?: number): Promise<number | null>;
}

const MAX_LINES = 100_000;
const BASE_ENV_KEYS = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ'] as const;

// An absolute URL, so the child finds tsx whatever its cwd; tsx is a root devDependency.
const tsxLoader = pathToFileURL(createRequire(join(repoRoot, 'package.json')).resolve('tsx')).href;

function baseEnv(inherit: boolean): NodeJS.ProcessEnv {
  if (inherit) return { ...process.env };
  const env: NodeJS.ProcessEnv = {};
  for (const key of BASE_ENV_KEYS) {
    const value = process.env[key];
    if (value !== undefined) env[key] = value;
  }
  return env;
}

interface LineWaiter {
  re: RegExp;
  from: number;
  resolve: (line: string) => void;
  reject: (err: Error) => void;
}

/**
 * Starts `entry` (a TypeScript main, absolute or relative to the repo root) as
 * `node [nodeArgs] --import tsx <entry> [args]` with the repo root as cwd, capturing its output
 * line by line. Set `MEMFLEET_TEST_APP_OUTPUT=1` to also echo that output to stderr, prefixed with
 * the name. The process never outlives the test runner.
 */
export function startAppProcess(entry: string, options: AppProcessOptions): AppProcess {
  const { name } = options;
  const argv = [...(options.nodeArgs ?? []), '--import', tsxLoader, entry, ...(options.args ?? [])];
  const child = spawn(process.execPath, argv, {
    cwd: repoRoot,
    env: { ...baseEnv(options.inheritEnv ?? false), ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: could not spawn ${process.execPath}`);
  guardChildProcess(child);

  const captured: string[] = [];
  let dropped = 0;
  const waiters = new Set<LineWaiter>();
  const echo = process.env.MEMFLEET_TEST_APP_OUTPUT === '1';
  // The test command scans every app's output for personal data afterwards (log-scan.ts).
  const logDir = process.env.MEMFLEET_TEST_LOG_DIR;
  let logFile: string | undefined;
  if (logDir !== undefined && logDir !== '') {
    mkdirSync(logDir, { recursive: true });
    logFile = join(logDir, `${name.replace(/[^\w.-]/g, '_')}-${pid}.log`);
  }
  let exitCode: number | null | undefined;

  const tail = (): string => captured.slice(-20).join('\n');

  const onLine = (line: string): void => {
    if (echo) process.stderr.write(`[${name}] ${line}\n`);
    if (logFile !== undefined) appendFileSync(logFile, `${line}\n`);
    captured.push(line);
    // Bound memory for chatty long runs; indexes given to waitForLine stay meaningful enough.
    if (captured.length > MAX_LINES) {
      captured.shift();
      dropped += 1;
    }
    for (const waiter of waiters) {
      if (captured.length + dropped > waiter.from && waiter.re.test(line)) waiter.resolve(line);
    }
  };

  const readLines = (stream: Readable): void => {
    let partial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      for (const part of parts) onLine(part.replace(/\r$/, ''));
    });
    stream.on('end', () => {
      if (partial !== '') onLine(partial);
      partial = '';
    });
  };
  readLines(child.stdout);
  readLines(child.stderr);

  // 'close' rather than 'exit': it comes after both pipes are drained, so no line is missed.
  const closed = new Promise<number | null>((resolve) => {
    child.once('close', (code: number | null) => {
      exitCode = code;
      for (const waiter of waiters) {
        waiter.reject(
          new Error(
            `${name} exited (code ${String(code)}) before printing a line matching ${String(waiter.re)}; last lines:\n${tail()}`,
          ),
        );
      }
      resolve(code);
    });
  });

  const within = async <T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(what())), ms);
    });
    try {
      return await Promise.race([promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };

  const app: AppProcess = {
    name,
    pid,
    lines: () => [...captured],
    waitForLine(re, timeoutMs = 30_000, fromLine = 0) {
      const start = Math.max(0, fromLine - dropped);
      const found = captured.slice(start).find((line) => re.test(line));
      if (found !== undefined) return Promise.resolve(found);
      if (exitCode !== undefined) {
        return Promise.reject(
          new Error(`${name} has exited; no line matches ${String(re)}; last lines:\n${tail()}`),
        );
      }
      let waiter: LineWaiter | undefined;
      const matched = new Promise<string>((resolve, reject) => {
        waiter = { re, from: fromLine, resolve, reject };
        waiters.add(waiter);
      });
      return within(
        matched,
        timeoutMs,
        () =>
          `${name}: no line matching ${String(re)} within ${timeoutMs} ms; last lines:\n${tail()}`,
      ).finally(() => {
        if (waiter) waiters.delete(waiter);
      });
    },
    waitForExit(timeoutMs = 10_000) {
      return within(
        closed,
        timeoutMs,
        () => `${name} (pid ${pid}) still running after ${timeoutMs} ms; last lines:\n${tail()}`,
      );
    },
    signal(sig) {
      if (exitCode === undefined) child.kill(sig);
    },
    async kill9() {
      if (exitCode === undefined) child.kill('SIGKILL');
      await closed;
    },
    async stop(timeoutMs = 10_000) {
      if (exitCode !== undefined) return exitCode;
      child.kill('SIGTERM');
      try {
        return await app.waitForExit(timeoutMs);
      } catch {
        child.kill('SIGKILL');
        return closed;
      }
    },
  };
  return app;
}

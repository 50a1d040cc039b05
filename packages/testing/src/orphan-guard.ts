import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

interface Guarded {
  pid: number;
  exitSignal: NodeJS.Signals;
}

const children = new Map<number, Guarded>();
const dirs = new Set<string>();
let installed = false;

// The watchdog outlives a test runner killed with SIGKILL (CI timeouts, turbo aborts), which no
// in-process handler can catch. PR_SET_PDEATHSIG would be simpler but is not honoured in every
// sandbox (it is not on our CI machines), so a tiny polling shell does the job instead.
const WATCHDOG = `
parent=$1 child=$2 sig=$3 dir=$4
while kill -0 "$parent" 2>/dev/null; do
  kill -0 "$child" 2>/dev/null || exit 0
  sleep 1
done
if kill -0 "$child" 2>/dev/null; then
  kill -s "$sig" "$child" 2>/dev/null
  i=0
  while kill -0 "$child" 2>/dev/null && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
  kill -s KILL "$child" 2>/dev/null
fi
if [ -n "$dir" ]; then rm -rf "$dir"; fi
`;

function reapAll(): void {
  for (const child of children.values()) {
    try {
      process.kill(child.pid, child.exitSignal);
    } catch {
      // Already gone.
    }
  }
  children.clear();
  for (const dir of dirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // A server still shutting down may recreate files; the watchdog removes the rest.
    }
  }
  dirs.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', reapAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = (): void => {
      reapAll();
      process.removeListener(sig, onSignal);
      // Listening for a signal disables Node's default of exiting, so re-raise it unless someone
      // else (e.g. mocha) has taken charge of it.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

/** Options of {@link guardChildProcess}. */
export interface GuardOptions {
  /** Signal sent if the child is still running when this process exits. Default `SIGKILL`. */
  exitSignal?: NodeJS.Signals;
  /** Directory the watchdog removes if this process dies without cleaning up. Default none. */
  dir?: string;
}

/**
 * Makes sure `child` does not outlive this process: it is signalled on exit and on
 * SIGINT/SIGTERM/SIGHUP, and a detached watchdog signals it if this process is SIGKILLed.
 * Returns a function that stops guarding (call it once the child has exited).
 */
export function guardChildProcess(child: ChildProcess, options: GuardOptions = {}): () => void {
  const pid = child.pid;
  if (pid === undefined) return () => undefined;
  const exitSignal = options.exitSignal ?? 'SIGKILL';
  install();
  children.set(pid, { pid, exitSignal });
  const watchdog = spawn(
    '/bin/sh',
    [
      '-c',
      WATCHDOG,
      'memfleet-watchdog',
      String(process.pid),
      String(pid),
      exitSignal.replace(/^SIG/, ''),
      options.dir ?? '',
    ],
    { detached: true, stdio: 'ignore' },
  );
  watchdog.on('error', () => undefined);
  watchdog.unref();
  const release = (): void => {
    children.delete(pid);
  };
  child.once('exit', release);
  return release;
}

/**
 * Removes `dir` when this process exits, even on SIGINT/SIGTERM. Returns a function that cancels
 * that (call it after removing the directory yourself).
 */
export function removeDirOnExit(dir: string): () => void {
  install();
  dirs.add(dir);
  return () => {
    dirs.delete(dir);
  };
}

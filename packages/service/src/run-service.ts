import cluster from 'node:cluster';
import { loadConfigOrExit, type Config } from '@memfleet/config/load-config';
import { toError } from '@memfleet/errors/to-error';
import { createLogger, type Logger } from '@memfleet/logger/create-logger';
import { serveClusterMetrics } from '@memfleet/metrics/cluster-metrics';

/** What a started service hands back: how to stop it gracefully. */
export interface RunningService {
  close(): Promise<void>;
}

/** Options of {@link runService}. */
export interface RunServiceOptions {
  /**
   * Processes serving the service (`API_PROCESSES`, `READER_PROCESSES`). Above 1 the process
   * becomes the primary of a Node cluster that runs that many copies of the service, sharing its
   * port. Default 1: the service runs in this process.
   */
  processes?: (config: Config) => number;
}

/** Exits of cluster processes within this many ms that make the primary give up. */
const CRASH_WINDOW_MS = 60_000;
const MAX_CRASHES = 5;

/**
 * The body of every process's main.ts: parses the environment (exit 2 naming a bad variable),
 * starts the service, and on SIGTERM or SIGINT closes it and exits (1 if closing failed). The exit
 * is explicit because a third-party timer may outlive every closed connection: the Zep SDK leaves
 * its request timer armed after a failed fetch, for up to its timeout.
 */
export async function runService(
  service: string,
  start: (config: Config, logger: Logger) => Promise<RunningService>,
  options: RunServiceOptions = {},
): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger({ service, level: config.logLevel });
  const processes = options.processes?.(config) ?? 1;
  if (processes > 1 && cluster.isPrimary) {
    runPrimary(service, processes, logger);
    return;
  }
  const running = await start(config, logger);

  let stopping = false;
  async function shutdown(signal: string): Promise<void> {
    if (stopping) return;
    stopping = true;
    logger.info(`${service} stopping`, { signal });
    try {
      await running.close();
      logger.info(`${service} stopped`);
    } catch (err: unknown) {
      logger.error('shutdown failed', { err: toError(err) });
      process.exitCode = 1;
    }
    setImmediate(() => process.exit());
  }
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
}

/**
 * The primary of a cluster: starts `processes` copies of the service, starts another when one
 * dies (giving up, exit 1, after {@link MAX_CRASHES} deaths within a minute), gathers their
 * metrics for `/metrics`, and on SIGTERM or SIGINT stops them all and exits once they have.
 */
function runPrimary(service: string, processes: number, logger: Logger): void {
  serveClusterMetrics();
  let stopping = false;
  let failed = false;
  const crashes: number[] = [];

  const stopAll = (signal: NodeJS.Signals): void => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
  };
  const exitWhenAlone = (): void => {
    if (Object.keys(cluster.workers ?? {}).length === 0) {
      logger.info(`${service} stopped`, { processes });
      process.exit(failed ? 1 : 0);
    }
  };

  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (code !== 0 && signal !== 'SIGTERM') failed = true;
      exitWhenAlone();
      return;
    }
    const now = Date.now();
    crashes.push(now);
    while (crashes.length > 0 && (crashes[0] ?? now) < now - CRASH_WINDOW_MS) crashes.shift();
    if (crashes.length > MAX_CRASHES) {
      logger.error(`${service}: processes keep dying; stopping the cluster`, {
        deaths: crashes.length,
        windowMs: CRASH_WINDOW_MS,
      });
      stopping = true;
      failed = true;
      stopAll('SIGTERM');
      exitWhenAlone();
      return;
    }
    logger.error(`${service} process died; starting another`, {
      pid: worker.process.pid,
      code,
      signal,
    });
    cluster.fork();
  });

  const shutdown = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info(`${service} stopping`, { signal, processes });
    stopAll('SIGTERM');
    exitWhenAlone();
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));

  logger.info(`${service} cluster starting`, { processes, pid: process.pid });
  for (let i = 0; i < processes; i++) cluster.fork();
}

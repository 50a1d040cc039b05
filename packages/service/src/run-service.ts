import { loadConfigOrExit, type Config } from '@memfleet/config/load-config';
import { toError } from '@memfleet/errors/to-error';
import { createLogger, type Logger } from '@memfleet/logger/create-logger';

/** What a started service hands back: how to stop it gracefully. */
export interface RunningService {
  close(): Promise<void>;
}

/**
 * The body of every process's main.ts: parses the environment (exit 2 naming a bad variable),
 * starts the service, and on SIGTERM or SIGINT closes it and exits (1 if closing failed). The exit
 * is explicit because a third-party timer may outlive every closed connection: the Zep SDK leaves
 * its request timer armed after a failed fetch, for up to its timeout.
 */
export async function runService(
  service: string,
  start: (config: Config, logger: Logger) => Promise<RunningService>,
): Promise<void> {
  const config = loadConfigOrExit();
  const logger = createLogger({ service, level: config.logLevel });
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
